// The pure half of storing identical files once (share.ts): what makes two
// files interchangeable as one inode, the per-image index that remembers
// it (images/NAME/files.idx.gz), and reading getfattr's dump.
//
// Two files may become one inode only if nothing a hard link shares can
// tell them apart: content (sha256), size, mode (type and permission
// bits), owner, group, mtime to the nanosecond, and every extended
// attribute (which holds ACLs, file capabilities and SELinux labels).
import { createHash } from "node:crypto";

/** gzip: the index is about 140 bytes per file, a third of that compressed (0.3 MiB for 6,000 files). */
export const INDEX_FILE = "files.idx.gz";
export const INDEX_HEADER = "boxctl-files 2";

export interface FileFacts {
  sha256: string;
  size: bigint;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  /** xattrDigest() of its extended attributes; "-" for none. */
  xattrs: string;
  /** Its names in its image: 1, or the size of a hard-link group the archive made. */
  links: number;
}

/**
 * The key two files must share, as one index field list (space-free). A
 * hard-link group of the archive is one entry (its first name) and only
 * ever matches a group of as many names, so that an image keeps exactly
 * the link structure its archive gave it.
 */
export function fileKey(f: FileFacts): string {
  return `${f.sha256} ${f.size} ${f.mode.toString(8)} ${f.uid} ${f.gid} ${f.mtimeNs} ${f.xattrs} ${f.links}`;
}

const KEY_FIELDS = 8;

/**
 * Relative paths boxctl indexes: printable ASCII without a backslash, no
 * empty, "." or ".." component. getfattr quotes unusual bytes in the names
 * it prints; keeping to names it never has to quote makes its dump map to
 * files exactly, and keeps every index line one line. A file with any
 * other name is simply stored as a copy.
 */
export function shareableName(rel: string): boolean {
  if (!/^[\x20-\x5b\x5d-\x7e]+$/.test(rel)) return false;
  return rel.split("/").every((c) => c !== "" && c !== "." && c !== "..");
}

export function indexText(entries: readonly { key: string; rel: string }[]): string {
  return `${INDEX_HEADER}\n${entries.map((e) => `${e.key} ${e.rel}\n`).join("")}`;
}

/**
 * An index's entries, each handed to fn(key, rel). An index of another
 * version, or a damaged one, yields nothing: that image is then simply
 * not shared with. Malformed lines are skipped.
 */
export function forEachIndexed(text: string, fn: (key: string, rel: string) => void): boolean {
  const nl = text.indexOf("\n");
  if (nl < 0 || text.slice(0, nl) !== INDEX_HEADER) return false;
  let at = nl + 1;
  while (at < text.length) {
    let end = text.indexOf("\n", at);
    if (end < 0) end = text.length;
    const line = text.slice(at, end);
    at = end + 1;
    let cut = -1;
    for (let i = 0; i < KEY_FIELDS; i++) {
      cut = line.indexOf(" ", cut + 1);
      if (cut < 0) break;
    }
    if (cut < 0) continue;
    const rel = line.slice(cut + 1);
    if (shareableName(rel)) fn(line.slice(0, cut), rel);
  }
  return true;
}

/** A digest of one file's attribute lines (name=0xHEX), in any order. */
export function xattrDigest(lines: readonly string[]): string {
  if (lines.length === 0) return "-";
  const h = createHash("sha256");
  for (const l of [...lines].sort()) h.update(`${l}\n`);
  return h.digest("hex").slice(0, 32);
}

/** A file whose attributes cannot be told for sure: never shared. */
export const UNKNOWN_XATTRS = "?";

/** getfattr's quoting undone: \ooo is one byte, as attr's quote() writes it. */
function unquote(s: string): string {
  if (!s.includes("\\")) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, "utf8");
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as number;
    const oct = raw.subarray(i + 1, i + 4).toString("latin1");
    if (c === 0x5c && /^[0-7]{3}$/.test(oct)) {
      bytes.push(Number.parseInt(oct, 8) & 0xff);
      i += 3;
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString("latin1");
}

/**
 * `getfattr -R -h -d -m - -e hex --absolute-names ROOT`'s dump as a map
 * from path relative to ROOT to xattrDigest(). A file it does not list
 * has no attributes. Two records that read as the same name (possible
 * only with names boxctl never shares) make it UNKNOWN_XATTRS.
 */
export function parseXattrDump(out: string, root: string): Map<string, string> {
  const byRel = new Map<string, string[]>();
  const twice = new Set<string>();
  let current: string[] | undefined;
  const prefix = `${root}/`;
  for (const line of out.split("\n")) {
    if (line.startsWith("# file: ")) {
      const path = unquote(line.slice("# file: ".length));
      if (!path.startsWith(prefix)) {
        current = undefined;
        continue;
      }
      const rel = path.slice(prefix.length);
      if (byRel.has(rel)) twice.add(rel);
      current = [];
      byRel.set(rel, current);
    } else if (line !== "" && current) current.push(line);
  }
  const res = new Map<string, string>();
  for (const [rel, lines] of byRel)
    res.set(rel, twice.has(rel) ? UNKNOWN_XATTRS : xattrDigest(lines));
  return res;
}
