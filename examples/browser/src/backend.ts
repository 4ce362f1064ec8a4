/**
 * Picks and starts the tfjs backend named by `?backend=` (cpu by default). Each backend package is
 * loaded only when asked for (its own chunk). Core's `useBackend` is not used here: it finds the
 * packages with a run-time `import(name)` of a bare specifier, which only Node can resolve.
 */
import * as tf from "@tensorflow/tfjs-core";

export const BACKENDS = ["cpu", "webgl", "wasm"] as const;
export type BrowserBackend = (typeof BACKENDS)[number];

/** A backend that cannot run here, with a message that says why and what to use instead. */
export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: string,
    message: string,
  ) {
    super(message);
    this.name = "BackendUnavailableError";
  }
}

/** The backend the query string asks for; an unknown name is an error, not a silent fallback. */
export function requestedBackend(search: string): BrowserBackend {
  const name = new URLSearchParams(search).get("backend") ?? "cpu";
  const known = BACKENDS.find((b) => b === name);
  if (!known) throw new BackendUnavailableError(name, `unknown backend "${name}" in ?backend=; use one of ${BACKENDS.join(", ")}`);
  return known;
}

/** Loads, activates and checks the backend; returns tfjs's name of the active one. */
export async function startBackend(name: BrowserBackend): Promise<string> {
  if (name === "cpu") await import("@tensorflow/tfjs-backend-cpu");
  if (name === "webgl") {
    const why = webglMissing();
    if (why) throw new BackendUnavailableError("webgl", `WebGL is not available in this browser (${why}); the webgl backend cannot run here: use ?backend=cpu or ?backend=wasm`);
    await import("@tensorflow/tfjs-backend-webgl");
  }
  if (name === "wasm") {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    const { wasmFiles } = await import("./wasm-files.js");
    wasm.setWasmPaths(wasmFiles);
  }
  // setBackend resolves false (and tfjs only warns) when the backend fails to start.
  const started = await tf.setBackend(name);
  await tf.ready();
  if (!started || tf.getBackend() !== name) {
    throw new BackendUnavailableError(name, `the ${name} backend failed to start in this browser (active backend: ${tf.getBackend() ?? "none"}); see the console for tfjs's reason`);
  }
  return tf.getBackend();
}

/** Why no WebGL context can be made, or undefined when one can. */
function webglMissing(): string | undefined {
  const gl = document.createElement("canvas").getContext("webgl2") ?? document.createElement("canvas").getContext("webgl");
  if (!gl) return "it gave no webgl2 or webgl context: no usable GPU, and no software renderer";
  gl.getExtension("WEBGL_lose_context")?.loseContext(); // give the probe's context back at once
  return undefined;
}

/** What draws for the webgl backend (e.g. a GPU, or SwiftShader, Chromium's software renderer). */
export function webglRenderer(): string | undefined {
  const gl = document.createElement("canvas").getContext("webgl2") ?? document.createElement("canvas").getContext("webgl");
  if (!gl) return undefined;
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  gl.getExtension("WEBGL_lose_context")?.loseContext();
  return renderer;
}
