// Request handlers (moto's responses.py): read path params and the PHP-style form, call the
// model, serialise Robot's JSON with its envelopes. No state lives here.
//
// Not emulated anywhere: `.yaml` output, the `{server-ip}` form for /reset and /wol beyond
// lookup, linux/vnc/windows/plesk/cpanel boot types (only their `active` flag, via a test hook),
// cancellation, traffic, IPs/subnets, failover, vSwitch, firewall, storage boxes, ordering.
import { InvalidInput, NotFound } from "./errors";
import { PhpForm, formList, formScalar } from "./form";
import { RobotModel, ServerSpec, StoredKey, RescueActivation, LastRescue, OtherBootType, hostKeyFingerprint } from "./model";

export interface HandlerContext {
  readonly model: RobotModel;
  readonly params: Readonly<Record<string, string>>;
  readonly form: PhpForm;
}

export interface HandlerResult {
  readonly status: number;
  /** Serialised as JSON; null means an empty body (DELETE /key). */
  readonly body: unknown;
}

export type Handler = (ctx: HandlerContext) => Promise<HandlerResult>;

const ok = (body: unknown): HandlerResult => ({ status: 200, body });

// ---- serialisers (Robot's field names and shapes) -------------------------------------------

function addressFields(spec: ServerSpec): Record<string, unknown> {
  return { server_ip: spec.ipv4, server_ipv6_net: spec.ipv6Net, server_number: spec.number };
}

function serverJson(model: RobotModel, spec: ServerSpec): Record<string, unknown> {
  return {
    ...addressFields(spec),
    server_name: model.state(spec).name,
    product: spec.product ?? "EX44",
    dc: spec.dc ?? "FSN1-DC10",
    traffic: spec.traffic ?? "unlimited",
    status: "ready",
    cancelled: false,
    paid_until: spec.paidUntil ?? "2030-01-01",
    ip: spec.ipv4 ? [spec.ipv4] : [],
    // Robot sends null (not []) when a server has no additional subnets.
    subnet: null,
  };
}

function serverDetailJson(model: RobotModel, spec: ServerSpec): Record<string, unknown> {
  const f = model.features(spec);
  return {
    ...serverJson(model, spec),
    reset: f.reset,
    rescue: f.rescue,
    vnc: f.vnc,
    windows: f.windows,
    plesk: f.plesk,
    cpanel: f.cpanel,
    wol: f.wol,
    hot_swap: f.hotSwap,
    linked_storagebox: null,
  };
}

function keyJson(key: StoredKey): Record<string, unknown> {
  return { name: key.name, fingerprint: key.fingerprint, type: key.type, size: key.size, data: key.data, created_at: key.createdAt };
}

/** Keys under a rescue config are wrapped and carry no `data`. */
function keyRefJson(key: StoredKey): { key: Record<string, unknown> } {
  return { key: { name: key.name, fingerprint: key.fingerprint, type: key.type, size: key.size, created_at: key.createdAt } };
}

function hostKeysJson(model: RobotModel, activation: RescueActivation): unknown[] {
  if (!model.reportsHostKeys()) return [];
  return activation.hostKeys.map((hostKey) => ({ key: { type: hostKey.type, fingerprint: hostKeyFingerprint(hostKey), size: 256 } }));
}

/** Inactive: `os`/`arch` are the menus, no password. Active: the chosen values and the password. */
function rescueJson(model: RobotModel, spec: ServerSpec): Record<string, unknown> {
  const armed = model.state(spec).rescue;
  if (!armed) {
    return {
      ...addressFields(spec),
      os: model.rescueOsMenu(spec),
      arch: model.archMenu(),
      active: false,
      password: null,
      authorized_key: [],
      host_key: [],
      boot_time: null,
    };
  }
  return activationJson(model, spec, armed, true, null);
}

