export { decayFactor, decoupledWeightDecay } from "./decay.js";
export { selectDecayed, defaultRule, formatSelection, summarizeSelection, type DecayCandidate, type DecayEntry, type DecaySelection, type NamePattern, type SelectionOptions } from "./select.js";
export { WeightDecay, WeightDecayError, type WeightDecayOptions, type WeightDecayValue } from "./weight-decay.js";
