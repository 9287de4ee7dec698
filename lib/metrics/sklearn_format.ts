/**
 * Text layouts users know from the Python stack, reproduced character for
 * character: Python's `format(x, ".3f")`, scikit-learn's
 * `classification_report` and NumPy's `str()` of an integer matrix (the
 * seed's results.txt prints all three).
 *
 * @module
 */

/**
 * `x` with `digits` decimals as Python's `format(x, f".{digits}f")` writes it:
 * correctly rounded from the exact binary value, ties to even. (JavaScript's
 * `toFixed` breaks exact ties upward: `(0.125).toFixed(2)` is "0.13", Python
 * writes "0.12".)
 *
 * @example
 * ```ts
 * import { formatFixed } from "./sklearn_format.ts";
 * formatFixed(0.125, 2); // "0.12"
 * formatFixed(0.9375, 3); // "0.938"
 * ```
 */
export function formatFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  const exact = Math.abs(x) < 1e21 ? Math.abs(x).toFixed(100) : "";
  const point = exact.indexOf(".");
  // A tie: the exact expansion stops one digit past the cut, at a 5.
  const tie = point >= 0 && exact[point + digits + 1] === "5" && /^0*$/.test(exact.slice(point + digits + 2));
  if (!tie) return x.toFixed(digits);
  const down = exact.slice(0, point + 1 + digits).replace(/\.$/, "");
  const last = down[down.length - 1];
  if (Number(last) % 2 === 0) return (x < 0 ? "-" : "") + down;
  return x.toFixed(digits); // odd: toFixed rounds the tie away from zero, which is to even here
}

/** One row of a classification report. */
export interface ReportRow {
  /** The label name, or the average's heading ("macro avg", "accuracy", ...). */
  name: string;
  /** Precision. */
  precision: number;
  /** Recall. */
  recall: number;
  /** F1 score. */
  f1: number;
  /** Number of true instances. */
  support: number;
}

const pad = (s: string, width: number) => s.padStart(width);

/**
 * scikit-learn's `classification_report` text: per-label rows, a blank line,
 * then the average rows. A row named "accuracy" prints only its F1 (the
 * accuracy) and support, as scikit-learn does. The result ends with "\n".
 *
 * @example
 * ```ts
 * import { classificationReportText } from "./sklearn_format.ts";
 * const text = classificationReportText(
 *   [{ name: "ham", precision: 1, recall: 0.5, f1: 2 / 3, support: 2 }],
 *   [{ name: "accuracy", precision: 0.5, recall: 0.5, f1: 0.5, support: 2 }],
 *   2,
 * );
 * text.split("\n")[2]; // "         ham       1.00      0.50      0.67         2"
 * ```
 */
export function classificationReportText(
  labelRows: readonly ReportRow[],
  averageRows: readonly ReportRow[],
  digits: number,
): string {
  const width = Math.max(...labelRows.map((r) => r.name.length), "weighted avg".length, digits);
  const headers = ["precision", "recall", "f1-score", "support"];
  let report = pad("", width) + " " + headers.map((h) => " " + pad(h, 9)).join("") + "\n\n";
  const row = (r: ReportRow) =>
    pad(r.name, width) + " " +
    [r.precision, r.recall, r.f1].map((v) => " " + pad(formatFixed(v, digits), 9)).join("") +
    " " + pad(String(r.support), 9) + "\n";
  for (const r of labelRows) report += row(r);
  report += "\n";
  for (const r of averageRows) {
    report += r.name === "accuracy"
      ? pad(r.name, width) + " " + " " + pad("", 9) + " " + pad("", 9) + " " + pad(formatFixed(r.f1, digits), 9) +
        " " + pad(String(r.support), 9) + "\n"
      : row(r);
  }
  return report;
}

/**
 * An integer matrix as NumPy's `str()` prints it (default print options:
 * right-aligned to the widest entry, lines wrapped at 75 columns). NumPy
 * abbreviates arrays of more than 1000 entries with "..."; this prints them
 * whole.
 *
 * @example
 * ```ts
 * import { formatIntMatrix } from "./sklearn_format.ts";
 * formatIntMatrix([[416, 6], [12, 503]]); // "[[416   6]\n [ 12 503]]"
 * ```
 */
export function formatIntMatrix(matrix: readonly (readonly number[])[]): string {
  if (matrix.length === 0) return "[]";
  const width = Math.max(...matrix.flat().map((v) => String(v).length));
  // NumPy's _formatArray: rows are indented by "  ", and a row wraps when an element would pass column 73.
  const lineWidth = 75 - 1 - 1;
  const rows = matrix.map((row) => {
    let s = "";
    let line = "  ";
    row.forEach((v, j) => {
      const word = String(v).padStart(width);
      if (line.length + word.length > lineWidth && line.length > 2) {
        s += line.trimEnd() + "\n";
        line = "  ";
      }
      line += word;
      if (j < row.length - 1) line += " ";
    });
    s += line;
    return "[" + s.slice(2) + "]";
  });
  return "[" + rows.join("\n ") + "]";
}
