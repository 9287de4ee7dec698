import assert from "node:assert/strict";
import { DataError } from "../lib/data/errors.ts";
import { pickExemplars } from "../lib/data/few_shot.ts";
import { PromptTemplate, SEED_TEMPLATE } from "../lib/data/prompts.ts";
import { fitText, type TextTokenizer, truncateTokens } from "../lib/data/truncate.ts";
import { Tokenizer } from "../lib/tokenizer/tokenizer.ts";

const SEED_LABELS = ["cs.CL", "cs.CV", "cs.LG", "hep-ph", "quant-ph"];
const llama3Dir = new URL("../../shared/models/llama3-tokenizer/", import.meta.url).pathname;
const haveLlama3 = (() => {
  try {
    return Deno.statSync(`${llama3Dir}tokenizer.json`).isFile;
  } catch {
    return false;
  }
})();

/** One token per character, BOS = 0 added in front by default: easy to count by hand. */
const charTokenizer: TextTokenizer = {
  encode: (s, o) => [...(o?.addSpecialTokens === false ? [] : [0]), ...[...s].map((c) => c.codePointAt(0)!)],
  decode: (ids, o) => String.fromCodePoint(...ids.filter((id) => !(o?.skipSpecialTokens && id === 0))),
};

Deno.test("prompts: the seed's training and inference texts, character for character", () => {
  const p = PromptTemplate.seed(SEED_LABELS);
  assert.equal(p.labelsStr, "cs.CL, cs.CV, cs.LG, hep-ph, quant-ph");
  assert.equal(
    p.prompt("Attention. We propose X."),
    "Classify the text into cs.CL, cs.CV, cs.LG, hep-ph, quant-ph and return the answer as the exact text label.\n" +
      "text: Attention. We propose X.\nlabel:",
  );
  assert.equal(p.completion("cs.CL"), " cs.CL");
  assert.equal(
    p.trainingText("Attention. We propose X.", "cs.CL"),
    "Classify the text into cs.CL, cs.CV, cs.LG, hep-ph, quant-ph and return the answer as the exact text label.\n" +
      "text: Attention. We propose X.\nlabel: cs.CL",
  );
  assert.equal(p.source, SEED_TEMPLATE);
  // A text holding braces or placeholder names is inserted verbatim, never expanded again.
  assert.equal(
    PromptTemplate.seed(["a", "b"]).prompt("{labels_str} {text}"),
    "Classify the text into a, b and return the answer as the exact text label.\ntext: {labels_str} {text}\nlabel:",
  );
});

