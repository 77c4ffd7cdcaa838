// Things a test file started and must stop: provider hosts, lab servers. A test that fails before
// its own cleanup would otherwise leave a gRPC channel, an HTTP server or a QEMU behind, and jest
// would never exit after the last test (a CI run that hangs until it is killed).
// after-each-file.ts stops whatever is still registered when a file ends.

type Stop = () => Promise<void>;

const registered = new Map<object, { what: string; stop: Stop }>();

/** Registers `owner` until `untrack(owner)`; `stop` must be idempotent. */
export function track(owner: object, what: string, stop: Stop): void {
  registered.set(owner, { what, stop });
}

export function untrack(owner: object): boolean {
  return registered.delete(owner);
}

/** Stops everything still registered, in reverse start order; returns what was stopped. */
export async function stopLeftovers(): Promise<string[]> {
  const leftovers = [...registered.entries()].reverse();
  registered.clear();
  for (const [, { stop }] of leftovers) await stop();
  return leftovers.map(([, { what }]) => what);
}
