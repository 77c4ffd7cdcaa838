// Hetzner Robot webservice client: see client.ts for the methods, errors.ts for what a failure carries.
export { RobotClient } from "./client";
export type { RobotClientOptions, Accept, ArmRescueOptions, EnsureKeyResult } from "./client";
export { RobotApiError, RobotNetworkError, RobotResponseError } from "./errors";
export type { RobotErrorCode, RobotRequestDescription } from "./errors";
export { DEFAULT_ROBOT_URL } from "./transport";
export type { RobotResult, RobotWaitEvent } from "./transport";
export { robotKeyFingerprint, OTHER_BOOT_TYPES } from "./model";
export type {
  ResetType,
  RobotServer,
  RobotServerFeatures,
  RobotSubnet,
  RobotReset,
  RobotResetResult,
  RobotRescue,
  RobotBootConfigs,
  RobotOtherBoot,
  OtherBootType,
  RobotKey,
  RobotKeyRef,
  RobotHostKey,
  RobotWol,
} from "./model";
