/**
 * The tokenizer of stories260K for tests that need text in and out of the
 * real tiny model without Python: llama2.c's tok512.bin (the same vocabulary
 * and scores as tok512.model) handed to Tokenizer.fromGgufMetadata as a
 * SentencePiece ("llama") GGUF would carry it. tests/tokenizer_test.ts checks
 * that this encodes the model's reference prompt as transformers does.
 *
 * @module
 */

import { Tokenizer } from "../../lib/tokenizer/tokenizer.ts";

/** The stories260K model folder (HF layout) in ../shared. */
export const STORIES_260K = new URL("../../../shared/models/stories260K/hf", import.meta.url).pathname;

/**
 * Reads llama2.c's tokenizer file (max token length, then per token: f32
 * score, i32 byte length, bytes; a space stands for "▁") as a tokenizer with
 * BOS 1 and EOS 2.
 *
 * @example
 * ```ts
 * import { storiesTokenizer } from "./stories_tokenizer.ts";
 * const tok = await storiesTokenizer();
 * tok.encode("Once upon a time"); // [1, 403, 407, 261, 378]
 * ```
 */
export async function storiesTokenizer(): Promise<Tokenizer> {
  const bin = await Deno.readFile(new URL("../../../shared/models/stories260K/tok512.bin", import.meta.url));
  const view = new DataView(bin.buffer);
  const tokens: string[] = [];
  const scores: number[] = [];
  for (let i = 0, at = 4; i < 512; i++) {
    scores.push(view.getFloat32(at, true));
    const len = view.getInt32(at + 4, true);
    tokens.push(new TextDecoder().decode(bin.subarray(at + 8, at + 8 + len)).replaceAll(" ", "▁"));
    at += 8 + len;
  }
  // llama2.c writes the three control tokens as text; SentencePiece's names are these.
  tokens.splice(0, 3, "<unk>", "<s>", "</s>");
  return Tokenizer.fromGgufMetadata({
    "tokenizer.ggml.model": "llama",
    "tokenizer.ggml.tokens": tokens,
    "tokenizer.ggml.scores": scores,
    // unknown, control, byte (<0x00>..<0xFF>), normal
    "tokenizer.ggml.token_type": tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1)),
    "tokenizer.ggml.bos_token_id": 1,
    "tokenizer.ggml.eos_token_id": 2,
  });
}
