import { defaultClientConditions, defineConfig } from "vite";

export default defineConfig({
  // Relative asset URLs: the build works from any directory (a static host, `vite preview`, a test server).
  base: "./",
  resolve: {
    // the workspace packages from their TypeScript sources (no build step), plus Vite's browser conditions
    conditions: ["@fitloop/source", ...defaultClientConditions],
  },
  // tsyringe's parameter decorators (@inject) in the fitloop sources need legacy decorators.
  oxc: { decorator: { legacy: true } },
  build: {
    // tfjs is large; the warning about it says nothing useful here
    chunkSizeWarningLimit: 2000,
  },
});
