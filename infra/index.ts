// The Pulumi program: the stack config, validated all at once before anything is registered (one
// error listing every problem; preview needs no connection), then one EncryptedRaidHost per host,
// then the outputs an operator and monitoring read (built by the pure functions in outputs.ts).
// No output carries a secret: they are addresses, ports, public host keys and what was read back.
import * as pulumi from "@pulumi/pulumi";
import { utils as sshUtils } from "ssh2";
import { EncryptedRaidHost } from "../components/encrypted-raid-host";
import { formatValidationErrors, HostConfig, PROJECT, summarizeHost, validateStackConfig } from "./config";
import { EnvironmentFacts, environmentOutput, EnvironmentOutput, FileSdGroup, knownHostsContent, layoutOutput, prometheusTargets as targetGroupsOf, sshConfigSnippet, systemSshCommand, unlockCommand } from "./outputs";

/** The stack config as the engine hands it over: top-level keys of this project, secrets decrypted. */
function readStackConfig(config: pulumi.Config): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  // `get`/`getObject` return the decrypted value synchronously, which validation at preview needs;
  // the plaintext stays in memory and is wrapped with pulumi.secret before it goes anywhere.
  for (const key of ["robotUrl", "robotUser", "robotPassword", "sshPrivateKey"]) raw[key] = config.get(key);
  for (const key of ["luksPassphrases", "hosts"]) raw[key] = config.getObject<unknown>(key);
  return Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== undefined));
}

/** The OpenSSH public line of the operator's key: what the rescue is armed with and dropbear lets unlock. */
function publicKeyOf(privateKey: string): string {
  const parsed = sshUtils.parseKey(privateKey);
  // ssh2's parse error quotes no key material; it is replaced anyway, since this is the private key.
  if (parsed instanceof Error || Array.isArray(parsed)) throw new pulumi.RunError("sshPrivateKey: expected one OpenSSH or PEM private key without passphrase, found a value ssh2 cannot parse");
  return `${parsed.type} ${parsed.getPublicSSH().toString("base64")} hetzner-fde-operator`;
}

const validated = validateStackConfig(readStackConfig(new pulumi.Config(PROJECT)));
if (!validated.ok) {
  // RunError prints its message without a stack trace: the user sees the list, nothing else.
  throw new pulumi.RunError(formatValidationErrors(validated.errors, pulumi.getStack()));
}
// What validation could not check (no disk sizes, no RAM size) is said, not skipped in silence.
for (const warning of validated.warnings) void pulumi.log.warn(`${warning.path}: ${warning.message}`);
const operatorPublicKey = publicKeyOf(validated.config.sshPrivateKey.reveal());

interface HostOutputs {
  readonly summary: ReturnType<typeof summarizeHost>;
  readonly environments: Record<"rescue" | "initramfs" | "system", EnvironmentOutput>;
  readonly knownHosts: string;
  readonly sshConfig: string;
  readonly unlockCommand: string;
  readonly sshCommand: string;
  readonly layout: ReturnType<typeof layoutOutput>;
  readonly dropbear: { readonly environment: string; readonly drift: string[]; readonly hostKeyFingerprint: string };
  /** Null until RsyncMirror joins the component (the mirror's last sync). */
  readonly mirror: null;
  readonly prometheusTargets: FileSdGroup[];
}

function hostOutputs(host: HostConfig, c: EncryptedRaidHost): pulumi.Output<HostOutputs> {
  const rescueKnownHosts = c.rescue ? c.rescue.knownHosts : pulumi.output<string[]>([]); // an ssh target pins fingerprints only
  // Two groups: pulumi.all types tuples of up to 8.
  const access = pulumi.all([c.rescueProfile, rescueKnownHosts, c.systemProfile, c.install.knownHosts, c.dropbear.initramfsProfile, c.dropbear.knownHosts]);
  const state = pulumi.all([c.dropbear.environment, c.dropbear.drift, c.dropbear.hostKeyFingerprint, c.install.layout, c.rootLuks.observed]);
  return pulumi
    .all([access, state])
    .apply(([[rescue, rescueLines, system, systemLines, initramfs, initramfsLines], [dropbearEnvironment, drift, dropbearFingerprint, layout, luks]]) => {
      const facts = (p: { host: string; port: number; hostKeyFingerprints: readonly string[] }, lines: readonly string[]): EnvironmentFacts => ({ address: p.host, port: p.port, fingerprints: p.hostKeyFingerprints, knownHosts: lines });
      const environments = {
        rescue: environmentOutput(host.name, "rescue", facts(rescue, rescueLines)),
        // dropbear is dialed at `reach` (the endpoints' forward), which its profile and known_hosts carry.
        initramfs: environmentOutput(host.name, "initramfs", facts(initramfs, initramfsLines)),
        system: environmentOutput(host.name, "system", facts(system, systemLines)),
      };
      return {
        summary: summarizeHost(host),
        environments,
        knownHosts: knownHostsContent(environments),
        sshConfig: sshConfigSnippet(host.name, environments),
        unlockCommand: unlockCommand(host.name, environments.initramfs),
        sshCommand: systemSshCommand(host.name, environments.system),
        layout: layoutOutput(layout, luks ?? null),
        dropbear: { environment: dropbearEnvironment, drift, hostKeyFingerprint: dropbearFingerprint },
        mirror: null,
        prometheusTargets: targetGroupsOf(host.name, environments.system, environments.initramfs),
      };
    });
}

const built = validated.config.hosts.map((host) => {
  const component = new EncryptedRaidHost(host.name, { host, operatorPublicKey, luksPassphrase: pulumi.secret(host.luks.passphrase.reveal()) });
  return { host, outputs: hostOutputs(host, component) };
});

/** Per host, known at preview: name, target and planned layout (secret-free by construction, see summarizeHost). */
export const planned = built.map((b) => summarizeHost(b.host));
/** Per host: environments, known_hosts, ssh_config, unlock and ssh commands, layout, dropbear state. */
export const hosts = pulumi.output(Object.fromEntries(built.map((b) => [b.host.name, b.outputs])));
/** Every host's targets in Prometheus file_sd format (write it to a file_sd_configs file). */
export const prometheusTargets = pulumi.all(built.map((b) => b.outputs)).apply((all) => all.flatMap((o) => o.prometheusTargets));
