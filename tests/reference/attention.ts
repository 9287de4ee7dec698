/**
 * Float64 reference of causal grouped-query attention over packed
 * sequences: the forward (with log-sum-exp), its gradients written out
 * directly from the softmax, and decode attention over a cache.
 *
 * @module
 */

/** Sizes of a packed attention problem (layouts of cuda/lorac.h). */
export interface AttentionDims {
  /** Offsets of the sequences, numSeqs + 1 entries. */
  cuSeqlens: Int32Array;
  /** Query heads. */
  nHeads: number;
  /** Key / value heads. */
  nKvHeads: number;
  /** Size of one head. */
  headDim: number;
  /** Score scale. */
  scale: number;
}

/** Softmax probabilities of query t (token index), head h, over its sequence's keys start..t. */
function probs(q: ArrayLike<number>, k: ArrayLike<number>, dims: AttentionDims, t: number, h: number, start: number) {
  const { nHeads, nKvHeads, headDim: d, scale } = dims;
  const g = Math.floor(h / (nHeads / nKvHeads));
  const s = new Float64Array(t - start + 1);
  let max = -Infinity;
  for (let u = start; u <= t; u++) {
    let dot = 0;
    for (let c = 0; c < d; c++) dot += q[(t * nHeads + h) * d + c] * k[(u * nKvHeads + g) * d + c];
    s[u - start] = dot * scale;
    max = Math.max(max, s[u - start]);
  }
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += Math.exp(s[i] - max);
  for (let i = 0; i < s.length; i++) s[i] = Math.exp(s[i] - max) / sum;
  return { p: s, lse: max + Math.log(sum), g };
}

function eachQuery(dims: AttentionDims, fn: (t: number, h: number, start: number) => void): void {
  const cu = dims.cuSeqlens;
  for (let s = 0; s + 1 < cu.length; s++) {
    for (let t = cu[s]; t < cu[s + 1]; t++) for (let h = 0; h < dims.nHeads; h++) fn(t, h, cu[s]);
  }
}

/** out [T, nHeads, headDim] and lse [nHeads, T]. */
export function attentionForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: AttentionDims,
): { out: Float64Array; lse: Float64Array } {
  const { nHeads, nKvHeads, headDim: d } = dims;
  const T = dims.cuSeqlens[dims.cuSeqlens.length - 1];
  const out = new Float64Array(T * nHeads * d);
  const lse = new Float64Array(nHeads * T);
  eachQuery(dims, (t, h, start) => {
    const { p, lse: l, g } = probs(q, k, dims, t, h, start);
    lse[h * T + t] = l;
    for (let u = start; u <= t; u++) {
      for (let c = 0; c < d; c++) out[(t * nHeads + h) * d + c] += p[u - start] * v[(u * nKvHeads + g) * d + c];
    }
  });
  return { out, lse };
}

/** dq, dk, dv of attentionForwardRef's out against dout. */
export function attentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dout: ArrayLike<number>,
  dims: AttentionDims,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { nHeads, nKvHeads, headDim: d, scale } = dims;
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  eachQuery(dims, (t, h, start) => {
    const { p, g } = probs(q, k, dims, t, h, start);
    const o = (t * nHeads + h) * d;
    // dP[u] = dout · v[u]; dS = P (dP - sum P dP).
    const dp = new Float64Array(p.length);
    let pdp = 0;
    for (let u = start; u <= t; u++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += dout[o + c] * v[(u * nKvHeads + g) * d + c];
      dp[u - start] = dot;
      pdp += p[u - start] * dot;
    }
    for (let u = start; u <= t; u++) {
      const kv = (u * nKvHeads + g) * d;
      const ds = p[u - start] * (dp[u - start] - pdp) * scale;
      for (let c = 0; c < d; c++) {
        dq[o + c] += ds * k[kv + c];
        dk[kv + c] += ds * q[o + c];
        dv[kv + c] += p[u - start] * dout[o + c];
      }
    }
  });
  return { dq, dk, dv };
}

/**
 * Decode attention: q [numSeqs, nHeads, headDim] against cached keys and
 * values given per sequence as [len, nKvHeads, headDim] arrays.
 */
export function decodeAttentionRef(
  q: ArrayLike<number>,
  kSeqs: ArrayLike<number>[],
  vSeqs: ArrayLike<number>[],
  nHeads: number,
  nKvHeads: number,
  headDim: number,
  scale: number,
): Float64Array {
  const out = new Float64Array(q.length);
  kSeqs.forEach((kc, s) => {
    const len = kc.length / (nKvHeads * headDim);
    // The last query of a packed [len] sequence whose q rows are all this one.
    const qs = new Float64Array(len * nHeads * headDim);
    for (let h = 0; h < nHeads * headDim; h++) qs[(len - 1) * nHeads * headDim + h] = q[s * nHeads * headDim + h];
    const dims = { cuSeqlens: new Int32Array([0, len]), nHeads, nKvHeads, headDim, scale };
    const { out: o } = attentionForwardRef(qs, kc, vSeqs[s], dims);
    out.set(o.subarray((len - 1) * nHeads * headDim), s * nHeads * headDim);
  });
  return out;
}
