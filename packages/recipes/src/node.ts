export * from "./tuner/node.js";
export * from "./presets/node.js";
