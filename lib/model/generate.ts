/**
 * Inference on top of the KV-cache session: greedy decoding of a batch of
 * prompts, scoring of candidate continuations (a classifier's labels, each
 * followed by EOS) after shared prompts with every prompt run once, and the
 * logits of every position of some sequences (for comparisons with
 * reference implementations).
 *
 * @module
 */

import { InferenceSession } from "./inference.ts";
import type { LlamaModel } from "./llama.ts";

/** Options of {@link generateGreedy}. */
export interface GreedyOptions {
  /** Most tokens to generate per prompt. */
  maxNewTokens: number;
  /** Tokens that end a sequence (kept in its output); default the config's EOS tokens. */
  stopTokens?: readonly number[];
  /** KV cache storage (default f32). */
  cacheDtype?: "f32" | "bf16";
}

function argmax(values: Float32Array, start: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (values[start + i] > values[start + best]) best = i;
  return best;
}

/**
 * Greedy continuations of all prompts at once (ties go to the lowest token
 * id, as torch's argmax): each stops after a stop token or maxNewTokens.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { generateGreedy } from "./generate.ts";
 * import { LlamaModel } from "./llama.ts";
 * import { loadModel } from "./load.ts";
 * using backend = await openBackend("cpu");
 * using loaded = await loadModel("../shared/models/stories260K/hf", backend, {
 *   tokenizer: false, progress: false, baseDtype: "f32",
 * });
 * using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: null });
 * generateGreedy(model, [[1, 403, 407, 261, 378]], { maxNewTokens: 3 }); // [[432, 383, 286]]
 * ```
 */
export function generateGreedy(
  model: LlamaModel,
  prompts: readonly ArrayLike<number>[],
  options: GreedyOptions,
): number[][] {
  const V = model.config.vocabSize;
  const stop = new Set(options.stopTokens ?? model.config.eosTokenIds);
  const maxPrompt = Math.max(...prompts.map((p) => p.length));
  using session = new InferenceSession(model, {
    maxSeqs: prompts.length,
    maxLen: maxPrompt + options.maxNewTokens,
    cacheDtype: options.cacheDtype,
  });
  const outputs: number[][] = prompts.map(() => []);
  const done = prompts.map(() => options.maxNewTokens <= 0);
  let offset = 0;
  const lastRows = prompts.map((p) => (offset += p.length) - 1);
  let logits = session.prefill(prompts, { rows: lastRows });
  for (let step = 0; step < options.maxNewTokens; step++) {
    const next = prompts.map((_, s) => argmax(logits, s * V, V));
    next.forEach((token, s) => {
      if (done[s]) return;
      outputs[s].push(token);
      done[s] = stop.has(token) || outputs[s].length >= options.maxNewTokens;
    });
    if (done.every(Boolean)) break;
    // Finished sequences keep decoding alongside (their outputs are ignored): the batch stays one call.
    logits = session.decode(next, { rows: prompts.map((_, s) => s) });
  }
  return outputs;
}

/**
 * The log-probability (natural log, summed over its tokens) of each
 * candidate continuation after each prompt: scores[p][c] = log P(candidates[c]
 * | prompts[p]). Every prompt is run once; its cache is then copied to one
 * slot per candidate, and the candidates advance token by token together.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { scoreContinuations } from "./generate.ts";
 * import { LlamaModel } from "./llama.ts";
 * import { loadModel } from "./load.ts";
 * using backend = await openBackend("cpu");
 * using loaded = await loadModel("../shared/models/stories260K/hf", backend, { tokenizer: false, progress: false });
 * using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: null });
 * const [scores] = scoreContinuations(model, [[1, 403, 407, 261, 378]], [[432, 383], [383, 432]]);
 * scores[0] > scores[1]; // true: the model's own greedy continuation is likelier
 * ```
 */
export function scoreContinuations(
  model: LlamaModel,
  prompts: readonly ArrayLike<number>[],
  candidates: readonly ArrayLike<number>[],
  cacheDtype: "f32" | "bf16" = "f32",
): Float64Array[] {
  const P = prompts.length, K = candidates.length;
  if (K === 0 || candidates.some((c) => c.length === 0)) {
    throw new RangeError("scoreContinuations: give at least one candidate, each with at least one token");
  }
  const longest = Math.max(...candidates.map((c) => c.length));
  const maxPrompt = Math.max(...prompts.map((p) => p.length));
  using session = new InferenceSession(model, { maxSeqs: P * K, maxLen: maxPrompt + longest - 1, cacheDtype });
  const scores = prompts.map(() => new Float64Array(K));

  // Prefill: the first token of every candidate is scored at its prompt's last row.
  let offset = 0;
  const lastRows = prompts.map((p) => (offset += p.length) - 1);
  const first = session.prefill(prompts, {
    rows: lastRows.flatMap((row) => candidates.map(() => row)),
    tokens: prompts.flatMap(() => candidates.map((c) => c[0])),
  });
  first.forEach((lp, i) => scores[Math.floor(i / K)][i % K] += lp);

  // Slot p*K + c continues prompt p with candidate c; copy from the last prompt down so no source is overwritten.
  for (let p = P - 1; p >= 0; p--) {
    for (let c = K - 1; c >= 0; c--) if (p * K + c !== p) session.copySlot(p, p * K + c);
  }
  const slots = P * K;
  for (let j = 0; j + 1 < longest; j++) {
    // Candidates already complete feed their last token again; their outputs are not counted.
    const tokenAt = (c: number, i: number) => candidates[c][Math.min(i, candidates[c].length - 1)];
    const feed = Array.from({ length: slots }, (_, s) => tokenAt(s % K, j));
    const lp = session.decode(feed, {
      rows: Array.from({ length: slots }, (_, s) => s),
      tokens: Array.from({ length: slots }, (_, s) => tokenAt(s % K, j + 1)),
    });
    for (let s = 0; s < slots; s++) if (j + 1 < candidates[s % K].length) scores[Math.floor(s / K)][s % K] += lp[s];
  }
  return scores;
}

/**
 * The logits of every position of each sequence ([length, vocab] row-major
 * each), from one packed prefill.
 *
 * @example
 * ```ts
 * import { openBackend } from "../backend/backend.ts";
 * import { sequenceLogits } from "./generate.ts";
 * import { LlamaModel } from "./llama.ts";
 * import { loadModel } from "./load.ts";
 * using backend = await openBackend("cpu");
 * using loaded = await loadModel("../shared/models/stories260K/hf", backend, { tokenizer: false, progress: false });
 * using model = new LlamaModel(backend, loaded.config, loaded.weights, { lora: null });
 * const [logits] = sequenceLogits(model, [[1, 403, 407]]);
 * logits.length; // 3 * 512
 * ```
 */
export function sequenceLogits(model: LlamaModel, sequences: readonly ArrayLike<number>[]): Float32Array[] {
  const V = model.config.vocabSize;
  const maxLen = Math.max(...sequences.map((s) => s.length));
  using session = new InferenceSession(model, { maxSeqs: sequences.length, maxLen });
  const T = sequences.reduce((n, s) => n + s.length, 0);
  const all = session.prefill(sequences, { rows: Array.from({ length: T }, (_, t) => t) });
  let offset = 0;
  return sequences.map((s) => all.slice(offset * V, (offset += s.length) * V));
}
