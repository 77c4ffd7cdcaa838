// Every Robot failure becomes one typed error whose message says what was asked, what came back
// and what to do next (hrobot's format_error_msg plus one sentence per code). Nothing here ever
// sees the webservice password: callers build the request description from method, path and the
// form field values, and the transport redacts the result once more before throwing.

import { keepErrorMessage } from "../errors";

/** Error codes documented by Robot (and BOOT_ALREADY_ENABLED, seen in the field). */
export type RobotErrorCode =
  | "UNAUTHORIZED"
  | "RATE_LIMIT_EXCEEDED"
  | "INVALID_INPUT"
  | "SERVER_NOT_FOUND"
  | "NOT_FOUND"
  | "RESET_NOT_AVAILABLE"
  | "RESET_MANUAL_ACTIVE"
  | "RESET_FAILED"
  | "BOOT_NOT_AVAILABLE"
  | "BOOT_ACTIVATION_FAILED"
  | "BOOT_DEACTIVATION_FAILED"
  | "BOOT_ALREADY_ENABLED"
  | "KEY_ALREADY_EXISTS"
  | "KEY_CREATE_FAILED"
  | "KEY_UPDATE_FAILED"
  | "KEY_DELETE_FAILED"
  | "WOL_NOT_AVAILABLE"
  | "WOL_FAILED"
  | "CONFLICT"
  | "INTERNAL_ERROR"
  | "METHOD_NOT_ALLOWED"
  /** Synthetic: the answer was not a Robot error envelope (proxy page, truncated body, 503 maintenance…). */
  | "UNEXPECTED_RESPONSE";

/** What the client asked, for error messages: `POST /boot/1001/rescue (os=linux, authorized_key[]=…)`. */
export interface RobotRequestDescription {
  readonly method: string;
  readonly path: string;
  /** Already-encoded `name=value` pairs; never contains secrets (Robot requests carry none besides auth). */
  readonly params: readonly string[];
}

export interface RobotApiErrorFields {
  readonly status: number;
  readonly code: RobotErrorCode | string;
  readonly message: string;
  readonly missing: readonly string[] | null;
  readonly invalid: readonly string[] | null;
  /** RATE_LIMIT_EXCEEDED only: requests allowed per `interval`. */
  readonly maxRequest: number | null;
  /** RATE_LIMIT_EXCEEDED only: the window in seconds, i.e. how long to wait. */
  readonly interval: number | null;
}

export class RobotApiError extends Error implements RobotApiErrorFields {
  readonly status: number;
  readonly code: RobotErrorCode | string;
  /** Robot's own message text, as sent. `message` (the Error's) is the full sentence. */
  readonly robotMessage: string;
  readonly missing: readonly string[] | null;
  readonly invalid: readonly string[] | null;
  readonly maxRequest: number | null;
  readonly interval: number | null;
  readonly request: RobotRequestDescription;
  /** Requests sent for this call, retries included (a 401 is always exactly 1). */
  readonly attempts: number;

  constructor(fields: RobotApiErrorFields, request: RobotRequestDescription, attempts: number, fullMessage: string) {
    super(fullMessage);
    this.name = "RobotApiError";
    this.status = fields.status;
    this.code = fields.code;
    this.robotMessage = fields.message;
    this.missing = fields.missing;
    this.invalid = fields.invalid;
    this.maxRequest = fields.maxRequest;
    this.interval = fields.interval;
    this.request = request;
    this.attempts = attempts;
    keepErrorMessage(this, fullMessage);
  }
}

/** The request never got an HTTP answer (DNS, refused, reset, timeout). */
export class RobotNetworkError extends Error {
  readonly request: RobotRequestDescription;
  readonly attempts: number;
  constructor(message: string, request: RobotRequestDescription, attempts: number) {
    super(message);
    this.name = "RobotNetworkError";
    this.request = request;
    this.attempts = attempts;
    keepErrorMessage(this, message);
  }
}

