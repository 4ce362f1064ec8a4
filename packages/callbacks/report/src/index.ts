export { RunHistory, historyData, type RunHistoryOptions, type HistoryData, type HistorySource, type HistoryEvent, type HistoryListener, type RunConfig, type RunOutcome, type LayerSummary, type ConfigValues } from "./history.js";
export { MinMaxSeries, type SeriesData } from "./series.js";
export { lossPlot, metricPlot, lrPlot, gradNormPlot, lrFinderPlot, firstMetric, logScaleProblem, PLOT_FONT, type PlotSpec, type CurveOptions, type LrFinderResultLike } from "./plots.js";
export { toSvg, toPng, pngSize, type PngOptions } from "./render.js";
export { renderHtml, escapeHtml, formatNumber, type HtmlPlot, type HtmlReportOptions } from "./html.js";
export { Report, writeReport, reportPlots, PLOT_NAMES, FORMATS, type ReportOptions, type WriteReportOptions, type PlotName, type ReportFormat } from "./report.js";
export { LiveDashboard, type LiveDashboardOptions, type DashboardStats } from "./dashboard.js";
