export { TerminateOnNaN, NonFiniteValueError, findNonFinite, type NonFiniteFinding, type TerminateOnNaNOptions } from "./terminate-on-nan.js";
