// Lab cases CI's time does not hold are switched on one by one, each by its own variable (the
// README lists them). A case left off says so on stderr: jest lists no names of a suite whose tests
// are all skipped, and drops the console output of such a suite when it runs several files, so
// without this a reader of CI's output would not know what did not run.

/** Whether `variable` is "1"; when it is not, warns that `what` was skipped and how to run it. */
export function optedIn(variable: string, what: string): boolean {
  if (process.env[variable] === "1") return true;
  process.stderr.write(`skipped: ${what}. Opt-in: set ${variable}=1\n`);
  return false;
}
