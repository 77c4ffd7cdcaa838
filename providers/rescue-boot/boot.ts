// One rescue boot outside a RescueBoot resource: InstallImage's delete, when the host no longer runs
// its rescue, boots one with RescueBoot's definition on the kernel's loop (`convergeDefinition`).
// Robot credentials and their config keys live in the kernel; re-exported here for InstallImage.
import { MISSING_ROBOT_ACCESS, RobotAccess, robotAccessFromConfig } from "../kernel/config";
import { convergeDefinition, ProviderAccess } from "../kernel/provider";
import { planRescue } from "./plan";
import { definition } from "./provider";
import type { RescueBootInputs, RescueBootOutputs } from "./types";

export { MISSING_ROBOT_ACCESS, robotAccessFromConfig };
export type { RobotAccess };

/**
 * Probe, plan and run one rescue boot; returns what RescueBoot outputs. `bootedAfter`: a rescue of
 * the last activation booted after this instant counts as this run's (an earlier, killed run asked
 * for it), so it is adopted rather than reset again.
 */
export function bootRescue(access: ProviderAccess, inputs: RescueBootInputs, bootedAfter: string | null): Promise<RescueBootOutputs> {
  return convergeDefinition({ ...definition, plan: (observed, desired) => planRescue(observed, desired, null, bootedAfter) }, access, inputs, null);
}
