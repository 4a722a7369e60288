// What kind of archive a file is, judged by its first bytes (never by its
// name), the system tool that decompresses it, and the image name a file
// name gives.
import { basename } from "node:path";

export type Format = "tar" | "gzip" | "xz" | "zstd" | "bzip2";

/** How many leading bytes detect() needs to see to recognise a plain tar. */
export const MAGIC_BYTES = 262;

const MAGIC: [Format, number[]][] = [
  ["gzip", [0x1f, 0x8b]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["bzip2", [0x42, 0x5a, 0x68]],
];

/** The format of a stream that starts with head, or null if it is no archive boxctl knows. */
export function detect(head: Uint8Array): Format | null {
  for (const [fmt, magic] of MAGIC) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return fmt;
  }
  // ustar and GNU tar both put "ustar" at offset 257 of the first header.
  const ustar = [0x75, 0x73, 0x74, 0x61, 0x72];
  if (head.length >= 262 && ustar.every((b, i) => head[257 + i] === b)) return "tar";
  return null;
}

/** The command that turns the compressed stream on its stdin into a tar stream. */
export function decompressor(fmt: Format): string[] | null {
  switch (fmt) {
    case "tar":
      return null;
    case "gzip":
      return ["gzip", "-dc"];
    case "xz":
      return ["xz", "-dc"];
    case "zstd":
      return ["zstd", "-dc"];
    case "bzip2":
      return ["bzip2", "-dc"];
  }
}

const SUFFIXES = [
  ".tar.gz",
  ".tar.xz",
  ".tar.zst",
  ".tar.zstd",
  ".tar.bz2",
  ".tgz",
  ".txz",
  ".tzst",
  ".tbz2",
  ".tbz",
  ".tar",
];

/** foo-0.1.tar.gz gives foo-0.1; a name without a known suffix is kept whole. */
export function imageNameFromPath(path: string): string {
  const base = basename(path);
  const lower = base.toLowerCase();
  for (const s of SUFFIXES) {
    if (lower.endsWith(s) && lower.length > s.length) return base.slice(0, -s.length);
  }
  return base;
}

const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parses a size such as 64G, 500M or 1048576 (binary units); null if it is not one. */
export function parseSize(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(s.trim());
  if (!m) return null;
  const unit = UNITS[(m[2] ?? "").toUpperCase()];
  return unit === undefined ? null : Math.floor(Number(m[1]) * unit);
}
