// The Pulumi program. It reads the stack config, validates all of it before anything else runs
// (preview needs no connection), and stops with ONE error listing every problem. Components are
// added per host by later work; for now the program exports what it plans per host.
import * as pulumi from "@pulumi/pulumi";
import { formatValidationErrors, HostConfig, PROJECT, summarizeHost, validateStackConfig } from "./config";

/** The stack config as the engine hands it over: top-level keys of this project, secrets decrypted. */
function readStackConfig(config: pulumi.Config): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  // `get`/`getObject` return the decrypted value synchronously, which validation at preview needs;
  // the plaintext stays in memory and is wrapped with pulumi.secret before it goes anywhere.
  for (const key of ["robotUrl", "robotUser", "robotPassword", "sshPrivateKey"]) raw[key] = config.get(key);
  for (const key of ["luksPassphrases", "hosts"]) raw[key] = config.getObject<unknown>(key);
  return Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== undefined));
}

interface HostPlan {
  readonly host: HostConfig;
  /** Marked secret for the engine: state and outputs derived from it stay encrypted. */
  readonly luksPassphrase: pulumi.Output<string>;
}

function planHosts(): HostPlan[] {
  const result = validateStackConfig(readStackConfig(new pulumi.Config(PROJECT)));
  if (!result.ok) {
    // RunError prints its message without a stack trace: the user sees the list, nothing else.
    throw new pulumi.RunError(formatValidationErrors(result.errors, pulumi.getStack()));
  }
  // What validation could not check (no disk sizes, no RAM size) is said, not skipped in silence.
  for (const warning of result.warnings) void pulumi.log.warn(`${warning.path}: ${warning.message}`);
  return result.config.hosts.map((host) => ({ host, luksPassphrase: pulumi.secret(host.luks.passphrase.reveal()) }));
}

const plans = planHosts();

/** Per host: name, target and planned layout. Secret-free by construction (see summarizeHost). */
export const hosts = plans.map((plan) => summarizeHost(plan.host));
