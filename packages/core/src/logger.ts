/** Minimal logger interface; any console-like object fits. */
export interface Logger {
  debug(message: string, ...rest: unknown[]): void;
  info(message: string, ...rest: unknown[]): void;
  warn(message: string, ...rest: unknown[]): void;
  error(message: string, ...rest: unknown[]): void;
}

export const consoleLogger: Logger = {
  debug: () => {},
  info: (m, ...r) => console.info(m, ...r),
  warn: (m, ...r) => console.warn(m, ...r),
  error: (m, ...r) => console.error(m, ...r),
};

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A clock, injectable so tests and benchmarks can control time. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => performance.now() };