function activationJson(model: RobotModel, spec: ServerSpec, activation: RescueActivation, active: boolean, bootedAt: number | null): Record<string, unknown> {
  return {
    ...addressFields(spec),
    os: activation.os,
    arch: activation.arch,
    active,
    password: activation.password,
    authorized_key: activation.keys.map(keyRefJson),
    host_key: hostKeysJson(model, activation),
    boot_time: bootedAt === null ? null : new Date(bootedAt).toISOString(),
  };
}

function lastRescueJson(model: RobotModel, spec: ServerSpec, last: LastRescue): Record<string, unknown> {
  const stillArmed = model.state(spec).rescue?.armedAt === last.armedAt;
  return activationJson(model, spec, last, stillArmed, last.bootedAt);
}

function otherBootJson(model: RobotModel, spec: ServerSpec, type: "linux" | "vnc" | "windows" | "plesk" | "cpanel"): Record<string, unknown> | null {
  const active = model.state(spec).activeOtherBoot === type;
  const offered = type === "linux" || type === "vnc" || model.features(spec)[type];
  if (!offered && !active) return null;
  return { ...addressFields(spec), active, password: null, authorized_key: [], host_key: [] };
}

function resetJson(model: RobotModel, spec: ServerSpec): Record<string, unknown> {
  return { ...addressFields(spec), type: [...model.resetTypes(spec)] };
}

function wolJson(spec: ServerSpec): { wol: Record<string, unknown> } {
  return { wol: addressFields(spec) };
}

// ---- input helpers ---------------------------------------------------------------------------

function server(ctx: HandlerContext): ServerSpec {
  return ctx.model.server(ctx.params.server);
}

/** A scalar field; a list where one value belongs makes it invalid. */
function field(ctx: HandlerContext, name: string): string | undefined {
  const value = formScalar(ctx.form, name);
  if (value === null) throw new InvalidInput({ invalid: [name] });
  return value;
}

function fingerprintParam(ctx: HandlerContext): string {
  const fingerprint = ctx.params.fingerprint;
  if (!/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/i.test(fingerprint)) throw new NotFound("Key not found");
  return fingerprint;
}

// ---- handlers ---------------------------------------------------------------------------------

/** GET /server. Not emulated: `status` is always "ready", `cancelled` false. */
export const listServers: Handler = async ({ model }) => ok(model.listServers().map((spec) => ({ server: serverJson(model, spec) })));

/** GET /server/{n}. Not emulated: `linked_storagebox` is always null. */
export const getServer: Handler = async (ctx) => ok({ server: serverDetailJson(ctx.model, server(ctx)) });

/** POST /server/{n} `server_name`. */
export const renameServer: Handler = async (ctx) => {
  const spec = server(ctx);
  ctx.model.renameServer(spec, field(ctx, "server_name"));
  return ok({ server: serverJson(ctx.model, spec) });
};

/** GET /reset: servers with a reset option; 404 NOT_FOUND when none. */
export const listResets: Handler = async ({ model }) => ok(model.listResettable().map((spec) => ({ reset: resetJson(model, spec) })));

/** GET /reset/{n}. `operating_status` is the power state ("running" / "off") from the controller or the model. */
export const getReset: Handler = async (ctx) => {
  const spec = server(ctx);
  ctx.model.requireReset(spec);
  return ok({ reset: { ...resetJson(ctx.model, spec), operating_status: await ctx.model.powerState(spec) } });
};

/** POST /reset/{n} `type`. Not emulated: `sw` on Windows having no effect. */
export const postReset: Handler = async (ctx) => {
  const spec = server(ctx);
  const type = await ctx.model.reset(spec, field(ctx, "type"));
  return ok({ reset: { server_ip: spec.ipv4, server_ipv6_net: spec.ipv6Net, type } });
};

/** GET /boot/{n}. Not emulated: linux/vnc/windows/plesk/cpanel details (dist, lang menus). */
export const getBoot: Handler = async (ctx) => {
  const spec = server(ctx);
  ctx.model.requireBoot(spec);
  const m = ctx.model;
  return ok({
    boot: {
      rescue: rescueJson(m, spec),
      linux: otherBootJson(m, spec, "linux"),
      vnc: otherBootJson(m, spec, "vnc"),
      windows: otherBootJson(m, spec, "windows"),
      plesk: otherBootJson(m, spec, "plesk"),
      cpanel: otherBootJson(m, spec, "cpanel"),
    },
  });
};

