import { defineConfig } from "vitest/config";

export default defineConfig({
  // tsyringe's parameter decorators (@inject) need legacy decorators; test files sit outside the
  // packages' build tsconfigs, so say it here rather than rely on tsconfig discovery.
  oxc: { decorator: { legacy: true } },
  resolve: { conditions: ["@fitloop/source"] },
  ssr: { resolve: { conditions: ["@fitloop/source"], externalConditions: ["@fitloop/source"] } },
  test: {
    include: ["packages/**/src/**/*.test.ts", "apps/**/src/**/*.test.ts", "examples/**/src/**/*.test.ts", "bench/**/*.test.ts", "scripts/**/*.test.ts"],
    setupFiles: ["./vitest.setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default", "./scripts/summary-reporter.ts"],
  },
});
