/**
 * Sanity checks before and during training (Karpathy's recipe as code): each returns a `Verdict`
 * with a status, one line and its numbers; `sanityCheck` runs them all after the data report.
 */
export { formatVerdicts, worstStatus, type Verdict, type AnyVerdict, type VerdictStatus, type FormatVerdictsOptions } from "./verdict.js";
export type { CheckData, CheckLoss } from "./common.js";
export { verifyInitLoss, priorLoss, type VerifyInitLossOptions, type InitLossVerdict, type InitLossDetails, type PriorLoss } from "./init-loss.js";
export { overfitOneBatch, type OverfitOneBatchOptions, type OverfitVerdict, type OverfitDetails } from "./overfit.js";
export { inputIndependentBaseline, type InputIndependentBaselineOptions, type BaselineVerdict, type BaselineDetails } from "./baseline.js";
export { checkBatchIndependence, type CheckBatchIndependenceOptions, type IndependenceVerdict, type IndependenceDetails } from "./independence.js";
export { checkGradients, type CheckGradientsOptions, type GradientVerdict, type GradientDetails, type VariableGradientCheck } from "./gradients.js";
export { reportVerdict, type ReportVerdict } from "./report-verdict.js";
export { sanityCheck, drawTensors, CHECK_NAMES, type CheckName, type SanityCheckOptions, type SanityResult } from "./sanity.js";
