// One rescue boot, probe → plan → steps: RescueBoot's create and update, and InstallImage's delete
// when the host no longer runs its rescue. Robot credentials and their config keys live in the kernel
// (one definition for every resource); re-exported here for InstallImage.
import * as pulumi from "@pulumi/pulumi";
import { MISSING_ROBOT_ACCESS, RobotAccess, robotAccessFromConfig } from "../kernel/config";
import { runPlan, runStep } from "../kernel/resource";
import { RobotClient } from "../plumbing/robot";
import { redact, Secret } from "../plumbing/secret";
import { buildOutputs } from "./outputs";
import { plan } from "./plan";
import { probe } from "./probe";
import { steps } from "./steps";
import type { RescueBootOutputs, RescueContext, RescueDesired } from "./types";

export { MISSING_ROBOT_ACCESS, robotAccessFromConfig };
export type { RobotAccess };

/** The context RescueBoot's steps run in; `label` names who asked (RescueBoot, or InstallImage's delete). */
export function rescueContext(access: RobotAccess, privateKey: Secret, serverNumber: number, label: string): RescueContext {
  const secrets = [privateKey, access.password];
  const report = (message: string): void => {
    pulumi.log.info(redact(`[${label}] ${message}`, secrets));
  };
  const robot = new RobotClient({ user: access.user, password: access.password, baseUrl: access.url, onWait: (event) => report(event.message) });
  return {
    resource: "RescueBoot",
    host: String(serverNumber),
    secrets,
    robot,
    serverNumber,
    privateKey,
    report,
    record: { armedHostKeys: null, bootedAt: null, rescueArmed: null, resets: 0, reached: null },
  };
}

/**
 * Probe, plan and run one rescue boot; returns what RescueBoot outputs. RescueBoot's create and
 * update use it, and so does InstallImage's delete when the host no longer runs its rescue.
 * `bootedAfter`: a rescue of the last activation booted after this instant counts as this run's.
 */
export async function bootRescue(ctx: RescueContext, desired: RescueDesired, bootedAfter: string | null): Promise<RescueBootOutputs> {
  const observed = await runStep(ctx, "probe", () => probe(ctx, desired));
  const planned = plan(observed, { ...desired, bootedAfter });
  if (planned.every((step) => step.kind === "awaitRescue")) ctx.report(`adopting the rescue booted at ${observed.lastRescue?.bootedAt}: it was armed with these keys${bootedAfter ? ` after ${bootedAfter}` : ""}, so no reset is sent`);
  await runPlan(ctx, planned, steps);
  const bootedAt = ctx.record.bootedAt ?? observed.lastRescue?.bootedAt ?? observed.now;
  if (ctx.record.reached?.source === "first-contact") {
    ctx.report(`Robot reported no host key: trusted ${ctx.record.reached.hostKey.type} ${ctx.record.reached.hostKey.fingerprint} on first contact, for this rescue boot only (hostKeySource: first-contact)`);
  }
  return buildOutputs(desired, observed, ctx.record, bootedAt);
}
