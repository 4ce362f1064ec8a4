import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { RangeTestResult } from "@fitloop/lr-finder";
import { writeReport, type HistoryData } from "@fitloop/report";
import { runFiles } from "./train.js";

/** `report <run-dir>`: (re)writes the plots and report.html of a run from its recorded history. */
export async function report(runDir: string): Promise<void> {
  const files = runFiles(runDir);
  if (!existsSync(files.history)) throw new Error(`${resolve(runDir)} has no history.json (a run writes it when training ends)`);
  const history = JSON.parse(readFileSync(files.history, "utf8")) as HistoryData;
  const lrFinder = existsSync(files.lrFinder) ? (JSON.parse(readFileSync(files.lrFinder, "utf8")) as RangeTestResult) : undefined;
  const written = await writeReport(history, { dir: files.report, title: "fitloop demo", ...(lrFinder ? { lrFinder } : {}) });
  console.log(`wrote ${written.length} files to ${resolve(files.report)}`);
  console.log(`report: ${resolve(files.reportHtml)}`);
}
