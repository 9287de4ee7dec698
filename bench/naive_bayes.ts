/**
 * A multinomial naive-Bayes classifier over lowercase word counts with
 * Laplace smoothing: the plain baseline the arxiv5 accuracy bench prints
 * beside the LLM (the issue quotes ~0.92 for it on the full split).
 *
 * @module
 */

/** Lowercase words of letters and digits (hyphens and dots inside a word are kept: "hep-ph", "u.s."). */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:[-.][\p{L}\p{N}]+)*/gu) ?? [];
}

/** A trained naive-Bayes model: log priors and per-label word log-likelihoods. */
export interface NaiveBayes {
  readonly labels: readonly string[];
  readonly logPrior: Float64Array;
  /** Per label: word → log p(word | label); unseen words take `logUnseen`. */
  readonly logLikelihood: readonly Map<string, number>[];
  readonly logUnseen: Float64Array;
  /** Words seen in training; others are skipped, as scikit-learn's CountVectorizer drops them. */
  readonly vocabulary: ReadonlySet<string>;
}

/**
 * Fits on texts with their labels (every label must be in `labels`).
 *
 * @example
 * ```ts
 * import { fitNaiveBayes, predictNaiveBayes } from "./naive_bayes.ts";
 * const nb = fitNaiveBayes(["quark gluon", "qubit entanglement"], ["hep-ph", "quant-ph"], ["hep-ph", "quant-ph"]);
 * predictNaiveBayes(nb, "a qubit"); // "quant-ph"
 * ```
 */
export function fitNaiveBayes(
  texts: readonly string[],
  gold: readonly string[],
  labels: readonly string[],
): NaiveBayes {
  const counts = labels.map(() => new Map<string, number>());
  const totals = new Float64Array(labels.length);
  const docs = new Float64Array(labels.length);
  const vocabulary = new Set<string>();
  texts.forEach((text, i) => {
    const c = labels.indexOf(gold[i]);
    if (c < 0) throw new RangeError(`naive Bayes: label "${gold[i]}" of text ${i} is not one of ${labels.join(", ")}`);
    docs[c]++;
    for (const w of words(text)) {
      counts[c].set(w, (counts[c].get(w) ?? 0) + 1);
      totals[c]++;
      vocabulary.add(w);
    }
  });
  const v = vocabulary.size;
  const logUnseen = totals.map((t) => -Math.log(t + v));
  return {
    labels,
    logPrior: docs.map((d) => Math.log(d / texts.length)),
    logLikelihood: counts.map((m, c) => new Map([...m].map(([w, n]) => [w, Math.log(n + 1) + logUnseen[c]]))),
    logUnseen,
    vocabulary,
  };
}

/** The most likely label of `text`. */
export function predictNaiveBayes(nb: NaiveBayes, text: string): string {
  const ws = words(text);
  let best = 0, bestScore = -Infinity;
  nb.labels.forEach((_, c) => {
    let score = nb.logPrior[c];
    for (const w of ws) {
      if (nb.vocabulary.has(w)) score += nb.logLikelihood[c].get(w) ?? nb.logUnseen[c];
    }
    if (score > bestScore) [best, bestScore] = [c, score];
  });
  return nb.labels[best];
}
