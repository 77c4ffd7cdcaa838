// The lab's "secrets": fixed, public lab values, so the engine (engine/secrets.ts, for the `lab`
// stack), the demo and the tests can stand in for `pulumi config set --secret` (Pulumi.lab.yaml
// holds placeholders). Never use these outside the lab.
// The one exception is the operator's SSH key: no private key is committed, not even a lab one, so
// it is generated once per machine into the lab's state dir.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "fs";
import { dirname, join } from "path";
import { generateEd25519KeyPair } from "../providers/plumbing/keys";
import { formatPath } from "../providers/rules";
import { labStateDir } from "./config";

export const LAB_SECRETS = {
  /** Matches lab/lab.config.json robot.password (a test keeps them equal). */
  robotPassword: "lab-robot-secret",
  luksPassphrases: {
    "lab-1": "violet-Harbor-47-kettle-lab1",
    "lab-2": "harbor-Violet-92-lantern-lab2",
  } as Record<string, string>,
} as const;

/** `$HFDE_LAB_DIR/operator/id_ed25519`: the lab operator's private key, created 0600 on first use. */
export function labOperatorKeyPath(): string {
  return join(labStateDir(), "operator", "id_ed25519");
}

export function labOperatorKey(): { privateKey: string; publicKey: string } {
  const path = labOperatorKeyPath();
  if (!existsSync(path)) {
    const pair = generateEd25519KeyPair("hetzner-fde-lab-operator");
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, pair.private, { mode: 0o600 });
    writeFileSync(`${path}.pub`, pair.public + "\n");
  }
  chmodSync(path, 0o600);
  return { privateKey: readFileSync(path, "utf8"), publicKey: readFileSync(`${path}.pub`, "utf8").trim() };
}

/** Resolver for `rawConfigFromStackFile`: config path (`luksPassphrases.lab-1`) → lab value. */
export function labSecretFor(path: string): string {
  if (path === "robotPassword") return LAB_SECRETS.robotPassword;
  if (path === "sshPrivateKey") return labOperatorKey().privateKey;
  for (const [host, passphrase] of Object.entries(LAB_SECRETS.luksPassphrases)) {
    if (path === formatPath(["luksPassphrases", host])) return passphrase;
  }
  throw new Error(`Pulumi.lab.yaml has a secret at ${path} that LAB_SECRETS does not provide; add it to lab/secrets.ts`);
}
