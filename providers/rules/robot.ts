// Robot webservice inputs: server numbers and reset types. Shared by RescueBoot's check and by the
// rescue-boot recipe a connection profile may carry (providers/kernel/host-access.ts).

/** Reset types that reboot a running server; the others switch it off (power, power_long). */
export const REBOOTING_RESET_TYPES = ["hw", "sw", "man"];

export function checkServerNumber(value: unknown): string | undefined {
  if (typeof value === "number" && Number.isInteger(value) && value > 0) return undefined;
  return `expected the server number shown in Robot (a positive integer), found ${JSON.stringify(value)}`;
}

export function checkResetType(type: string): string | undefined {
  if (REBOOTING_RESET_TYPES.includes(type)) return undefined;
  if (type === "power") return `"power" presses the power button: a running server shuts down instead of rebooting into rescue; use "hw" (default), "sw" or "man"`;
  if (type === "power_long") return `"power_long" switches the server off; use "hw" (default), "sw" or "man"`;
  return `expected one of the Robot reset types that reboot a server: ${REBOOTING_RESET_TYPES.join(", ")} (default "hw"), found ${JSON.stringify(type)}`;
}
