// Robot's backend is PHP, so the emulator reads form bodies the way PHP fills $_POST:
//   a=x&a=y          → a: "y"         (a plain repeat keeps only the last value; community.hrobot#112)
//   a[]=x&a[]=y      → a: ["x", "y"]
//   a[0]=x&a[1]=y    → a: ["x", "y"]  (keyed entries, in order of appearance; later same key wins)
// Deeper nesting (`a[b][c]`) is not used by the endpoints emulated here and is read as one level.

export type PhpFormValue = string | string[];
export type PhpForm = Readonly<Record<string, PhpFormValue>>;

export function parsePhpForm(body: string): PhpForm {
  const scalars = new Map<string, string>();
  const lists = new Map<string, Map<string, string>>();
  let autoIndex = 0;
  for (const [rawName, value] of new URLSearchParams(body)) {
    const match = /^([^[\]]+)\[([^\]]*)\]/.exec(rawName);
    if (!match) {
      lists.delete(rawName);
      scalars.set(rawName, value);
      continue;
    }
    const [, name, index] = match;
    scalars.delete(name);
    const entries = lists.get(name) ?? new Map<string, string>();
    entries.set(index === "" ? `\u0000${autoIndex++}` : index, value);
    lists.set(name, entries);
  }
  const form: Record<string, PhpFormValue> = Object.fromEntries(scalars);
  for (const [name, entries] of lists) form[name] = [...entries.values()];
  return form;
}

/** A single value; a list where one value is expected (even `type[]=hw`, a list of one) makes the field invalid (null). */
export function formScalar(form: PhpForm, name: string): string | undefined | null {
  const value = form[name];
  return Array.isArray(value) ? null : value;
}

/** A list; one plain value counts as a list of one (Robot accepts a single `authorized_key=fp`). */
export function formList(form: PhpForm, name: string): string[] {
  const value = form[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
