// What every provider reads in `configure`: the operator's SSH private key and the Robot webservice
// credentials. Both come from the stack config (namespace hetzner-fde), never from inputs, so they
// never reach any resource's state. There is one message for a missing key, and it feeds the key on
// stdin: `"$(cat key)"` would put the private key in argv, visible to every process on the machine.
import { DEFAULT_ROBOT_URL } from "../plumbing/robot/transport";
import { Secret } from "../plumbing/secret";

/** Stack config keys `configure` reads (namespace hetzner-fde). */
export const SSH_PRIVATE_KEY_CONFIG = "sshPrivateKey";
export const ROBOT_URL_CONFIG = "robotUrl";
export const ROBOT_USER_CONFIG = "robotUser";
export const ROBOT_PASSWORD_CONFIG = "robotPassword";

/** The one missing-key message (the reason after "<Resource>: "). */
export const MISSING_PRIVATE_KEY =
  `no SSH private key in the stack config; set it from stdin with \`pulumi config set --secret hetzner-fde:${SSH_PRIVATE_KEY_CONFIG} < ~/.ssh/key\``;

export const MISSING_ROBOT_ACCESS =
  `no Robot webservice credentials; set them with \`pulumi config set hetzner-fde:${ROBOT_USER_CONFIG} '#ws+XXXXXXXX'\` and \`pulumi config set --secret hetzner-fde:${ROBOT_PASSWORD_CONFIG}\` (the password from stdin)`;

/** Robot webservice credentials from the stack config. */
export interface RobotAccess {
  readonly user: string;
  readonly password: Secret;
  readonly url: string;
}

/** What `configure` gives every resource. */
export interface ProviderConfig {
  readonly privateKey: Secret | null;
  /** null while user or password is unset. */
  readonly robot: RobotAccess | null;
}

/** Reads the provider config; `get` is `req.config.get` (keys without the namespace). */
export function readProviderConfig(get: (key: string) => string | undefined): ProviderConfig {
  const key = get(SSH_PRIVATE_KEY_CONFIG);
  return { privateKey: key !== undefined && key !== "" ? new Secret(key) : null, robot: robotAccessFromConfig(get) };
}

/** Reads the Robot credentials; null while user or password is unset. */
export function robotAccessFromConfig(get: (key: string) => string | undefined): RobotAccess | null {
  const user = get(ROBOT_USER_CONFIG);
  const password = get(ROBOT_PASSWORD_CONFIG);
  if (user === undefined || password === undefined) return null;
  const url = get(ROBOT_URL_CONFIG);
  return { user, password: new Secret(password), url: url !== undefined && url !== "" ? url : DEFAULT_ROBOT_URL };
}

/** The operator key, or the one missing-key error naming the resource. */
export function requirePrivateKey(config: ProviderConfig, resource: string): Secret {
  if (config.privateKey === null) throw new Error(`${resource}: ${MISSING_PRIVATE_KEY}`);
  return config.privateKey;
}