/** The answer was a success status but not the shape this client expects. */
export class RobotResponseError extends Error {
  readonly request: RobotRequestDescription;
  constructor(message: string, request: RobotRequestDescription) {
    super(message);
    this.name = "RobotResponseError";
    this.request = request;
    keepErrorMessage(this, message);
  }
}

export function describeRequest(request: RobotRequestDescription): string {
  return request.params.length === 0 ? `${request.method} ${request.path}` : `${request.method} ${request.path} (${request.params.join(", ")})`;
}

/** One sentence per code: what to do about it. */
export function adviceFor(fields: RobotApiErrorFields): string {
  switch (fields.code) {
    case "UNAUTHORIZED":
      return (
        "Check the Robot webservice user and password (Robot → Settings → Web service and app settings; it is not the Robot login). " +
        "Not retried: three failed logins block this IP for 10 minutes."
      );
    case "RATE_LIMIT_EXCEEDED":
      return `Robot allows ${fields.maxRequest ?? "?"} such requests per ${fields.interval ?? "?"} s; wait and run again later.`;
    case "INVALID_INPUT":
      return invalidInputAdvice(fields);
    case "SERVER_NOT_FOUND":
      return "No server with this number (or IP) on this Robot account; listServers() shows the ones there are.";
    case "NOT_FOUND":
      return "Robot has no such object (for /key: no key with this MD5 fingerprint; ensureKey() uploads it).";
    case "RESET_NOT_AVAILABLE":
      return "This server has no reset option in Robot; ask Hetzner support to power-cycle it.";
    case "RESET_MANUAL_ACTIVE":
      return "A manual reset by a technician is still pending; wait until it is done before resetting again.";
    case "RESET_FAILED":
      return "Robot failed internally; resets are not retried automatically (they are not idempotent), run again later.";
    case "BOOT_NOT_AVAILABLE":
      return "This server has no boot configuration (rescue) option in Robot.";
    case "BOOT_ALREADY_ENABLED":
      return "Another boot configuration is active; deactivate it (DELETE /boot/{n}/<type>) before arming a new one.";
    case "KEY_ALREADY_EXISTS":
      return "The same key material is already stored, possibly under another name; ensureKey() reuses it by fingerprint.";
    case "WOL_NOT_AVAILABLE":
      return "This server does not support Wake-on-LAN.";
    case "UNEXPECTED_RESPONSE":
      return "Robot may be in maintenance or a proxy answered; retry later, and check the base URL.";
    default:
      return "See https://robot.hetzner.com/doc/webservice/en.html for this code.";
  }
}

function invalidInputAdvice(fields: RobotApiErrorFields): string {
  const parts: string[] = [];
  if (fields.invalid?.includes("authorized_key")) {
    parts.push("authorized_key must be MD5 fingerprints of keys already stored via POST /key (ensureKey() stores them)");
  }
  if (fields.invalid?.includes("type")) {
    parts.push("the reset type is not offered by this server (getReset(n).types lists the offered ones)");
  }
  if (parts.length === 0) parts.push("fix the listed parameters");
  return capitalize(parts.join("; ")) + ".";
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function formatApiErrorMessage(fields: RobotApiErrorFields, request: RobotRequestDescription, attempts: number): string {
  const details: string[] = [];
  if (fields.missing && fields.missing.length > 0) details.push(`missing: ${fields.missing.join(", ")}`);
  if (fields.invalid && fields.invalid.length > 0) details.push(`invalid: ${fields.invalid.join(", ")}`);
  if (fields.maxRequest !== null) details.push(`max_request: ${fields.maxRequest}`);
  if (fields.interval !== null) details.push(`interval: ${fields.interval} s`);
  const detailText = details.length > 0 ? ` (${details.join("; ")})` : "";
  const attemptText = attempts > 1 ? ` after ${attempts} attempts` : "";
  return (
    `Robot ${describeRequest(request)} answered ${fields.status} ${fields.code}${attemptText}: ` +
    `${JSON.stringify(fields.message)}${detailText}. ${adviceFor(fields)}`
  );
}
