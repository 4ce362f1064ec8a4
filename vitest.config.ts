import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["@fitloop/source"] },
  ssr: { resolve: { conditions: ["@fitloop/source"], externalConditions: ["@fitloop/source"] } },
  test: {
    include: ["packages/**/src/**/*.test.ts", "apps/**/src/**/*.test.ts", "bench/**/*.test.ts"],
    setupFiles: ["./vitest.setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
