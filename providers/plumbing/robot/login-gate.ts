// One 401 stops every Robot call of this process for the same Robot URL and webservice user.
// Robot locks the source IP out for 10 minutes after three failed logins, and a Pulumi run calls
// Robot from several resources at once: without this gate, three parallel resources with a wrong
// password would send three logins and lock the operator out.
//
// Until a login with these credentials has succeeded, calls go one at a time (the first proves
// the credentials, the others wait for its verdict); after a success they run in parallel; after
// a 401 every call fails at once without a request, until the process ends (a provider process
// lives for one Pulumi operation, so the next `pulumi up` tries again with whatever is configured).
//
// Where the state lives: Pulumi's closure serializer copies module-level values into each
// resource's provider text, so a module-level Map would be one Map per resource, not per process.
// The gates hang off `globalThis` under a `Symbol.for` key instead: every copy of this module in
// the provider host process finds the same registry.

export interface LoginRejection {
  /** When the 401 came, for the message. */
  readonly at: number;
  /** The request that got it, e.g. "GET /server/1001". */
  readonly request: string;
}

interface Gate {
  verdict: "unknown" | "accepted" | "rejected";
  rejection: LoginRejection | null;
  /** Set while one call is proving the credentials; the others await it. */
  proving: Promise<void> | null;
}

export type LoginOutcome = "accepted" | "rejected" | "unknown";

/** What `enter` hands back: report the outcome once the answer is in (any outcome releases waiters). */
export interface LoginTicket {
  leave(outcome: LoginOutcome, request?: string): void;
}

const REGISTRY_KEY = "hetzner-fde/robot-login-gates";

function registry(): Map<string, Gate> {
  const holder = globalThis as unknown as Record<symbol, Map<string, Gate> | undefined>;
  const key = Symbol.for(REGISTRY_KEY);
  let gates = holder[key];
  if (!gates) {
    gates = new Map();
    holder[key] = gates;
  }
  return gates;
}

/** The gate's key: the Robot base URL and the user; the password is never part of it. */
export function gateKey(baseUrl: string, user: string): string {
  return `${baseUrl}\n${user}`;
}

/**
 * Waits until this call may send a request. Resolves with a ticket, or with the recorded 401 when
 * these credentials were already rejected in this process (then nothing may be sent).
 */
export async function enterLoginGate(key: string): Promise<{ ticket: LoginTicket } | { rejected: LoginRejection }> {
  const gates = registry();
  for (;;) {
    let gate = gates.get(key);
    if (!gate) {
      gate = { verdict: "unknown", rejection: null, proving: null };
      gates.set(key, gate);
    }
    if (gate.verdict === "rejected" && gate.rejection) return { rejected: gate.rejection };
    if (gate.verdict === "accepted") return { ticket: { leave: (outcome, request) => record(gate!, outcome, request) } };
    if (gate.proving) {
      await gate.proving;
      continue;
    }
    let release: () => void = () => undefined;
    gate.proving = new Promise<void>((resolve) => (release = resolve));
    const proving = gate;
    return {
      ticket: {
        leave: (outcome, request) => {
          record(proving, outcome, request);
          proving.proving = null;
          release();
        },
      },
    };
  }
}

function record(gate: Gate, outcome: LoginOutcome, request: string | undefined): void {
  if (outcome === "rejected") {
    gate.verdict = "rejected";
    gate.rejection = { at: Date.now(), request: request ?? "a Robot request" };
  } else if (outcome === "accepted" && gate.verdict !== "rejected") {
    gate.verdict = "accepted";
  }
}
