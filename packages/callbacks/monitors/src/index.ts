export { LRMonitor, type LRMonitorOptions } from "./lr-monitor.js";
export { Timer, Throughput, type TimingOptions } from "./timer.js";
export { StepClock, remainingWork, type Position } from "./clock.js";
