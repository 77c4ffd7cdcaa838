// One class per Robot error code (moto's exceptions.py). Each knows its HTTP status, Robot's
// message text and its extra fields, and renders the documented envelope:
//   {"error": {"status": 400, "code": "INVALID_INPUT", "message": "…", "missing": null, "invalid": ["type"]}}

export class RobotError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.name = "RobotError";
    this.status = status;
    this.code = code;
    this.extra = extra;
  }

  toJSON(): { error: Record<string, unknown> } {
    return { error: { status: this.status, code: this.code, message: this.message, ...this.extra } };
  }
}

export class Unauthorized extends RobotError {
  constructor() {
    super(401, "UNAUTHORIZED", "Unauthorized");
  }
}

export class RateLimitExceeded extends RobotError {
  constructor(maxRequest: number, intervalSeconds: number) {
    // The doc spells it `max_request`; hrobot-rs claims the live API says `max_requests`. Clients read both.
    super(403, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded", { max_request: maxRequest, interval: intervalSeconds });
  }
}

export class InvalidInput extends RobotError {
  constructor(fields: { missing?: string[]; invalid?: string[] }) {
    super(400, "INVALID_INPUT", "Invalid input parameters", {
      missing: fields.missing && fields.missing.length > 0 ? fields.missing : null,
      invalid: fields.invalid && fields.invalid.length > 0 ? fields.invalid : null,
    });
  }
}

export class ServerNotFound extends RobotError {
  constructor() {
    super(404, "SERVER_NOT_FOUND", "Server not found");
  }
}

export class NotFound extends RobotError {
  constructor(message = "Not found") {
    super(404, "NOT_FOUND", message);
  }
}

export class MethodNotAllowed extends RobotError {
  constructor(allowed: string[]) {
    super(405, "METHOD_NOT_ALLOWED", `Method not allowed; allowed: ${allowed.join(", ")}`);
  }
}

export class ResetNotAvailable extends RobotError {
  constructor() {
    super(404, "RESET_NOT_AVAILABLE", "The server has no reset option");
  }
}

export class ResetManualActive extends RobotError {
  constructor() {
    super(409, "RESET_MANUAL_ACTIVE", "There is already a running manual reset");
  }
}

export class ResetFailed extends RobotError {
  constructor() {
    super(500, "RESET_FAILED", "Resetting failed due to an internal error");
  }
}

export class BootNotAvailable extends RobotError {
  constructor() {
    super(404, "BOOT_NOT_AVAILABLE", "No boot configuration available for this server");
  }
}

export class BootAlreadyEnabled extends RobotError {
  constructor(activeType: string) {
    super(409, "BOOT_ALREADY_ENABLED", `A boot configuration is already active (${activeType})`);
  }
}

export class KeyAlreadyExists extends RobotError {
  constructor() {
    super(409, "KEY_ALREADY_EXISTS", "The key already exists");
  }
}

export class WolNotAvailable extends RobotError {
  constructor() {
    super(404, "WOL_NOT_AVAILABLE", "Wake On LAN is not available for this server");
  }
}

export class InternalError extends RobotError {
  constructor() {
    super(500, "INTERNAL_ERROR", "Internal error");
  }
}
