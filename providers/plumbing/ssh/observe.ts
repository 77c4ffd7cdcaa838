// Looking at an SSH endpoint without logging in: the server's identification string and the host
// key it presents, then the connection is dropped before authentication. This is how a resource
// tells where a host is now (rescue, dropbear initramfs, installed system) in one round trip
// without offering credentials to a server whose key it does not know.
import { Client } from "ssh2";
import { observeHostKey } from "./connect";
import { describeConnectError } from "./retry";
import { ObservedHostKey, targetAddress } from "./target";

export type EndpointObservation =
  | {
      readonly kind: "ssh";
      /** Software part of the identification string, e.g. `OpenSSH_9.2p1` or `dropbear_2022.83`; "" if not seen. */
      readonly software: string;
      /** The key the server presented during key exchange; null if the exchange did not get that far. */
      readonly hostKey: ObservedHostKey | null;
    }
  | { readonly kind: "none"; readonly reason: string };

// An sshd sends its identification at once; a port that accepts TCP and stays silent (QEMU's
// slirp forward to a guest without a network stack, a firewall) is not worth a longer wait.
const DEFAULT_OBSERVE_TIMEOUT_MS = 5_000;

/**
 * Connects to `host:port`, reads the identification string and the host key, and disconnects by
 * rejecting the key: no credentials are ever sent. Never throws; a host that does not speak SSH
 * (refused, timeout, closed) is `{ kind: "none" }`.
 */
export function observeEndpoint(host: string, port: number, timeoutMs = DEFAULT_OBSERVE_TIMEOUT_MS): Promise<EndpointObservation> {
  return new Promise((resolve) => {
    const client = new Client();
    let hostKey: ObservedHostKey | null = null;
    let settled = false;
    // ssh2 keeps the peer's software version here once the identification line has arrived.
    const software = (): string => String((client as unknown as { _remoteVer?: string })._remoteVer ?? "");
    const finish = (cause: unknown): void => {
      if (settled) return;
      settled = true;
      client.destroy();
      const seen = software();
      if (seen !== "" || hostKey !== null) resolve({ kind: "ssh", software: seen, hostKey });
      else resolve({ kind: "none", reason: `${targetAddress({ host, port })}: ${describeConnectError(cause)}` });
    };
    client.on("error", (error) => finish(error));
    client.on("close", () => finish(new Error("Connection closed before handshake")));
    client.on("ready", () => finish(new Error("unexpectedly authenticated")));
    try {
      client.connect({
        host,
        port,
        username: "hetzner-fde-observer",
        readyTimeout: timeoutMs,
        // Rejecting the key ends the handshake before any authentication method is tried.
        hostVerifier: (key: Buffer) => {
          hostKey = observeHostKey(key);
          return false;
        },
      });
    } catch (error) {
      finish(error);
    }
  });
}
