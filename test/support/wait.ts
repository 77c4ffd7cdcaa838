// The one way a test waits for a state: poll a condition until it holds or a deadline passes.
// Tests wait for the state they assert on (a recorded boot failure, a file, a process), never
// for a fixed time and never for a side signal (a console line) that precedes the state.

export interface WaitForOptions {
  /** What is awaited, for the timeout error ("boot 1 of server 1 recorded as failed"). */
  readonly what: string;
  readonly timeoutMs: number;
  /** Poll interval; default 100 ms. */
  readonly intervalMs?: number;
}

/**
 * Resolves with the first value of `probe` that is neither undefined, null nor false. Rejects
 * with `what` and the timeout when the deadline passes first; a probe that throws rejects at once.
 */
export async function waitFor<T>(probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, opts: WaitForOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}`);
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 100));
  }
}
