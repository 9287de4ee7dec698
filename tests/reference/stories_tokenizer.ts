/**
 * The tokenizer of stories260K for tests that need text in and out of the
 * real tiny model without Python: llama2.c's tok512.bin (the same vocabulary
 * and scores as tok512.model) handed to Tokenizer.fromGgufMetadata as a
 * SentencePiece ("llama") GGUF would carry it. tests/tokenizer_test.ts checks
 * that this encodes the model's reference prompt as transformers does.
 *
 * @module
 */

import { tokenizerSpecFromGguf } from "../../lib/tokenizer/from_gguf.ts";
import { Tokenizer } from "../../lib/tokenizer/tokenizer.ts";

/** The stories260K model folder (HF layout) in ../shared. */
export const STORIES_260K = new URL("../../../shared/models/stories260K/hf", import.meta.url).pathname;

/** The model's folder in ../shared: tok512.bin and hf/. */
const STORIES_DIR = new URL("../../../shared/models/stories260K/", import.meta.url).pathname;

/**
 * llama2.c's tokenizer file (max token length, then per token: f32 score,
 * i32 byte length, bytes; a space stands for "▁") as the metadata a
 * SentencePiece ("llama") GGUF would carry, without BOS/EOS ids.
 *
 * @example
 * ```ts
 * import { storiesGgufMetadata } from "./stories_tokenizer.ts";
 * const meta = await storiesGgufMetadata();
 * (meta["tokenizer.ggml.tokens"] as string[]).length; // 512
 * ```
 */
export async function storiesGgufMetadata(): Promise<Record<string, unknown>> {
  const bin = await Deno.readFile(`${STORIES_DIR}tok512.bin`);
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
  return {
    "tokenizer.ggml.model": "llama",
    "tokenizer.ggml.tokens": tokens,
    "tokenizer.ggml.scores": scores,
    // unknown, control, byte (<0x00>..<0xFF>), normal
    "tokenizer.ggml.token_type": tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1)),
  };
}

const SPECIAL_IDS = { "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2 };

/**
 * The stories260K tokenizer with BOS 1 and EOS 2.
 *
 * @example
 * ```ts
 * import { storiesTokenizer } from "./stories_tokenizer.ts";
 * const tok = await storiesTokenizer();
 * tok.encode("Once upon a time"); // [1, 403, 407, 261, 378]
 * ```
 */
export async function storiesTokenizer(): Promise<Tokenizer> {
  return Tokenizer.fromGgufMetadata({ ...await storiesGgufMetadata(), ...SPECIAL_IDS });
}

/**
 * Writes the stories260K tokenizer as a tokenizer.json; `specialIds` adds
 * BOS 1 / EOS 2 to it (for use with --tokenizer, where no
 * tokenizer_config.json names them).
 *
 * @example
 * ```ts ignore
 * import { writeStoriesTokenizerJson } from "./stories_tokenizer.ts";
 * await writeStoriesTokenizerJson("/tmp/tokenizer.json", { specialIds: true });
 * ```
 */
export async function writeStoriesTokenizerJson(path: string, options: { specialIds?: boolean } = {}): Promise<void> {
  const meta = { ...await storiesGgufMetadata(), ...(options.specialIds ? SPECIAL_IDS : {}) };
  await Deno.writeTextFile(path, JSON.stringify(tokenizerSpecFromGguf(meta).json));
}

/**
 * stories260K as a complete Hugging Face folder at `model` (config, weights,
 * tokenizer.json and tokenizer_config.json), so that the command line loads
 * it with no extra flag; returns `model`.
 *
 * @example
 * ```ts ignore
 * import { storiesHfFolder } from "./stories_tokenizer.ts";
 * const model = await storiesHfFolder(`${await Deno.makeTempDir()}/stories260K`);
 * ```
 */
export async function storiesHfFolder(model: string): Promise<string> {
  await Deno.mkdir(model, { recursive: true });
  await writeStoriesTokenizerJson(`${model}/tokenizer.json`);
  const config = { bos_token: "<s>", eos_token: "</s>", add_bos_token: true };
  await Deno.writeTextFile(`${model}/tokenizer_config.json`, JSON.stringify(config));
  await Deno.copyFile(`${STORIES_DIR}hf/config.json`, `${model}/config.json`);
  await Deno.copyFile(`${STORIES_DIR}hf/model.safetensors`, `${model}/model.safetensors`);
  return model;
}
