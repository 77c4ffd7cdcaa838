// The provider: configure, check, diff, create, update, read and delete for RescueBoot.
//
// RescueBoot does not run on the kernel's KernelProvider yet: it reaches its host through Robot
// (arm, one reset, wait) before any SSH session exists, its outputs carry the boot's facts that a
// later probe cannot see again, and leaving rescue is not drift. See the report of branch p2-rescue.
import * as pulumi from "@pulumi/pulumi";
import { MISSING_ROBOT_ACCESS, ProviderConfig, readProviderConfig, requirePrivateKey } from "../kernel/config";
import { checkResult, jsonSafe, runPlan, runStep } from "../kernel/resource";
import { bootRescue, rescueContext } from "./boot";
import { inputsOf, restate, withRequest } from "./outputs";
import { changeReasons, compareOutputs, planDelete } from "./plan";
import { probeEnvironment } from "./probe";
import { steps } from "./steps";
import type { RescueBootInputs, RescueBootOutputs, RescueContext } from "./types";
import { firstContactWarning, resolveInputs, validate } from "./validate";

class RescueBootProvider implements pulumi.dynamic.ResourceProvider<RescueBootInputs, RescueBootOutputs> {
  // From the stack config in configure (the kernel's reader); never in a resource's inputs or state.
  private config: ProviderConfig = { privateKey: null, robot: null };

  async configure(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
    this.config = readProviderConfig((key) => req.config.get(key));
  }

  async check(_olds: RescueBootInputs, news: RescueBootInputs): Promise<pulumi.dynamic.CheckResult<RescueBootInputs>> {
    // Trusting a first contact is the one unverified step RescueBoot can take: every preview says so.
    const warning = firstContactWarning(news);
    if (warning !== null) pulumi.log.warn(warning);
    return checkResult(news, validate(news));
  }

  async diff(_id: string, olds: RescueBootOutputs, news: RescueBootInputs): Promise<pulumi.dynamic.DiffResult> {
    return compareOutputs(olds, news);
  }

  async create(inputs: RescueBootInputs): Promise<pulumi.dynamic.CreateResult<RescueBootOutputs>> {
    const desired = resolveInputs(inputs);
    const outs = await bootRescue(this.context(desired.serverNumber), desired, null);
    return { id: String(desired.serverNumber), outs: withRequest(outs, inputs) };
  }

  async update(_id: string, olds: RescueBootOutputs, news: RescueBootInputs): Promise<pulumi.dynamic.UpdateResult<RescueBootOutputs>> {
    const desired = resolveInputs(news);
    const reasons = changeReasons(olds, news);
    const ctx = this.context(desired.serverNumber);
    if (reasons.includes("authorizedKeys") && !reasons.includes("generation")) {
      ctx.report("authorizedKeys changed: the running rescue keeps its keys; they take effect on the next rescue boot (bump generation to boot now)");
    }
    if (!reasons.includes("generation")) return { outs: withRequest(restate(olds, desired), news) };
    return { outs: withRequest(await bootRescue(ctx, desired, olds.bootedAt), news) };
  }

  async read(id: string, props?: RescueBootOutputs): Promise<pulumi.dynamic.ReadResult<RescueBootOutputs>> {
    if (!props?.host) throw new Error(`RescueBoot ${id}: read needs the stored outputs; import is not supported (create the resource instead, it adopts a running rescue)`);
    const ctx = this.context(resolveInputs(props).serverNumber);
    // Leaving rescue is what rescue does: report where the server is, never propose a change.
    const now = await runStep(ctx, "observe", () => probeEnvironment(ctx, props));
    const outs = jsonSafe({ ...props, ...now }, "outputs");
    // The inputs are the request as recorded, defaults not filled in (what the program asked for).
    return { id, props: outs, inputs: jsonSafe(inputsOf(outs), "inputs") as unknown as RescueBootOutputs };
  }

  async delete(_id: string, props: RescueBootOutputs): Promise<void> {
    const ctx = this.context(resolveInputs(props).serverNumber);
    const rescue = await runStep(ctx, "observe", () => ctx.robot.getRescue(ctx.serverNumber, { accept: ["SERVER_NOT_FOUND"] }));
    const todo = planDelete(rescue.ok && rescue.value.active);
    // Nothing here holds data: a booted rescue is left running (it is gone at the next reboot anyway).
    if (todo.length === 0) ctx.report(`no rescue armed for server ${ctx.serverNumber}: nothing to disarm; removed from the stack only`);
    await runPlan(ctx, todo, steps);
  }

  private context(serverNumber: number): RescueContext {
    const privateKey = requirePrivateKey(this.config, "RescueBoot");
    if (this.config.robot === null) throw new Error(`RescueBoot: ${MISSING_ROBOT_ACCESS}`);
    return rescueContext(this.config.robot, privateKey, serverNumber, `RescueBoot ${serverNumber}`);
  }
}

// One instance for every RescueBoot, so the closure serializer's per-object cache hits.
export const provider = new RescueBootProvider();
