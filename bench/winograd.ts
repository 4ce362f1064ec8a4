/**
 * 3x3 stride-1 convolutions by Winograd F(2x2, 3x3) against fitloop's direct kernels, per call, on
 * the wasm backend: the forward convolution, the input gradient (Conv2DBackpropInput) and the filter
 * gradient (Conv2DBackpropFilter) for the bench CNN's second layer and a few common shapes, with
 * `setWinogradEnabled(true)` and `(false)` alternating round by round in one process. The direct
 * forward is fitloop's image-by-image kernel with kernel threads where it applies (32+ output
 * channels; XNNPACK's threaded convolution for 16 -> 16), XNNPACK's convolution without
 * (`THREADS=false`). Where Winograd does not take a call (a filter gradient whose image tiles exceed
 * WINOGRAD_FILTER_GRAD_MAX_TILE_BYTES), both arms run the same kernel.
 *
 *   pnpm run bench:winograd        # env: ROUNDS (6), CALLS (10 per round), THREADS (default | false | n)
 *
 * Prints a table (median ms per call, direct -> Winograd, speed-up), then one JSON line
 * {"bench":"winograd","threads":T,"shapes":[{x,filter,pad,forward,input_grad,filter_grad}],"conv2":{...}}
 * with the speed-ups (direct ms / Winograd ms).
 */
import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "../packages/core/src/index.js";
import { setWinogradEnabled } from "../packages/wasm/src/index.js";
import { intEnv, median, printTable, threadsEnv, wasmThreadCount } from "./models.js";

const ROUNDS = intEnv("ROUNDS", 6);
const CALLS = intEnv("CALLS", 10);

type Shape4 = [number, number, number, number];
const SHAPES: { x: Shape4; filter: Shape4; pad: "same" | "valid"; name: string }[] = [
  { x: [64, 13, 13, 32], filter: [3, 3, 32, 64], pad: "valid", name: "conv2" }, // bench/models.ts's CNN, second layer
  { x: [64, 26, 26, 16], filter: [3, 3, 16, 16], pad: "same", name: "26x26 16->16" },
  { x: [64, 26, 26, 16], filter: [3, 3, 16, 32], pad: "same", name: "26x26 16->32" },
  { x: [32, 32, 32, 32], filter: [3, 3, 32, 32], pad: "same", name: "32x32 32->32" },
  { x: [16, 16, 16, 64], filter: [3, 3, 64, 64], pad: "same", name: "16x16 64->64" },
  { x: [32, 8, 8, 128], filter: [3, 3, 128, 128], pad: "same", name: "8x8 128->128" },
];
const OPS = ["forward", "input_grad", "filter_grad"] as const;
type Op = (typeof OPS)[number];

await useBackend("wasm", threadsEnv());
const threads = await wasmThreadCount();
console.log(`wasm, ${threads} thread(s); ${ROUNDS} rounds of ${CALLS} calls per arm, Winograd and direct alternating; medians`);

const rows: string[][] = [];
const results: Record<string, unknown>[] = [];
for (const s of SHAPES) {
  const x = tf.randomUniform(s.x, -1, 1, "float32", 1) as tf.Tensor4D;
  const w = tf.randomUniform(s.filter, -0.2, 0.2, "float32", 2) as tf.Tensor4D;
  const outShape = tf.backend_util.computeConv2DInfo(s.x, s.filter, 1, 1, s.pad).outShape;
  const dy = tf.randomUniform(outShape, -1, 1, "float32", 3);
  const attrs = { strides: 1, pad: s.pad, dataFormat: "NHWC" };
  const calls: Record<Op, () => tf.Tensor> = {
    forward: () => tf.conv2d(x, w, 1, s.pad),
    input_grad: () => tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: w }, { ...attrs, inputShape: s.x } as unknown as tf.NamedAttrMap) as tf.Tensor,
    filter_grad: () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape: s.filter } as unknown as tf.NamedAttrMap) as tf.Tensor,
  };
  const times = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const on of round % 2 ? [false, true] : [true, false]) {
      setWinogradEnabled(on);
      for (const op of OPS) {
        for (let i = 0; i < 2; i++) calls[op]().dispose();
        const t0 = performance.now();
        for (let i = 0; i < CALLS; i++) calls[op]().dispose();
        const key = `${op} ${on}`;
        times.set(key, [...(times.get(key) ?? []), (performance.now() - t0) / CALLS]);
      }
    }
  }
  setWinogradEnabled(true);
  const record: Record<string, unknown> = { x: s.x, filter: s.filter, pad: s.pad };
  const cells = OPS.map((op) => {
    const [direct, wino] = [median(times.get(`${op} false`)!), median(times.get(`${op} true`)!)];
    record[op] = Math.round((direct / wino) * 1000) / 1000;
    return `${direct.toFixed(2)} -> ${wino.toFixed(2)} (${(direct / wino).toFixed(2)}x)`;
  });
  rows.push([s.name, `${JSON.stringify(s.x)} ${s.pad}`, ...cells]);
  results.push(record);
  tf.dispose([x, w, dy]);
}
printTable(["shape", "x, padding", "forward ms", "input gradient ms", "filter gradient ms"], rows);
console.log(JSON.stringify({ bench: "winograd", threads, shapes: results, conv2: results[0] }));
