import assert from "node:assert/strict";
import { PromptTemplate } from "../lib/data/prompts.ts";
import { buildSftExample, promptIds } from "../lib/train/sft_examples.ts";
import { storiesTokenizer } from "./reference/stories_tokenizer.ts";

const tokenizer = await storiesTokenizer();
const template = PromptTemplate.seed(["happy", "big", "friend"]);
const EOS = 2;

Deno.test("sft examples: prompt ids are the inference prompt's, the completion is ' label' + EOS", () => {
  const cases = [
    { text: "The dog ran to the park.", answer: "happy" },
    { text: "Tom had a big red ball and he liked it.", answer: "big" },
    { text: "x", answer: "friend" },
  ];
  for (const { text, answer } of cases) {
    const ex = buildSftExample(text, answer, { format: template, tokenizer, eosId: EOS, maxSeqLength: 512 });
    assert.deepEqual(promptIds(ex), tokenizer.encode(template.prompt(text)), text);
    const completion = ex.tokens.slice(ex.completionStart);
    assert.equal(completion.at(-1), EOS);
    // One "▁label" piece: no stray "▁" that encoding " label" alone would add.
    assert.equal(completion.length, 2, `${answer}: completion ${completion}`);
    assert.equal(tokenizer.decode(completion, { skipSpecialTokens: true }), answer);
    assert.equal(ex.answer, answer);
    assert.equal(ex.truncated, false);
  }
});

Deno.test("sft examples: truncation shortens the text only; instruction, 'label:' and completion survive", () => {
  const text = "Once upon a time there was a little girl named Lily. She loved to play outside in the sun. ".repeat(8);
  const full = tokenizer.encode(template.trainingText(text, "friend")).length + 1;
  for (const maxSeqLength of [full, full - 1, 120, 100]) {
    const ex = buildSftExample(text, "friend", { format: template, tokenizer, eosId: EOS, maxSeqLength });
    assert.ok(ex.tokens.length <= maxSeqLength, `${ex.tokens.length} tokens for max ${maxSeqLength}`);
    assert.equal(ex.truncated, maxSeqLength < full);
    const prompt = tokenizer.decode([...promptIds(ex)], { skipSpecialTokens: true });
    assert.match(prompt, /^Classify the text into happy, big, friend and return the answer as the exact text label\./);
    assert.match(prompt, /\nlabel:$/);
    assert.equal(tokenizer.decode(ex.tokens.slice(ex.completionStart), { skipSpecialTokens: true }), "friend");
  }
  assert.throws(
    () => buildSftExample(text, "friend", { format: template, tokenizer, eosId: EOS, maxSeqLength: 30 }),
    /max_seq_length 30 is too short/,
  );
});

/** A character tokenizer with BOS 1 that merges `merge` into one id 1000, and optionally appends EOS. */
function charTokenizer(options: { merge?: string; appendEos?: boolean } = {}) {
  return {
    encode(s: string, o?: { addSpecialTokens?: boolean }): number[] {
      const ids: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (options.merge && s.startsWith(options.merge, i)) {
          ids.push(1000);
          i += options.merge.length - 1;
        } else ids.push(s.charCodeAt(i));
      }
      const specials = o?.addSpecialTokens !== false;
      return specials ? [1, ...ids, ...(options.appendEos ? [EOS] : [])] : ids;
    },
    decode: (ids: number[]) =>
      ids.filter((i) => i !== 1 && i !== EOS).map((i) => (i === 1000 ? options.merge : String.fromCharCode(i))).join(
        "",
      ),
  };
}

Deno.test("sft examples: the loss starts after the prefix shared with the prompt alone; EOS added once", () => {
  const format = { prompt: (t: string) => `${t}:`, completion: (a: string) => ` ${a}` };
  const table = [
    // [tokenizer, expected tokens, expected completionStart]
    { name: "plain", tok: charTokenizer(), tokens: [1, 97, 58, 32, 98, EOS], start: 3 },
    // ": " merges across the boundary: the completion starts where the encodings part.
    {
      name: "merge across the boundary",
      tok: charTokenizer({ merge: ": " }),
      tokens: [1, 97, 1000, 98, EOS],
      start: 2,
    },
    {
      name: "tokenizer appends EOS",
      tok: charTokenizer({ appendEos: true }),
      tokens: [1, 97, 58, 32, 98, EOS],
      start: 3,
    },
  ];
  for (const { name, tok, tokens, start } of table) {
    const ex = buildSftExample("a", "b", { format, tokenizer: tok, eosId: EOS, maxSeqLength: 64 });
    assert.deepEqual(ex.tokens, tokens, name);
    assert.equal(ex.completionStart, start, name);
  }
  assert.throws(
    () =>
      buildSftExample("a", "", {
        format: { ...format, completion: () => "" },
        tokenizer: charTokenizer(),
        eosId: EOS,
        maxSeqLength: 64,
      }),
    /adds no tokens/,
  );
});
