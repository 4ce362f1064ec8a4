import { availableParallelism } from "node:os";
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
    // Vitest's default in run mode is one worker fewer than the CPUs: on CI's 2 cores, one file at a
    // time, while many files mostly wait (child processes, leases, timers). Two workers there: the
    // whole suite in ~750 s instead of ~965 s on a slow 2-core host.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    reporters: ["default", "./scripts/summary-reporter.ts"],
  },
});