/** GET /boot/{n}/rescue. */
export const getRescue: Handler = async (ctx) => {
  const spec = server(ctx);
  ctx.model.requireBoot(spec);
  return ok({ rescue: rescueJson(ctx.model, spec) });
};

/** POST /boot/{n}/rescue `os`, `arch`, `keyboard`, `authorized_key[]`. Not emulated: BOOT_ACTIVATION_FAILED. */
export const postRescue: Handler = async (ctx) => {
  const spec = server(ctx);
  ctx.model.armRescue(spec, {
    os: field(ctx, "os"),
    arch: field(ctx, "arch"),
    keyboard: field(ctx, "keyboard"),
    authorizedKeys: formList(ctx.form, "authorized_key"),
  });
  return ok({ rescue: rescueJson(ctx.model, spec) });
};

/** DELETE /boot/{n}/rescue → the now inactive config. Not emulated: BOOT_DEACTIVATION_FAILED. */
export const deleteRescue: Handler = async (ctx) => {
  const spec = server(ctx);
  ctx.model.disarmRescue(spec);
  return ok({ rescue: rescueJson(ctx.model, spec) });
};

/** DELETE /boot/{n}/<linux|vnc|windows|plesk|cpanel> → the now inactive config. Not emulated: BOOT_DEACTIVATION_FAILED. */
export function deleteOtherBoot(type: OtherBootType): Handler {
  return async (ctx) => {
    const spec = server(ctx);
    ctx.model.disarmOtherBoot(spec, type);
    return ok({ [type]: otherBootJson(ctx.model, spec, type) ?? { ...addressFields(spec), active: false } });
  };
}

/**
 * GET /boot/{n}/rescue/last: the most recent activation, consumed or not, with its password and
 * host keys; `boot_time` once booted. Never armed → 404 NOT_FOUND (real behaviour unknown).
 */
export const getRescueLast: Handler = async (ctx) => {
  const spec = server(ctx);
  ctx.model.requireBoot(spec);
  const last = ctx.model.state(spec).lastRescue;
  if (!last) throw new NotFound("No rescue activation found");
  return ok({ rescue: lastRescueJson(ctx.model, spec, last) });
};

/** GET /key; 404 NOT_FOUND "No keys found" when empty (as measured on real Robot). */
export const listKeys: Handler = async ({ model }) => ok(model.listKeys().map((key) => ({ key: keyJson(key) })));

/** POST /key `name`, `data` → 201. Not emulated: SSH2 (RFC 4716) key format, KEY_CREATE_FAILED. */
export const postKey: Handler = async (ctx) => {
  const key = ctx.model.addKey(field(ctx, "name"), field(ctx, "data"));
  return { status: 201, body: { key: keyJson(key) } };
};

/** GET /key/{fp}. */
export const getKey: Handler = async (ctx) => ok({ key: keyJson(ctx.model.getKey(fingerprintParam(ctx))) });

/** POST /key/{fp} `name`: rename only; key material is immutable. */
export const renameKey: Handler = async (ctx) => ok({ key: keyJson(ctx.model.renameKey(fingerprintParam(ctx), field(ctx, "name"))) });

/** DELETE /key/{fp} → 200 with an empty body. Keys already selected in an armed rescue stay armed. */
export const deleteKey: Handler = async (ctx) => {
  ctx.model.deleteKey(fingerprintParam(ctx));
  return { status: 200, body: null };
};

/** GET /wol/{n}. */
export const getWol: Handler = async (ctx) => {
  const spec = server(ctx);
  ctx.model.requireWol(spec);
  return ok(wolJson(spec));
};

/** POST /wol/{n}: boots a server that is off (through the power controller). Not emulated: WOL_FAILED. */
export const postWol: Handler = async (ctx) => {
  const spec = server(ctx);
  await ctx.model.sendWol(spec);
  return ok(wolJson(spec));
};
