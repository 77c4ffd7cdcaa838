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

/** Replaces every occurrence of every secret in `text` with "[secret]". Empty secrets are ignored. */
export function redact(text: string, secrets: readonly (Secret | string)[]): string {
  let out = text;
  for (const secret of secrets) {
    const plain = typeof secret === "string" ? secret : secret.reveal();
    if (plain.length === 0) continue;
    out = out.split(plain).join(REDACTED);
  }
  return out;
}
