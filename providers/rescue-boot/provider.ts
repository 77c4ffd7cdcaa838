// RescueBoot on the kernel: the definition the KernelProvider runs. Nothing here but wiring.
//
// Its `reach` is Robot, not SSH: the server is booted into rescue through the Robot API before any
// SSH exists (awaitRescue then logs in), so its session is a Robot client. Its delete destroys
// nothing (it disarms a rescue still armed), so it runs whatever allowWipe says.
import { MISSING_ROBOT_ACCESS } from "../kernel/config";
import { KernelProvider, Reach, ReachContext, ResourceDefinition } from "../kernel/provider";
import { RobotClient } from "../plumbing/robot";
import { inputsOf, outputsFrom, restateRequest } from "./outputs";
import { explainPlan, planDelete, planRescue, requestKey } from "./plan";
import { observedFromOutputs, probe } from "./probe";
import { steps } from "./steps";
import type { RescueBootInputs, RescueBootOutputs, RescueObserved, RescueSession, RescueStep } from "./types";
import { firstContactWarning, validate } from "./validate";

/** Robot, for the server the subject names; the log channel and step errors name the server number. */
export async function reachRobot(access: ReachContext, subject: RescueBootInputs | RescueBootOutputs): Promise<Reach<RescueSession>> {
  if (access.config.robot === null) throw new Error(`RescueBoot: ${MISSING_ROBOT_ACCESS}`);
  const { user, password, url } = access.config.robot;
  const host = String(subject.serverNumber);
  const log = access.log.child(host);
  const robot = new RobotClient({ user, password, baseUrl: url, onWait: (event) => log.info(event.message) });
  return {
    session: { robot, serverNumber: subject.serverNumber, privateKey: access.privateKey, armedHostKeys: null, verified: null },
    // Where this resource aims; the outputs say where the server was found.
    reached: { environment: "rescue", host },
    close: async () => undefined,
  };
}

export const definition: ResourceDefinition<RescueBootInputs, RescueBootOutputs, RescueObserved, RescueStep, RescueSession> = {
  type: "RescueBoot",
  // A boot (arm, reset, wait), the probe that verifies it, one to spare.
  maxRounds: 3,
  replaceIfUnknown: ["serverNumber"],
  validate: (news) => validate(news),
  // Trusting a first contact is the one unverified step RescueBoot can take: every preview says so.
  checkWarnings: (news) => [firstContactWarning(news)].filter((w): w is string => w !== null),
  reach: reachRobot,
  probe,
  plan: (observed, desired, recorded) => planRescue(observed, desired, recorded),
  recordedFacts: (recorded) => observedFromOutputs(recorded),
  steps,
  outputs: outputsFrom,
  restate: restateRequest,
  requestKey,
  explain: explainPlan,
  inputsOf,
  id: (outs) => String(outs.serverNumber),
  // Rescue is one-shot: a server that left it still had it; refresh reports where it is instead.
  exists: () => true,
  planDelete: (observed) => planDelete(observed),
  deleteKeepsData: true,
  retained: (olds) => `the rescue boot of server ${olds.serverNumber}`,
};

// One instance for every RescueBoot, so the closure serializer's per-object cache hits.
export const provider = new KernelProvider(definition);
