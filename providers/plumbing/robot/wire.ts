// The wire format of Robot, as pure functions: PHP-style form bodies, `{"type":{…}}` envelopes
// and the error envelope. Nothing here does I/O, so all of it is unit-tested directly.
import type { RobotApiErrorFields } from "./errors";

/** A form value: a list is sent with PHP array syntax (`name[]=a&name[]=b`). */
export type FormValue = string | number | boolean | readonly (string | number)[];
export type FormFields = Readonly<Record<string, FormValue | undefined>>;

/**
 * Encodes `application/x-www-form-urlencoded` the way Robot's PHP backend reads it. Lists MUST
 * use `name[]=`: a plain repeated `name=a&name=b` keeps only one value (community.hrobot#112).
 * Undefined fields are left out; an empty list is left out too (PHP cannot express it).
 */
export function encodeForm(fields: FormFields): string {
  return formPairs(fields)
    .map(([name, value]) => `${encodeURIComponent(name).replace(/%5B%5D$/, "[]")}=${encodeURIComponent(value)}`)
    .join("&");
}

/** The `[name, value]` pairs `encodeForm` sends, unencoded; also used to describe a request in errors. */
export function formPairs(fields: FormFields): [string, string][] {
  const pairs: [string, string][] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      for (const item of value as readonly (string | number)[]) pairs.push([`${name}[]`, String(item)]);
    } else {
      pairs.push([name, String(value)]);
    }
  }
  return pairs;
}

/** `{"server": {…}}` → `{…}`; throws naming the wrapper it expected and the keys it found. */
export function unwrap(body: unknown, type: string): unknown {
  if (!isRecord(body) || !(type in body)) {
    throw new Error(`expected an object wrapped as {"${type}": {…}}, found ${describeShape(body)}`);
  }
  return body[type];
}

/** `[{"server": {…}}, …]` → `[{…}, …]`. */
export function unwrapList(body: unknown, type: string): unknown[] {
  if (!Array.isArray(body)) {
    throw new Error(`expected a list of {"${type}": {…}} objects, found ${describeShape(body)}`);
  }
  return body.map((item, index) => {
    try {
      return unwrap(item, type);
    } catch (err) {
      throw new Error(`item ${index}: ${(err as Error).message}`);
    }
  });
}

/**
 * Reads `{"error": {status, code, message, missing?, invalid?, max_request?, interval?}}`.
 * The rate-limit count is read from both `max_request` (doc) and `max_requests` (hrobot-rs
 * errata says that is the live spelling). Returns null when the body is not an error envelope.
 */
export function parseErrorEnvelope(body: unknown, httpStatus: number): RobotApiErrorFields | null {
  if (!isRecord(body) || !isRecord(body.error)) return null;
  const error = body.error;
  if (typeof error.code !== "string") return null;
  return {
    status: typeof error.status === "number" ? error.status : httpStatus,
    code: error.code,
    message: typeof error.message === "string" ? error.message : "",
    missing: stringListOrNull(error.missing),
    invalid: stringListOrNull(error.invalid),
    maxRequest: numberOrNull(error.max_request ?? error.max_requests),
    interval: numberOrNull(error.interval),
  };
}

function stringListOrNull(value: unknown): string[] | null {
  if (Array.isArray(value)) return value.map(String);
  // PHP sometimes renders a one-element list as the bare string.
  if (typeof value === "string") return [value];
  return null;
}

function numberOrNull(value: unknown): number | null {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  return null;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describeShape(value: unknown): string {
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (isRecord(value)) return `an object with keys [${Object.keys(value).join(", ")}]`;
  return value === null ? "null" : typeof value;
}
