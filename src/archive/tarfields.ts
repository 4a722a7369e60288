// The fields of a tar header block, read as GNU tar reads them: numbers
// (octal or base-256), names, the checksum, entry paths and pax records.
// Pure functions; the streaming checker (tarscan.ts) is built on them.
import { printable } from "../base/errors.ts";

export class TarViolation extends Error {
  constructor(
    message: string,
    readonly entry?: string,
  ) {
    super(message);
    this.name = "TarViolation";
  }
}

export const BLOCK = 512;

export const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/** Reads a numeric header field: octal text, or GNU base-256 for big values. */
export function numeric(b: Uint8Array, off: number, len: number): number {
  const first = b[off] ?? 0;
  if (first & 0x80) {
    if (first & 0x40) return Number.NaN; // negative: never valid for a size
    let n = first & 0x3f;
    for (let i = 1; i < len; i++) n = n * 256 + (b[off + i] ?? 0);
    return n;
  }
  let n = 0;
  let seen = false;
  for (let i = off; i < off + len; i++) {
    const c = b[i] ?? 0;
    if (c === 0 || (c === 0x20 && seen)) break;
    if (c === 0x20) continue;
    if (c < 0x30 || c > 0x37) return Number.NaN;
    n = n * 8 + (c - 0x30);
    seen = true;
  }
  return n;
}

export function text(b: Buffer, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return b.toString("utf8", off, end);
}

/** True if the header at b[at] has a matching checksum (tar accepts the unsigned or the signed sum). */
export function checksumOk(b: Uint8Array, at = 0): boolean {
  const want = numeric(b, at + 148, 8);
  let unsigned = 8 * 0x20;
  for (let i = at; i < at + 148; i++) unsigned += b[i] as number;
  for (let i = at + 156; i < at + BLOCK; i++) unsigned += b[i] as number;
  if (want === unsigned) return true;
  let signed = 8 * 0x20;
  for (let i = at; i < at + BLOCK; i++) {
    if (i >= at + 148 && i < at + 156) continue;
    const c = b[i] as number;
    signed += c > 127 ? c - 256 : c;
  }
  return want === signed;
}

/**
 * Splits an entry path into components. Refuses absolute paths and '..'
 * anywhere; '.' and empty components (a//b, trailing /) are dropped, as
 * the kernel would.
 */
export function pathParts(path: string, what: string, entry: string): string[] {
  // The common case, a plain relative path, needs no normalising.
  if (/^[^/.][^/]*(?:\/[^/.][^/]*)*$/.test(path)) return path.split("/");
  const shown = printable(entry);
  if (path === "") throw new TarViolation(`entry with an empty ${what}`, entry);
  if (path.startsWith("/"))
    throw new TarViolation(`entry '${shown}' has an absolute ${what} '${printable(path)}'`, entry);
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes(".."))
    throw new TarViolation(
      `entry '${shown}' has a '..' component in its ${what} '${printable(path)}'`,
      entry,
    );
  return parts;
}

/** Parses pax extended header records ("LEN key=value\n"). */
export function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) break;
    // Records are short: a loop beats indexOf's call into C++.
    let sp = pos;
    while (sp < buf.length && buf[sp] !== 0x20) sp++;
    if (sp === buf.length) sp = -1;
    const len = Number(buf.toString("latin1", pos, sp));
    if (sp < 0 || !Number.isInteger(len) || len <= sp - pos || pos + len > buf.length)
      throw new TarViolation(`corrupt pax header record at byte ${pos} of a pax header`);
    const end = pos + len - 1;
    let eq = sp + 1;
    while (eq < end && buf[eq] !== 0x3d) eq++;
    if (eq === end) throw new TarViolation("corrupt pax header record (no '=')");
    out[buf.toString("utf8", sp + 1, eq)] = buf.toString("utf8", eq + 1, end);
    pos += len;
  }
  return out;
}
