// The lab's "secrets": fixed, public lab values, so the demo and the tests can stand in for
// `pulumi config set --secret` (Pulumi.lab.yaml holds placeholders). Never use these outside the lab.
import { formatPath } from "../providers/rules";

export const LAB_SECRETS = {
  /** Matches lab/lab.config.json robot.password (a test keeps them equal). */
  robotPassword: "lab-robot-secret",
  luksPassphrases: {
    "lab-1": "violet-Harbor-47-kettle-lab1",
    "lab-2": "harbor-Violet-92-lantern-lab2",
  } as Record<string, string>,
} as const;

/** Resolver for `rawConfigFromStackFile`: config path (`luksPassphrases.lab-1`) → lab value. */
export function labSecretFor(path: string): string {
  if (path === "robotPassword") return LAB_SECRETS.robotPassword;
  for (const [host, passphrase] of Object.entries(LAB_SECRETS.luksPassphrases)) {
    if (path === formatPath(["luksPassphrases", host])) return passphrase;
  }
  throw new Error(`Pulumi.lab.yaml has a secret at ${path} that LAB_SECRETS does not provide; add it to infra/lab-secrets.ts`);
}
