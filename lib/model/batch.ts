/**
 * A packed training batch on the host: sequences laid end to end (no
 * padding), their offsets, and the rows that carry loss. Row t's hidden state
 * predicts token t + 1 of its sequence, so a completion token at position p
 * of a sequence is scored at row p - 1 (its sequence's offset added).
 *
 * @module
 */

import { cuSeqlensOf } from "../backend/packed.ts";

/** What {@link LlamaModel.forward} trains on. */
export interface TrainBatch {
  /** Token ids of all sequences end to end, int32 [T]. */
  readonly tokens: Int32Array;
  /** Offsets of the sequences, [numSeqs + 1], from 0 to T (see lib/backend/packed.ts). */
  readonly cuSeqlens: Int32Array;
  /** Rows (in [0, T), distinct) whose next-token prediction carries loss. */
  readonly lossRows: Int32Array;
  /** The token each loss row must predict, one per entry of lossRows. */
  readonly targets: Int32Array;
}

/** One sequence to pack: its tokens and where the scored part (the completion) starts. */
export interface SequenceToPack {
  /** Prompt then completion token ids. */
  readonly tokens: ArrayLike<number>;
  /** Index of the first completion token, >= 1 (the first token has nothing to be predicted from). */
  readonly completionStart: number;
}

/**
 * Packs sequences into one batch with loss on every completion token: the
 * completion token at position p is the target of row p - 1.
 *
 * @example
 * ```ts
 * import { packBatch } from "./batch.ts";
 * const b = packBatch([{ tokens: [1, 5, 6, 2], completionStart: 2 }, { tokens: [1, 7, 2], completionStart: 2 }]);
 * b.cuSeqlens; // Int32Array [0, 4, 7]
 * b.lossRows; // Int32Array [1, 2, 5]
 * b.targets; // Int32Array [6, 2, 2]
 * ```
 */
export function packBatch(sequences: readonly SequenceToPack[]): TrainBatch {
  const cuSeqlens = cuSeqlensOf(sequences.map((s) => s.tokens.length));
  const tokens = new Int32Array(cuSeqlens[sequences.length]);
  const rows: number[] = [];
  const targets: number[] = [];
  sequences.forEach((s, i) => {
    const n = s.tokens.length;
    if (!Number.isInteger(s.completionStart) || s.completionStart < 1 || s.completionStart > n) {
      throw new RangeError(
        `sequence ${i}: completionStart ${s.completionStart} must be an integer in [1, ${n}] (its length)`,
      );
    }
    const start = cuSeqlens[i];
    for (let p = 0; p < n; p++) tokens[start + p] = s.tokens[p];
    for (let p = s.completionStart; p < n; p++) {
      rows.push(start + p - 1);
      targets.push(s.tokens[p]);
    }
  });
  return { tokens, cuSeqlens, lossRows: Int32Array.from(rows), targets: Int32Array.from(targets) };
}

/**
 * Throws a RangeError saying what is wrong unless `batch` is well formed
 * for a vocabulary of `vocabSize` tokens.
 *
 * @example
 * ```ts
 * import { checkBatch, packBatch } from "./batch.ts";
 * checkBatch(packBatch([{ tokens: [1, 2], completionStart: 1 }]), 512); // passes
 * ```
 */
export function checkBatch(batch: TrainBatch, vocabSize: number): void {
  const { tokens, cuSeqlens, lossRows, targets } = batch;
  const T = tokens.length;
  if (cuSeqlens.length < 2 || cuSeqlens[0] !== 0 || cuSeqlens[cuSeqlens.length - 1] !== T) {
    throw new RangeError(`cuSeqlens must run from 0 to T = ${T} with at least one sequence, got [${cuSeqlens}]`);
  }
  for (let s = 0; s + 1 < cuSeqlens.length; s++) {
    if (cuSeqlens[s + 1] < cuSeqlens[s]) throw new RangeError(`cuSeqlens decreases at entry ${s + 1}`);
  }
  if (lossRows.length !== targets.length) {
    throw new RangeError(`${lossRows.length} loss rows but ${targets.length} targets: give one target per row`);
  }
  const seen = new Uint8Array(T);
  for (let k = 0; k < lossRows.length; k++) {
    const r = lossRows[k];
    if (!(r >= 0 && r < T) || seen[r]) {
      throw new RangeError(`loss row ${r} (entry ${k}) is out of [0, ${T}) or repeated`);
    }
    seen[r] = 1;
    if (!(targets[k] >= 0 && targets[k] < vocabSize)) {
      throw new RangeError(
        `target ${targets[k]} (entry ${k}) is not a token id below the vocabulary size ${vocabSize}`,
      );
    }
  }
  for (let t = 0; t < T; t++) {
    if (!(tokens[t] >= 0 && tokens[t] < vocabSize)) {
      throw new RangeError(`token ${tokens[t]} at row ${t} is not below the vocabulary size ${vocabSize}`);
    }
  }
}