Deno.test("prompts: a template file with placeholders, escapes and its own answer cue", async () => {
  const dir = await Deno.makeTempDir();
  const cases: { source: string; prompt: string; completion: string }[] = [
    {
      source: "Labels: {labels_str}\nEmail: {text}\nAnswer:\n",
      prompt: "Labels: ham, spam\nEmail: Hi.\nAnswer:",
      completion: " spam",
    },
    { source: "{{json}} {text} -> {labels_str}? ", prompt: "{json} Hi. -> ham, spam? ", completion: "spam" },
    { source: "{text}\r\n", prompt: "Hi.", completion: " spam" },
  ];
  for (const [i, c] of cases.entries()) {
    await Deno.writeTextFile(`${dir}/t${i}.txt`, c.source);
    const p = await PromptTemplate.fromFile(`${dir}/t${i}.txt`, ["ham", "spam"]);
    assert.equal(p.prompt("Hi."), c.prompt, JSON.stringify(c.source));
    assert.equal(p.completion("spam"), c.completion, JSON.stringify(c.source));
  }
  const bad: [string, string][] = [
    [
      "Classify {txt}",
      `${dir}/bad.txt: unknown placeholder "{txt}"; a template knows {text} and {labels_str} (write {{ and }} for literal braces)`,
    ],
    ["no text here {labels_str}", `${dir}/bad.txt: the template must hold {text} exactly once, it holds it 0 times`],
    ["{text} and {text}", `${dir}/bad.txt: the template must hold {text} exactly once, it holds it 2 times`],
    ["{text} }", `${dir}/bad.txt: a single "}" outside a placeholder; write }} for a literal brace`],
  ];
  for (const [source, message] of bad) {
    await Deno.writeTextFile(`${dir}/bad.txt`, source);
    await assert.rejects(PromptTemplate.fromFile(`${dir}/bad.txt`, ["a", "b"]), (e) => {
      assert.ok(e instanceof DataError);
      assert.equal(e.message, message);
      return true;
    });
  }
  await assert.rejects(PromptTemplate.fromFile(`${dir}/missing.txt`, ["a"]), DataError);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("prompts: few-shot exemplars repeat the text/label lines before the text to classify", () => {
  const p = PromptTemplate.seed(["ham", "spam"], [{ text: "Lunch?.", answer: "ham" }, {
    text: "WIN.",
    answer: "spam",
  }]);
  assert.equal(
    p.prompt("Hello."),
    "Classify the text into ham, spam and return the answer as the exact text label.\n" +
      "text: Lunch?.\nlabel: ham\ntext: WIN.\nlabel: spam\ntext: Hello.\nlabel:",
  );
  assert.equal(p.trainingText("Hello.", "ham"), p.prompt("Hello.") + " ham");
  assert.equal(p.withExemplars([]).prompt("Hello."), PromptTemplate.seed(["ham", "spam"]).prompt("Hello."));
  const custom = new PromptTemplate("Sort into {labels_str}.\n\nMail: {text} => ", ["a", "b"], [{
    text: "x",
    answer: "a",
  }]);
  assert.equal(custom.prompt("y"), "Sort into a, b.\n\nMail: x => a\nMail: y => ");
});

Deno.test("prompts: exemplars are k per label, seeded, each used once", () => {
  const train = Array.from({ length: 30 }, (_, i) => ({
    line: i + 2,
    text: `text ${i}`,
    gold: ["ham", "spam", "ham, spam"][i % 3],
  }));
  const single = train.filter((e) => !e.gold.includes(","));
  const a = pickExemplars(single, ["ham", "spam"], { perLabel: 3, seed: 5 });
  assert.equal(a.length, 6);
  assert.deepEqual(a.map((e) => e.answer).sort(), ["ham", "ham", "ham", "spam", "spam", "spam"]);
  assert.deepEqual(pickExemplars(single, ["ham", "spam"], { perLabel: 3, seed: 5 }), a, "same seed, same exemplars");
  assert.notDeepEqual(pickExemplars(single, ["ham", "spam"], { perLabel: 3, seed: 6 }), a, "another seed differs");
  assert.equal(pickExemplars(single, ["ham", "spam", "eggs"], { perLabel: 20, seed: 1 }).length, 20, "all there is");
  const multi = pickExemplars(train, ["ham", "spam"], { perLabel: 4, seed: 2, multiLabel: true });
  assert.equal(multi.length, 8);
  assert.equal(new Set(multi.map((e) => e.text)).size, 8, "an example counts for one label only");
  assert.throws(() => pickExemplars(train, ["ham"], { perLabel: -1, seed: 1 }), RangeError);
});

Deno.test("prompts: truncation shortens the text only; instruction, label cue and reserve survive", () => {
  const render = (t: string) => `Classify: ${t}\nlabel:`; // 17 characters around the text, +1 BOS: 18 tokens of overhead
  const cases: { text: string; max: number; reserve: number; want: string; truncated: boolean }[] = [
    { text: "short", max: 40, reserve: 0, want: "short", truncated: false },
    { text: "abcdefghijklmnopqrstuvwxyz", max: 30, reserve: 0, want: "abcdefghijkl", truncated: true },
    { text: "abcdefghijklmnopqrstuvwxyz", max: 30, reserve: 3, want: "abcdefghi", truncated: true },
    { text: "words and more words", max: 27, reserve: 0, want: "words and", truncated: true },
    // The cut lands after a space, which is dropped.
    { text: "trailing space cut here", max: 33, reserve: 0, want: "trailing space", truncated: true },
    { text: "abc", max: 18, reserve: 0, want: "", truncated: true },
  ];
  for (const c of cases) {
    const fit = fitText(c.text, { render, tokenizer: charTokenizer, maxTokens: c.max, reserve: c.reserve });
    assert.deepEqual(fit.text, c.want, JSON.stringify(c));
    assert.equal(fit.truncated, c.truncated);
    assert.equal(fit.tokens, 1 + render(fit.text).length + c.reserve);
    assert.ok(fit.tokens <= c.max);
  }
  assert.throws(
    () => fitText("x", { render, tokenizer: charTokenizer, maxTokens: 17 }),
    /max_seq_length 17 is too short: the prompt without its text already takes 18 tokens/,
  );
  assert.equal(truncateTokens("abcdef", charTokenizer, 4), "abcd");
  assert.equal(truncateTokens("abc", charTokenizer, 4), "abc");
});

Deno.test({
  name: "prompts: truncation with the real Llama-3 tokenizer keeps the prompt within max_seq_length" +
    (haveLlama3 ? "" : " (skipped: ../shared/models/llama3-tokenizer is not here)"),
  ignore: !haveLlama3,
  fn: async () => {
    const tok = await Tokenizer.fromFile(`${llama3Dir}tokenizer.json`, `${llama3Dir}tokenizer_config.json`);
    const p = PromptTemplate.seed(SEED_LABELS);
    const text = "Large language models résumé naïvely — ünïcödé 数据 🚀. ".repeat(40);
    for (const max of [64, 100, 257]) {
      // Training: prompt + completion + EOS must fit.
      const fit = fitText(text, {
        render: (t) => p.trainingText(t, "quant-ph"),
        tokenizer: tok,
        maxTokens: max,
        reserve: 1,
      });
      const full = p.trainingText(fit.text, "quant-ph");
      assert.ok(fit.truncated);
      assert.equal(tok.encode(full).length + 1, fit.tokens);
      assert.ok(fit.tokens <= max, `max ${max}: ${fit.tokens} tokens`);
      assert.ok(fit.tokens >= max - 4, `max ${max}: only ${fit.tokens} tokens used (over-truncated)`);
      assert.ok(text.startsWith(fit.text), `max ${max}: the text is a prefix of the original`);
      assert.ok(full.startsWith("Classify the text into cs.CL") && full.endsWith("\nlabel: quant-ph"));
    }
  },
});
