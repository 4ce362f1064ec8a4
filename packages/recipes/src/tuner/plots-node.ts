import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { toPng, toSvg } from "@fitloop/report";
import { studyPlots, type StudyPlotOptions, type StudyView } from "./summary.js";

export interface WriteStudyPlotsOptions extends StudyPlotOptions {
  readonly dir: string;
  /** Default ["svg", "png"]. */
  readonly formats?: readonly ("svg" | "png")[];
  /** PNG pixels per SVG unit. Default 2. */
  readonly pngScale?: number;
}

/** Writes `study-history.{svg,png}` and `study-params.{svg,png}` (through a temporary file and a rename); returns the paths. */
export async function writeStudyPlots(study: StudyView, options: WriteStudyPlotsOptions): Promise<string[]> {
  const formats = options.formats ?? ["svg", "png"];
  const plots = studyPlots(study, options);
  await mkdir(options.dir, { recursive: true });
  const written: string[] = [];
  const put = async (name: string, data: string | Buffer) => {
    const file = join(options.dir, name);
    await writeFile(`${file}.tmp-${process.pid}`, data);
    await rename(`${file}.tmp-${process.pid}`, file);
    written.push(file);
  };
  for (const [name, spec] of [["study-history", plots.history], ["study-params", plots.params]] as const) {
    if (!spec) continue;
    const svg = await toSvg(spec);
    if (formats.includes("svg")) await put(`${name}.svg`, svg);
    if (formats.includes("png")) await put(`${name}.png`, await toPng(svg, { scale: options.pngScale ?? 2 }));
  }
  return written;
}
