export * from "./tuner/index.js";
export * from "./checks/index.js";
export * from "./init/index.js";
export * from "./presets/index.js";
