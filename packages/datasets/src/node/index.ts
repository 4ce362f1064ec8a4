/** Node-only parts of @fitloop/datasets: IDX files (plain or gzipped) and the embedded MNIST digits. */
export { readIdxFile, writeIdxFile, resolveIdxPath, loadMnist, loadFashionMnist, type LoadMnistOptions } from "./idx-files.js";
export { openIdxStream, type IdxStreamOptions, type IdxStreamSource } from "./idx-stream.js";
export { loadEmbeddedMnist, embeddedMnistDir } from "./embedded.js";
