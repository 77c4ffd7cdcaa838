// The engine's pure decisions (step_generator.go semantics, reduced to what this project's stacks
// use): which step a registration becomes, the order of deletes, the protect refusals, and the
// summary lines. No I/O here: deployment.ts performs what these decide.
import type { DiffOutcome } from "./provider-host";
import type { Props } from "./wire";

export type Op = "create" | "update" | "replace" | "same";

export interface Recorded {
  /** The recorded inputs, plain. */
  readonly inputs: Props;
  /** Created with ErrorResourceInitFailed: the next `up` updates it whatever the diff says. */
  readonly partial: boolean;
}

export interface Decision {
  readonly op: Op;
  /** Only for a replace: delete the old resource before creating the new one. */
  readonly deleteBeforeReplace: boolean;
}

/**
 * Check has passed; `diff` is the provider's answer against the recorded outputs (absent for a new
 * resource). DIFF_UNKNOWN (a provider without `diff`) falls back to comparing old and new inputs,
 * as the engine does. `deleteBeforeReplace` is the provider's flag or the resource option.
 */
export function decideStep(old: Recorded | undefined, checked: Props, diff: DiffOutcome | undefined, deleteBeforeReplaceOption = false): Decision {
  if (!old || !diff) return { op: "create", deleteBeforeReplace: false };
  if (diff.replaces.length > 0) return { op: "replace", deleteBeforeReplace: diff.deleteBeforeReplace || deleteBeforeReplaceOption };
  const changed = diff.changes === "some" || (diff.changes === "unknown" && JSON.stringify(old.inputs) !== JSON.stringify(checked));
  return { op: changed || old.partial ? "update" : "same", deleteBeforeReplace: false };
}

export interface Node {
  readonly urn: string;
  readonly parent?: string;
  readonly dependencies: readonly string[];
}

/**
 * Dependents before what they depend on (children before parents), so a delete never pulls the
 * ground from under a resource still in place. Ties keep the reverse of `nodes`' order.
 */
export function deletionOrder(nodes: readonly Node[]): string[] {
  const urns = new Set(nodes.map((n) => n.urn));
  const dependents = new Map<string, string[]>(nodes.map((n) => [n.urn, []]));
  for (const n of nodes) {
    for (const dep of [...n.dependencies, ...(n.parent ? [n.parent] : [])]) {
      if (urns.has(dep) && dep !== n.urn) dependents.get(dep)?.push(n.urn);
    }
  }
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (urn: string): void => {
    if (state.get(urn) === "done") return;
    if (state.get(urn) === "visiting") throw new Error(`dependency cycle through ${urn} in the recorded state`);
    state.set(urn, "visiting");
    for (const d of dependents.get(urn) ?? []) visit(d);
    state.set(urn, "done");
    order.push(urn);
  };
  for (const n of [...nodes].reverse()) visit(n.urn);
  return order;
}

// Pulumi's own words (step_generator.go, step.go), so an operator who knows `pulumi` reads them
// as he would there. The engine has no `state unprotect` verb: lifting `protect` means an `up`.
export function protectedReplaceMessage(urn: string): string {
  return (
    `unable to replace resource ${JSON.stringify(urn)}\n` +
    "as it is currently marked for protection. To unprotect the resource, remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`"
  );
}

export function protectedDeleteMessage(urn: string): string {
  return (
    `unable to delete resource ${JSON.stringify(urn)}\n` +
    "as it is currently marked for protection. To unprotect the resource, remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`"
  );
}

export type Counts = Record<"create" | "update" | "replace" | "delete" | "same", number>;

export function emptyCounts(): Counts {
  return { create: 0, update: 0, replace: 0, delete: 0, same: 0 };
}

/** `pulumi`'s "Resources:" block: future tense for a preview, past tense once done. */
export function summaryLines(counts: Counts, preview: boolean): string[] {
  const verb = (future: string, past: string): string => (preview ? `to ${future}` : past);
  const lines = [
    `+ ${counts.create} ${verb("create", "created")}`,
    `~ ${counts.update} ${verb("update", "updated")}`,
    `- ${counts.delete} ${verb("delete", "deleted")}`,
  ];
  if (counts.replace > 0) lines.push(`+-${counts.replace} ${verb("replace", "replaced")}`);
  lines.push(`${counts.same} unchanged`);
  return ["Resources:", ...lines.map((l) => `    ${l}`)];
}
