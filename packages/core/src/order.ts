import type { Callback } from "./callback.js";
import { ORDER } from "./callback.js";
import { EVENTS, REVERSED_EVENTS, type EventName } from "./events.js";
import { OptionsError, PluginOrderError } from "./errors.js";
import { checkPlugin } from "./plugin-check.js";

/** A plugin with its resolved name and position. */
export interface ResolvedPlugin {
  readonly name: string;
  readonly callback: Callback;
  readonly order: number;
  readonly index: number;
}

export function pluginName(cb: Callback, index: number): string {
  if (typeof cb.name === "string" && cb.name.length > 0 && cb.name !== "Object") return cb.name;
  const ctor = (cb as { constructor?: { name?: string } }).constructor;
  if (ctor && ctor !== Object && ctor.name) return ctor.name;
  return `inline#${index}`;
}

/**
 * Resolves the run order: a topological order of `runsAfter`/`runsBefore` constraints that,
 * among plugins free to go next, picks the lowest `order`, then the earliest registered.
 * Cycles and references to plugins that are not registered are errors.
 */
export function resolveOrder(callbacks: readonly Callback[]): ResolvedPlugin[] {
  const plugins = callbacks.map((callback, index) => ({ name: pluginName(callback, index), callback, order: callback.order ?? ORDER.DEFAULT, index }));
  const byName = new Map<string, ResolvedPlugin>();
  for (const p of plugins) {
    checkPlugin(p.callback, p.name);
    if (typeof p.order !== "number" || !Number.isFinite(p.order)) {
      throw new OptionsError(p.name, [{ path: "order", message: `must be a finite number (see ORDER), got ${String(p.order)}` }]);
    }
    if (byName.has(p.name)) {
      throw new PluginOrderError("DUPLICATE_PLUGIN_NAME", `two plugins are named "${p.name}"; give one a different \`name\` so order constraints are unambiguous`);
    }
    byName.set(p.name, p);
  }
  // edges: a -> b means a runs before b
  const after = new Map<string, Set<string>>(plugins.map((p) => [p.name, new Set<string>()]));
  const need = (from: ResolvedPlugin, other: string, field: string): ResolvedPlugin => {
    const target = byName.get(other);
    if (!target) {
      const known = [...byName.keys()].join(", ");
      throw new PluginOrderError("MISSING_PLUGIN", `plugin "${from.name}" declares ${field}: "${other}", but no plugin of that name is registered (registered: ${known})`);
    }
    return target;
  };
  for (const p of plugins) {
    for (const other of p.callback.runsAfter ?? []) after.get(need(p, other, "runsAfter").name)!.add(p.name);
    for (const other of p.callback.runsBefore ?? []) {
      need(p, other, "runsBefore");
      after.get(p.name)!.add(other);
    }
  }
  const indegree = new Map<string, number>(plugins.map((p) => [p.name, 0]));
  for (const targets of after.values()) for (const t of targets) indegree.set(t, indegree.get(t)! + 1);
  const rank = (a: ResolvedPlugin, b: ResolvedPlugin) => a.order - b.order || a.index - b.index;
  const ready = plugins.filter((p) => indegree.get(p.name) === 0).sort(rank);
  const out: ResolvedPlugin[] = [];
  while (ready.length > 0) {
    const next = ready.shift()!;
    out.push(next);
    for (const t of after.get(next.name)!) {
      const d = indegree.get(t)! - 1;
      indegree.set(t, d);
      if (d === 0) {
        ready.push(byName.get(t)!);
        ready.sort(rank);
      }
    }
  }
  if (out.length < plugins.length) {
    const stuck = plugins.filter((p) => !out.includes(p)).map((p) => p.name);
    throw new PluginOrderError("ORDER_CYCLE", `plugin order has a cycle among: ${findCycle(stuck, after).join(" -> ")}`);
  }
  return out;
}

/** A cycle among the plugins left over by the topological sort (depth-first, three colours). */
function findCycle(stuck: string[], after: Map<string, Set<string>>): string[] {
  const inStuck = new Set(stuck);
  const colour = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    colour.set(node, "open");
    path.push(node);
    for (const next of after.get(node)!) {
      if (!inStuck.has(next)) continue;
      if (colour.get(next) === "open") return [...path.slice(path.indexOf(next)), next];
      if (!colour.has(next)) {
        const found = visit(next);
        if (found) return found;
      }
    }
    path.pop();
    colour.set(node, "done");
    return undefined;
  };
  for (const node of stuck) {
    if (colour.has(node)) continue;
    const found = visit(node);
    if (found) return found;
  }
  return stuck; // unreachable: leftovers of Kahn's algorithm always contain a cycle
}

/** Plugins that implement `event`, in the order their hooks run. */
export function hookOrder(plugins: readonly ResolvedPlugin[], event: EventName): ResolvedPlugin[] {
  const list = plugins.filter((p) => typeof p.callback[event] === "function");
  return REVERSED_EVENTS.has(event) ? list.reverse() : list;
}

/** The loop as text: every event with the plugins that run on it, in order. */
export function describeOrder(plugins: readonly ResolvedPlugin[]): string {
  const lines = [`plugins (resolved order): ${plugins.map((p) => `${p.name}(${p.order})`).join(", ") || "(none)"}`];
  for (const event of EVENTS) {
    const names = hookOrder(plugins, event).map((p) => p.name);
    lines.push(`${event.padEnd(15)} ${names.length ? names.join(" -> ") : "-"}`);
  }
  return lines.join("\n");
}
