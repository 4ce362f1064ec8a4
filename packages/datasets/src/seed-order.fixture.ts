/**
 * Run in a child process by order.test.ts: prints the loader's order and a digest of the first
 * augmented batch for a seed, so the test can compare them with the parent process.
 */
import { DataLoader, gaussianNoise, randomRotation, randomShift, twoSpirals } from "./index.js";

const seed = Number(process.argv[2] ?? 0);
const ds = twoSpirals({ samples: 64, seed: 1 });
const images = { ...ds, x: Float32Array.from({ length: 64 * 16 }, (_, k) => ds.x[(k % 2) + 2 * Math.floor(k / 16)]!), sampleShape: [4, 4, 1] };
export const fixtureLoader = (s: number) =>
  new DataLoader(images, { batchSize: 8, seed: s, transforms: [randomShift({ maxShift: 1 }), randomRotation({ maxDegrees: 10 }), gaussianNoise({ std: 0.1 })] });

if (process.argv[1]?.endsWith("seed-order.fixture.ts")) {
  const loader = fixtureLoader(seed);
  const batch = loader.hostBatch(3, 2);
  console.log(JSON.stringify({ order: Array.from(loader.order(3)), indices: Array.from(batch.indices), x: Array.from(batch.x) }));
}
