// Lab cases CI's time does not hold are switched on one by one, each by its own variable (the
// README lists them). A case left off says so on the console: jest lists no names of a suite whose
// tests are all skipped, so without it a reader of CI's output would not know what did not run.

/** Whether `variable` is "1"; when it is not, warns that `what` was skipped and how to run it. */
export function optedIn(variable: string, what: string): boolean {
  if (process.env[variable] === "1") return true;
  console.warn(`skipped: ${what}. Opt-in: set ${variable}=1`);
  return false;
}
