// A secret value that cannot leak by accident: string conversion, JSON and util.inspect all
// render it as "[secret]". The only way to the plaintext is `reveal()`, which is called at the
// one place it is needed (writing it to a remote process's stdin).

const REDACTED = "[secret]";

export class Secret {
  private readonly value: string;

  constructor(value: string) {
    this.value = value;
    // Defined on the instance, not as a `[Symbol.for(...)]()` class method: Pulumi's closure
    // serializer cannot emit computed symbol method names ("Identifier expected").
    Object.defineProperty(this, Symbol.for("nodejs.util.inspect.custom"), { value: () => REDACTED, enumerable: false });
  }

  reveal(): string {
    return this.value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }
}

/**
 * Below this length a secret is redacted only where it stands as a whole token. Replacing every
 * occurrence of a 3-character password would garble ordinary words ("pas" in "password") and,
 * worse, show where the letters were; a short secret echoed on its own (`password: abc`) is the
 * case that leaks, and that one is a whole token.
 */
export const SHORT_SECRET_LENGTH = 6;

/**
 * Replaces every secret in `text` with "[secret]": a secret of SHORT_SECRET_LENGTH characters or
 * more wherever it occurs, a shorter one wherever no letter or digit touches it on either side.
 * Longer secrets go first, so a short secret inside a long one never splits it. Empty secrets are
 * ignored.
 */
export function redact(text: string, secrets: readonly (Secret | string)[]): string {
  const plains = secrets.map((secret) => (typeof secret === "string" ? secret : secret.reveal())).filter((plain) => plain.length > 0);
  let out = text;
  for (const plain of [...plains].sort((a, b) => b.length - a.length)) {
    out = plain.length >= SHORT_SECRET_LENGTH ? out.split(plain).join(REDACTED) : out.replace(wholeToken(plain), REDACTED);
  }
  return out;
}

function wholeToken(plain: string): RegExp {
  const escaped = plain.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, "gu");
}
