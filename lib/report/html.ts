/**
 * report.html: one self-contained page (inline CSS and SVG; no script, font,
 * image or link to fetch) with the scores, the per-label table, the
 * confusion-matrix heatmap and the training curves. Every number shown also
 * sits, unrounded, in a `data-value` attribute beside a `data-metric` name
 * that is its key in metrics.json, so a test or a script can check the page
 * against metrics.json.
 *
 * @module
 */

import { averageRows } from "../metrics/classification.ts";
import { multiLabelAverageRows } from "../metrics/multilabel.ts";
import { formatFixed } from "../metrics/sklearn_format.ts";
import { writeFileAtomic } from "../util/atomic_write.ts";
import type { Metrics } from "./metrics_json.ts";
import { escapeXml, heatmapSvg, lineChartSvg } from "./svg.ts";
import { trainingCurves, type TrainingRecord } from "./training_log.ts";

/** What report.html shows. */
export interface ReportOptions {
  /** The scores of the prediction run. */
  metrics: Metrics;
  /** Page title (default "lorac report"). */
  title?: string;
  /** Training log records (metrics.jsonl) for the loss and accuracy curves. */
  training?: readonly TrainingRecord[];
  /** Facts about the run shown at the top (model, adapter, data, decode mode, ...). */
  run?: Record<string, string | number | boolean>;
  /** Decimals shown for scores (default 4). */
  digits?: number;
}

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 2rem auto; max-width: 980px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5rem 0; } th, td { padding: .25rem .75rem; text-align: right; border-bottom: 1px solid #eee; }
th:first-child, td:first-child { text-align: left; } thead th { border-bottom: 2px solid #ccc; }
tr.average th, tr.average td { background: #f7f7f7; } .note { color: #666; }
svg text { font: 11px system-ui, sans-serif; fill: #333; } svg .chart-title { font-size: 13px; font-weight: 600; }
svg .count { font-size: 12px; } svg .axis { font-size: 12px; fill: #555; } .charts { display: flex; flex-wrap: wrap; gap: 1rem; }
`;

function valueCell(metric: string, value: number, digits: number, isCount = false): string {
  const shown = isCount ? String(value) : formatFixed(value, digits);
  return `<td data-metric="${escapeXml(metric)}" data-value="${value}">${shown}</td>`;
}

function scoresTable(m: Metrics, digits: number): string {
  const rows: [string, string, number, boolean][] = [
    [m.kind === "single" ? "Accuracy" : "Accuracy (subset)", "accuracy", m.accuracy, false],
    ["F1 (micro)", "f1_micro", m.micro.f1, false],
    ["F1 (macro)", "f1_macro", m.macro.f1, false],
    ["F1 (weighted)", "f1_weighted", m.weighted.f1, false],
    ["Examples", "examples", m.examples, true],
    ["Invalid answers (counted as wrong)", "invalid_predictions", m.invalidPredictions, true],
    ["Gold labels outside the label set (counted as wrong)", "unknown_gold", m.unknownGold, true],
  ];
  return `<table class="scores">\n${
    rows.map(([name, key, v, isCount]) => `<tr><th>${name}</th>${valueCell(key, v, digits, isCount)}</tr>`).join("\n")
  }\n</table>`;
}

function perLabelTable(m: Metrics, digits: number): string {
  const line = (
    attr: string,
    name: string,
    s: { precision: number; recall: number; f1: number; support: number },
  ) =>
    `<tr ${attr}><th>${escapeXml(name)}</th>${valueCell("precision", s.precision, digits)}${
      valueCell("recall", s.recall, digits)
    }${valueCell("f1-score", s.f1, digits)}${valueCell("support", s.support, digits, true)}</tr>`;
  const labelRows = m.perLabel.map((s) => line(`data-label="${escapeXml(s.label)}"`, s.label, s));
  const averages = (m.kind === "single" ? averageRows(m) : multiLabelAverageRows(m))
    // The accuracy is in the scores table; scikit-learn's report row for it carries nothing more.
    .filter((r) => r.name !== "accuracy")
    .map((r) => line(`class="average" data-average="${escapeXml(r.name)}"`, r.name, r));
  return `<table class="per-label">\n<thead><tr><th>label</th><th>precision</th><th>recall</th><th>f1-score</th>` +
    `<th>support</th></tr></thead>\n<tbody>\n${[...labelRows, ...averages].join("\n")}\n</tbody>\n</table>`;
}

function confusionSection(m: Metrics): string {
  if (m.kind === "single") {
    const extra = m.invalidPredictions > 0 ? { name: "(invalid)", values: m.invalidByLabel } : undefined;
    return `<p class="note">Rows: true label; columns: predicted label. Shade: share of the row.</p>\n` +
      heatmapSvg({ labels: m.labels, matrix: m.confusion, extraColumn: extra });
  }
  const rows = m.labels.map((l, i) => {
    const c = m.counts[i];
    const cells = (["tn", "fp", "fn", "tp"] as const).map((k) =>
      `<td data-metric="${k}" data-value="${c[k]}">${c[k]}</td>`
    ).join("");
    return `<tr data-label="${escapeXml(l)}"><th>${escapeXml(l)}</th>${cells}</tr>`;
  });
  return `<table class="label-counts">\n<thead><tr><th>label</th><th>tn</th><th>fp</th><th>fn</th><th>tp</th></tr>` +
    `</thead>\n<tbody>\n${rows.join("\n")}\n</tbody>\n</table>`;
}

function trainingSection(records: readonly TrainingRecord[] | undefined): string {
  const curves = trainingCurves(records ?? []);
  const charts = [
    curves.loss.length ? lineChartSvg({ title: "Loss", xLabel: "step", series: curves.loss }) : "",
    curves.accuracy.length ? lineChartSvg({ title: "Accuracy", xLabel: "step", series: curves.accuracy }) : "",
  ].filter((c) => c !== "");
  if (charts.length === 0) return `<p class="note">No training log (metrics.jsonl) was given.</p>`;
  return `<div class="charts">\n${charts.join("\n")}\n</div>`;
}

/**
 * The report.html page.
 *
 * @example
 * ```ts
 * import { classificationMetrics } from "../metrics/classification.ts";
 * import { reportHtml } from "./html.ts";
 * const html = reportHtml({
 *   metrics: classificationMetrics(["ham", "spam"], ["ham", "ham"], ["ham", "spam"]),
 *   training: [{ step: 1, loss: 2.1 }, { step: 2, loss: 1.4 }],
 *   run: { model: "SmolLM2-135M-Instruct" },
 * });
 * html.includes('data-metric="accuracy" data-value="0.5"'); // true
 * ```
 */
export function reportHtml(options: ReportOptions): string {
  const { metrics: m } = options;
  const digits = options.digits ?? 4;
  const title = options.title ?? "lorac report";
  const run = Object.entries(options.run ?? {});
  const runTable = run.length === 0
    ? ""
    : `<table class="run">\n${
      run.map(([k, v]) =>
        `<tr><th>${escapeXml(k)}</th><td data-run="${escapeXml(k)}">${escapeXml(String(v))}</td></tr>`
      )
        .join("\n")
    }\n</table>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeXml(title)}</h1>
<p class="note">${
    m.kind === "single" ? "Single-label" : "Multi-label"
  } classification over ${m.labels.length} labels: ${escapeXml(m.labels.join(", "))}.</p>
${runTable}
<section id="scores">
<h2>Scores</h2>
${scoresTable(m, digits)}
</section>
<section id="per-label">
<h2>Per label</h2>
${perLabelTable(m, digits)}
</section>
<section id="confusion">
<h2>${m.kind === "single" ? "Confusion matrix" : "Per-label counts"}</h2>
${confusionSection(m)}
</section>
<section id="training">
<h2>Training</h2>
${trainingSection(options.training)}
</section>
</body>
</html>
`;
}

/**
 * Writes report.html atomically.
 *
 * @example
 * ```ts
 * import { classificationMetrics } from "../metrics/classification.ts";
 * import { writeReportHtml } from "./html.ts";
 * const dir = await Deno.makeTempDir();
 * await writeReportHtml(`${dir}/report.html`, { metrics: classificationMetrics(["a"], ["a"], ["a", "b"]) });
 * ```
 */
export async function writeReportHtml(path: string, options: ReportOptions): Promise<void> {
  await writeFileAtomic(path, reportHtml(options));
}
