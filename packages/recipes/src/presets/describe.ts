import { pluginName, type Callback } from "@fitloop/core";

/** One line of a preset's wiring: a setting, its value, and where the value comes from. */
export interface WiringRow {
  readonly setting: string;
  readonly value: string;
  /** A default's source (the lectures, a paper, a library's default), or "yours". */
  readonly source: string;
}

/** The wiring as a table, then the plugins. */
export function formatWiring(name: string, rows: readonly WiringRow[], callbacks: readonly Callback[]): string {
  const header: WiringRow = { setting: "setting", value: "value", source: "from" };
  const all = [header, ...rows];
  const w1 = Math.max(...all.map((r) => r.setting.length));
  const w2 = Math.max(...all.map((r) => r.value.length));
  const lines = all.map((r) => `${r.setting.padEnd(w1)}  ${r.value.padEnd(w2)}  ${r.source}`);
  const names = callbacks.map((c, i) => pluginName(c, i));
  return [`${name} preset: ${names.length} plugins`, ...lines, `callbacks: ${names.join(", ")}`].join("\n");
}
