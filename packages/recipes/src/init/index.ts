export { computeFans, reluGain, schemeStd, sampleValues, orthogonalValues, heNormal, heUniform, glorotNormal, glorotUniform, lecunNormal, lecunUniform, orthogonal, type Distribution, type SchemeName, type Fans } from "./schemes.js";
export { resolveActivation, autoScheme, activationGain, type ResolvedActivation } from "./activation.js";
export { initialize, type InitializeOptions, type InitScheme, type InitEntry, type InitReport } from "./initialize.js";
export { formatInitReport } from "./report.js";
export { priorBiasInit, type PriorBiasOptions, type PriorBiasResult, type PriorKind, type PriorSource } from "./prior-bias.js";
