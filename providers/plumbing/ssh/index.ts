// The SSH layer every resource uses: verified sessions, quoted commands, redacted errors.
export { connect, withSession, observeHostKey } from "./connect";
export type { ConnectOptions, ConnectProgress } from "./connect";
export { SshSession } from "./session";
export type { ExecOptions } from "./session";
export { probe } from "./probe";
export { observeEndpoint } from "./observe";
export type { EndpointObservation } from "./observe";
export { HostKeyMismatchError, SshAuthError, SshUnreachableError, RemoteCommandError, ProbeOutputError, formatSeconds } from "./errors";
export type { CommandResult, RemoteCommandFailure } from "./errors";
export { validateSshTarget, assertValidSshTarget, targetAddress } from "./target";
export type { SshTarget, HostKeyPolicy, ObservedHostKey } from "./target";
export { DEFAULT_BACKOFF, backoffDelayMs, isRetryableConnectError, describeConnectError } from "./retry";
export type { BackoffPolicy } from "./retry";
