/**
 * The two pictures of report.html as inline SVG (no script, no external
 * resource): a line chart for training curves and a heatmap for the
 * confusion matrix. Every drawn number also sits in a data- attribute, so
 * tests (and scripts) can read the values back.
 *
 * @module
 */

/**
 * Escapes text for XML/HTML content and attribute values.
 *
 * @example
 * ```ts
 * import { escapeXml } from "./svg.ts";
 * escapeXml('a<b & "c"'); // "a&lt;b &amp; &quot;c&quot;"
 * ```
 */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** One curve: y against x (training step). */
export interface Series {
  /** Legend name. */
  name: string;
  /** Points in x order. */
  points: readonly { x: number; y: number }[];
}

/** Options of {@link lineChartSvg}. */
export interface LineChartOptions {
  /** Chart title. */
  title: string;
  /** Label of the x axis. */
  xLabel: string;
  /** Curves to draw. */
  series: readonly Series[];
  /** Width in pixels (default 460: two charts side by side on the page). */
  width?: number;
  /** Height in pixels (default 260). */
  height?: number;
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/**
 * Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of
 * ten, about `count` of them.
 *
 * @example
 * ```ts
 * import { niceTicks } from "./svg.ts";
 * niceTicks(0.3, 2.6); // [0.5, 1, 1.5, 2, 2.5]
 * ```
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

const fmtTick = (
  v: number,
) => (Math.abs(v) >= 1000 || v === Math.round(v) ? String(v) : String(Number(v.toPrecision(3))));
const r2 = (v: number) => Math.round(v * 100) / 100;

/**
 * A line chart of one or more series, with axes, ticks and a legend.
 *
 * @example
 * ```ts
 * import { lineChartSvg } from "./svg.ts";
 * const svg = lineChartSvg({
 *   title: "Training loss",
 *   xLabel: "step",
 *   series: [{ name: "loss", points: [{ x: 1, y: 2.3 }, { x: 2, y: 1.1 }] }],
 * });
 * svg.startsWith("<svg"); // true
 * ```
 */
export function lineChartSvg(options: LineChartOptions): string {
  const width = options.width ?? 460, height = options.height ?? 280;
  const m = { left: 56, right: 16, top: 44, bottom: 40 };
  const pts = options.series.flatMap((s) => s.points);
  const xs = pts.map((p) => p.x), ys = pts.map((p) => p.y);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const px = (x: number) => r2(m.left + ((x - x0) / (x1 - x0)) * (width - m.left - m.right));
  const py = (y: number) => r2(height - m.bottom - ((y - y0) / (y1 - y0)) * (height - m.top - m.bottom));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(options.title)}">`,
    `<text x="${width / 2}" y="16" text-anchor="middle" class="chart-title">${escapeXml(options.title)}</text>`,
    `<rect x="${m.left}" y="${m.top}" width="${width - m.left - m.right}" height="${
      height - m.top - m.bottom
    }" fill="none" stroke="#bbb"/>`,
  ];
  for (const t of niceTicks(y0, y1)) {
    parts.push(
      `<line x1="${m.left}" x2="${width - m.right}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/>`,
      `<text x="${m.left - 6}" y="${py(t) + 4}" text-anchor="end" class="tick">${fmtTick(t)}</text>`,
    );
  }
  for (const t of niceTicks(x0, x1)) {
    parts.push(
      `<text x="${px(t)}" y="${height - m.bottom + 16}" text-anchor="middle" class="tick">${fmtTick(t)}</text>`,
    );
  }
  parts.push(
    `<text x="${(m.left + width - m.right) / 2}" y="${height - 6}" text-anchor="middle" class="axis">${
      escapeXml(options.xLabel)
    }</text>`,
  );
  let legendX = 0;
  options.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const coords = s.points.map((p) => `${px(p.x)},${py(p.y)}`).join(" ");
    const data = escapeXml(JSON.stringify(s.points.map((p) => [p.x, p.y])));
    parts.push(
      `<polyline class="series" data-series="${
        escapeXml(s.name)
      }" data-points="${data}" fill="none" stroke="${color}" ` +
        `stroke-width="1.8" points="${coords}"/>`,
    );
    if (s.points.length === 1) {
      parts.push(`<circle cx="${px(s.points[0].x)}" cy="${py(s.points[0].y)}" r="3" fill="${color}"/>`);
    }
    // The legend runs along the top margin, one entry after another, so it never covers a curve.
    const lx = m.left + legendX;
    legendX += 34 + 7 * s.name.length;
    parts.push(
      `<line x1="${lx}" x2="${lx + 20}" y1="${m.top - 12}" y2="${m.top - 12}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${lx + 24}" y="${m.top - 8}" class="legend">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/** Options of {@link heatmapSvg}. */
export interface HeatmapOptions {
  /** Row and column names (true labels down, predicted across). */
  labels: readonly string[];
  /** matrix[row][column] counts. */
  matrix: readonly (readonly number[])[];
  /** An extra last column (e.g. "invalid") with one count per row. */
  extraColumn?: { name: string; values: readonly number[] };
}

/**
 * A confusion-matrix heatmap: each cell shaded by its share of the row (the
 * true label's recall on the diagonal), with its count written in it.
 *
 * @example
 * ```ts
 * import { heatmapSvg } from "./svg.ts";
 * heatmapSvg({ labels: ["ham", "spam"], matrix: [[9, 1], [2, 8]] }).includes('data-value="9"'); // true
 * ```
 */
export function heatmapSvg(options: HeatmapOptions): string {
  const { labels, matrix, extraColumn } = options;
  const columns = extraColumn ? [...labels, extraColumn.name] : [...labels];
  const cell = Math.max(22, Math.min(48, Math.floor(520 / columns.length)));
  const nameWidth = Math.min(180, 12 + 7 * Math.max(...columns.map((l) => l.length)));
  const left = nameWidth + 24, top = nameWidth + 24;
  const width = left + cell * columns.length + 8, height = top + cell * labels.length + 8;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" role="img" aria-label="confusion matrix">`,
    `<text x="${left + (cell * columns.length) / 2}" y="12" text-anchor="middle" class="axis">predicted</text>`,
    `<text transform="translate(12 ${
      top + (cell * labels.length) / 2
    }) rotate(-90)" text-anchor="middle" class="axis">true</text>`,
  ];
  columns.forEach((name, j) => {
    const x = left + j * cell + cell / 2;
    parts.push(
      `<text transform="translate(${x + 4} ${top - 6}) rotate(-60)" class="tick">${escapeXml(name)}</text>`,
    );
  });
  labels.forEach((name, i) => {
    const row = extraColumn ? [...matrix[i], extraColumn.values[i]] : matrix[i];
    const total = row.reduce((a, b) => a + b, 0);
    parts.push(
      `<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end" class="tick">${
        escapeXml(name)
      }</text>`,
    );
    row.forEach((v, j) => {
      const share = total === 0 ? 0 : v / total;
      // White to dark blue; counts turn white on dark cells.
      const shade = (c0: number, c1: number) => Math.round(c0 + (c1 - c0) * share);
      const fill = `rgb(${shade(255, 8)},${shade(255, 48)},${shade(255, 107)})`;
      const ink = share > 0.5 ? "#fff" : "#222";
      const x = left + j * cell, y = top + i * cell;
      parts.push(
        `<g class="cell" data-true="${escapeXml(name)}" data-pred="${escapeXml(columns[j])}" data-value="${v}">` +
          `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="#fff"/>` +
          `<text x="${x + cell / 2}" y="${
            y + cell / 2 + 4
          }" text-anchor="middle" class="count" style="fill:${ink}">${v}</text></g>`,
      );
    });
  });
  parts.push("</svg>");
  return parts.join("\n");
}
