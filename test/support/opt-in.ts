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

/** `describe` when `variable` is "1"; otherwise `describe.skip`, with optedIn's warning. */
export function describeOptIn(variable: string, what: string): jest.Describe {
  return optedIn(variable, what) ? describe : describe.skip;
}

/** `it` when `variable` is "1"; otherwise `it.skip`, with optedIn's warning. */
export function itOptIn(variable: string, what: string): jest.It {
  return optedIn(variable, what) ? it : it.skip;
}
