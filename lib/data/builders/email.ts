/**
 * The readable part of a raw e-mail (RFC 5322 with MIME): its subject, with
 * RFC 2047 encoded words decoded, and its body text: the first text/plain
 * part (else the first text/html part; either reduced to its text with npm
 * linkedom when it is HTML), transfer encoding (base64, quoted-printable) and charset
 * decoded, whitespace collapsed. Enough for classifying mail, not a full
 * MIME library: attachments and headers other than the subject are dropped.
 *
 * @module
 */

import { DOMParser } from "linkedom";

/** What a classifier reads of an e-mail. */
export interface EmailText {
  /** The Subject header, decoded; "" when there is none. */
  subject: string;
  /** The body text, whitespace collapsed; "" when there is none. */
  body: string;
}

interface Entity {
  headers: Map<string, string>;
  body: string;
}

/** Splits headers from body at the first blank line and unfolds the headers (first occurrence of a name wins). */
function parseEntity(raw: string): Entity {
  const text = raw.replace(/\r\n/g, "\n");
  const blank = text.indexOf("\n\n");
  const head = blank < 0 ? text : text.slice(0, blank);
  const body = blank < 0 ? "" : text.slice(blank + 2);
  const headers = new Map<string, string>();
  let name = "";
  for (const line of head.split("\n")) {
    if (/^[ \t]/.test(line) && name) {
      headers.set(name, headers.get(name) + " " + line.trim());
      continue;
    }
    const colon = line.indexOf(":");
    // An mbox "From " separator line (no colon in the name) is not a header.
    if (colon <= 0 || /\s/.test(line.slice(0, colon))) {
      name = "";
      continue;
    }
    name = line.slice(0, colon).toLowerCase();
    if (headers.has(name)) name = "";
    else headers.set(name, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** Decodes bytes in a MIME charset; an unknown or broken charset falls back to Windows-1252, which never fails. */
function decodeCharset(bytes: Uint8Array, charset: string | undefined): string {
  try {
    return new TextDecoder(charset || "us-ascii").decode(bytes);
  } catch {
    return new TextDecoder("windows-1252").decode(bytes);
  }
}

function base64Bytes(s: string): Uint8Array {
  let clean = s.replace(/[^A-Za-z0-9+/]/g, "");
  // atob takes unpadded input, except a lone last character (6 bits: no whole byte), which is dropped.
  if (clean.length % 4 === 1) clean = clean.slice(0, -1);
  return Uint8Array.from(atob(clean), (c) => c.charCodeAt(0));
}

function quotedPrintableBytes(s: string, underscoreIsSpace: boolean): Uint8Array {
  const out: number[] = [];
  const text = s.replace(/=\r?\n/g, "");
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "=" && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c === "_" && underscoreIsSpace) out.push(0x20);
    else out.push(c.charCodeAt(0) & 0xff);
  }
  return new Uint8Array(out);
}

/**
 * Decodes RFC 2047 encoded words (`=?charset?B|Q?...?=`) in a header value;
 * whitespace between two encoded words is dropped, as the RFC says.
 *
 * @example
 * ```ts
 * import { decodeEncodedWords } from "./email.ts";
 * decodeEncodedWords("=?iso-8859-1?Q?Caf=E9_ouvert?= =?utf-8?B?IQ==?="); // "Café ouvert!"
 * ```
 */
export function decodeEncodedWords(value: string): string {
  return value
    .replace(/(\?=)\s+(?==\?)/g, "$1")
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_, charset: string, enc: string, data: string) => {
      const bytes = enc.toUpperCase() === "B" ? base64Bytes(data) : quotedPrintableBytes(data, true);
      return decodeCharset(bytes, charset.split("*")[0]);
    });
}

/** `type/subtype` and the parameters of a Content-Type value. */
function contentType(value: string | undefined): { type: string; params: Map<string, string> } {
  const [type, ...rest] = (value ?? "text/plain").split(";");
  const params = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf("=");
    if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1"));
  }
  return { type: type.trim().toLowerCase() || "text/plain", params };
}

/** The decoded text of a leaf entity. */
function leafText(e: Entity, charset: string | undefined): string {
  const encoding = (e.headers.get("content-transfer-encoding") ?? "").trim().toLowerCase();
  if (encoding === "base64") return decodeCharset(base64Bytes(e.body), charset);
  if (encoding === "quoted-printable") return decodeCharset(quotedPrintableBytes(e.body, false), charset);
  return e.body;
}

/** The first part of type `want` (depth first through multiparts), decoded, or undefined. */
function findPart(e: Entity, want: string): string | undefined {
  const { type, params } = contentType(e.headers.get("content-type"));
  if (type.startsWith("multipart/")) {
    const boundary = params.get("boundary");
    if (!boundary) return undefined;
    const sections = e.body.replace(/\r\n/g, "\n").split(
      new RegExp(`^--${boundary.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?:--)?[ \t]*$`, "m"),
    );
    // sections[0] is the preamble; the text after the closing boundary is the epilogue.
    for (const section of sections.slice(1)) {
      const found = findPart(parseEntity(section.replace(/^\n/, "")), want);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  return type === want ? leafText(e, params.get("charset")) : undefined;
}

/** The little of linkedom's HTML document that htmlText uses. */
interface HtmlDocument {
  querySelectorAll(selector: string): Iterable<{ remove(): void }>;
  body: { textContent: string | null } | null;
}

/** The visible text of an HTML document (scripts and styles dropped; block tags separate words). */
function htmlText(html: string): string {
  const spaced = html.replace(/<(?=\/?(p|div|br|tr|td|th|li|h[1-6]|table|title)\b)/gi, " <");
  const document: HtmlDocument = new DOMParser().parseFromString(
    `<!doctype html><html><body>${spaced}</body></html>`,
    "text/html",
  );
  for (const el of [...document.querySelectorAll("script, style, head")]) el.remove();
  return document.body?.textContent ?? "";
}

const LOOKS_LIKE_HTML = /<\/?(html|body|font|br|p|div|table|a|b|i|center)\b[^>]*>/i;
const collapse = (s: string) => s.replace(/\s+/g, " ").trim();

/**
 * The subject and body text of a raw e-mail.
 *
 * @example
 * ```ts
 * import { emailText } from "./email.ts";
 * emailText("Subject: Hello\nContent-Type: text/html\n\n<p>Cheap <b>pills</b></p><p>now</p>\n");
 * // { subject: "Hello", body: "Cheap pills now" }
 * ```
 */
export function emailText(raw: string): EmailText {
  const e = parseEntity(raw);
  const subject = collapse(decodeEncodedWords(e.headers.get("subject") ?? ""));
  let plain = findPart(e, "text/plain");
  // Spam often sends HTML labelled text/plain.
  if (plain !== undefined && LOOKS_LIKE_HTML.test(plain)) plain = htmlText(plain);
  const html = plain === undefined || plain.trim() === "" ? findPart(e, "text/html") : undefined;
  const body = collapse(html !== undefined ? htmlText(html) : plain ?? "");
  return { subject, body };
}
