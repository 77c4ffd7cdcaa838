// The wire forms the engine speaks: the gRPC and protobuf modules @pulumi/pulumi itself resolves
// (its serializers check `instanceof`, so a second copy would not do), and the special values the
// Pulumi RPC layer puts into property structs (secrets, the preview's unknown sentinel).
import { createRequire } from "module";
import * as path from "path";
import type * as grpcTypes from "@grpc/grpc-js";
import type * as structTypes from "google-protobuf/google/protobuf/struct_pb";
import type * as provrpcTypes from "@pulumi/pulumi/proto/provider_grpc_pb";
import type * as provTypes from "@pulumi/pulumi/proto/provider_pb";
import type * as resTypes from "@pulumi/pulumi/proto/resource_pb";
import type * as statusTypes from "@pulumi/pulumi/proto/status_pb";

export { UNKNOWN } from "../providers/kernel/resource";

/** Repo root: this file runs as dist/engine/wire.js. */
export const REPO_ROOT = path.resolve(__dirname, "../..");

export type Props = Record<string, unknown>;

export interface PulumiWire {
  grpc: typeof grpcTypes;
  struct: typeof structTypes;
  provrpc: typeof provrpcTypes;
  prov: typeof provTypes;
  res: typeof resTypes;
  status: typeof statusTypes;
  /** `cmd/dynamic-provider`: the host `pulumi` starts as `pulumi-resource-pulumi-nodejs`. */
  hostEntry: string;
}

export function loadWire(root: string = REPO_ROOT): PulumiWire {
  const fromPulumi = createRequire(require.resolve("@pulumi/pulumi/package.json", { paths: [root] }));
  return {
    grpc: fromPulumi("@grpc/grpc-js"),
    struct: fromPulumi("google-protobuf/google/protobuf/struct_pb"),
    provrpc: fromPulumi("./proto/provider_grpc_pb"),
    prov: fromPulumi("./proto/provider_pb"),
    res: fromPulumi("./proto/resource_pb"),
    status: fromPulumi("./proto/status_pb"),
    hostEntry: fromPulumi.resolve("./cmd/dynamic-provider"),
  };
}

// rpc.js: specialSigKey and the signatures of the values it marks.
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** A secret in wire form: `{ [SIG_KEY]: SECRET_SIG, value }`. */
export function isSecretWrapper(value: unknown): value is { value: unknown } {
  return typeof value === "object" && value !== null && (value as Props)[SIG_KEY] === SECRET_SIG;
}

export function secretWrapper(value: unknown): Props {
  return { [SIG_KEY]: SECRET_SIG, value };
}

/** Whether a wire value holds a secret anywhere inside. */
export function containsSecret(value: unknown): boolean {
  if (isSecretWrapper(value)) return true;
  if (Array.isArray(value)) return value.some(containsSecret);
  if (value !== null && typeof value === "object") return Object.values(value).some(containsSecret);
  return false;
}

/** Strips the secret wrappers, as the engine does for a provider that answers acceptSecrets=false. */
export function plainValues(props: Props): Props {
  const unwrap = (v: unknown): unknown => {
    if (isSecretWrapper(v)) return unwrap(v.value);
    if (Array.isArray(v)) return v.map(unwrap);
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
    return v;
  };
  return unwrap(props) as Props;
}

/**
 * The engine's annotateSecrets, for top-level keys: an output is secret when the input of the same
 * key held a secret, or when the program listed it in `additionalSecretOutputs`.
 */
export function secretOutputKeys(inputs: Props, additionalSecretOutputs: readonly string[]): string[] {
  const fromInputs = Object.entries(inputs).filter(([, v]) => containsSecret(v)).map(([k]) => k);
  return [...new Set([...fromInputs, ...additionalSecretOutputs])];
}

/** Plain outputs → wire form with the given keys wrapped as secrets. */
export function markSecrets(outputs: Props, keys: readonly string[]): Props {
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, keys.includes(k) && !isSecretWrapper(v) ? secretWrapper(v) : v]));
}
