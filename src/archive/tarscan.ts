// A streaming checker for tar headers. When stage-image streams an archive
// (pump.ts), every byte it hands to GNU tar goes through TarScanner.push()
// first, so a hostile entry is refused before tar has seen it. On the fast
// path for a file (prescan.ts) tar reads the file itself and the check runs
// beside it, inside a private directory that only a successful check makes
// visible. The scanner looks only at header blocks and steps over file data
// by arithmetic.
//
// It is deliberately stricter than tar: anything it cannot account for
// exactly (a bad checksum, data on a symlink, a multi-volume header) is
// refused, because a header that tar and this scanner read differently is
// how hidden entries get past a checker.
import { createHash, type Hash } from "node:crypto";
import { printable } from "../base/errors.ts";
import {
  BLOCK,
  checksumOk,
  numeric,
  padded,
  parsePax,
  pathParts,
  TarViolation,
  text,
} from "./tarfields.ts";

const ZERO = Buffer.alloc(BLOCK);
/** Long names, long link targets and pax records are held in memory; real ones are tiny. */
const MAX_META = 16 * 1024 * 1024;

type Collect = { kind: number; buf: Buffer; fill: number; size: number };

/** A regular file's data as it passed in the stream: what tar wrote at its path. */
export interface MemberDigest {
  sha256: string;
  size: number;
}

export class TarScanner {
  /** Bytes seen so far. */
  offset = 0;
  /** Headers of real entries (not long-name or pax records). */
  entries = 0;
  /** Sum of the file data sizes: what the unpacked tree holds. */
  dataBytes = 0;
  /** The end-of-archive marker was seen; tar reads nothing after it. */
  ended = false;

  private skip = 0;
  private hdr = Buffer.alloc(BLOCK);
  private hdrFill = 0;
  private collect: Collect | null = null;
  /** Old GNU sparse: extension blocks follow, then this much data. */
  private sparseData: number | null = null;
  private longName: string | undefined;
  private longLink: string | undefined;
  private pax: Record<string, string> = {};
  private last = "";
  private readonly symlinks = new Set<string>();
  /** A directory known to have no symlink in its path; reset when a symlink is added. */
  private clearDir: string | null = null;
  /** Holds long names and pax records while they are collected; reused. */
  private scratch = Buffer.allocUnsafe(4096);
  private readonly nondirs = new Set<string>();
  /**
   * With digests on (staging, for store/share.ts): the sha256 of each
   * regular file's data, by path, so that the unpacked tree need not be
   * read back. Null once it cannot be trusted: a path written twice (which
   * copy tar leaves, and whether an earlier hard link keeps the old data,
   * is tar's business) or data stepped over unread.
   */
  private digests: Map<string, MemberDigest> | null;
  private file: { hash: Hash; left: number; key: string; size: number } | null = null;
  /** finish() found the archive whole. */
  private finished = false;

  constructor(opts: { digests?: boolean } = {}) {
    this.digests = opts.digests ? new Map() : null;
  }

  /** The files' digests (see above), once the whole archive was checked; null if off or not to be trusted. */
  memberDigests(): ReadonlyMap<string, MemberDigest> | null {
    return this.finished ? this.digests : null;
  }

  /** Checks a chunk of the stream; throws TarViolation before returning if it holds a bad header. */
  push(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n && !this.ended) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - i);
        if (this.file) this.feed(chunk, i, k);
        this.skip -= k;
        i += k;
      } else if (this.collect) {
        const c = this.collect;
        const k = Math.min(c.size - c.fill, n - i);
        chunk.copy(c.buf, c.fill, i, i + k);
        c.fill += k;
        i += k;
        if (c.fill === c.size) {
          this.collect = null;
          this.skip = padded(c.size) - c.size;
          this.meta(c.kind, c.buf.subarray(0, c.size));
        }
      } else if (this.hdrFill === 0 && n - i >= BLOCK) {
        this.block(chunk, i, this.offset + i);
        i += BLOCK;
      } else {
        const k = Math.min(BLOCK - this.hdrFill, n - i);
        chunk.copy(this.hdr, this.hdrFill, i, i + k);
        this.hdrFill += k;
        i += k;
        if (this.hdrFill === BLOCK) {
          this.hdrFill = 0;
          this.block(this.hdr, 0, this.offset + i - BLOCK);
        }
      }
    }
    this.offset += n;
  }

  /**
   * Steps over up to max bytes of file data without reading them (for a
   * scanner that reads a file at header offsets only); returns how many.
   */
  skipData(max: number): number {
    const k = Math.min(this.skip, max);
    if (k > 0) this.stopDigests();
    this.skip -= k;
    this.offset += k;
    return k;
  }

  /** Called at the end of the stream: an archive cut off inside an entry is an error. */
  finish(): void {
    if (this.entries === 0) throw new TarViolation("the archive holds no entries");
    const cut = this.skip > 0 || this.collect || this.hdrFill > 0 || this.sparseData !== null;
    if (!this.ended && cut) {
      const where = this.last ? ` inside entry '${printable(this.last)}'` : "";
      throw new TarViolation(`the archive is truncated${where} (at byte ${this.offset})`);
    }
    this.finished = true;
  }

  /** Hashes k bytes at chunk[i] that belong to the current file's data (the rest is padding). */
  private feed(chunk: Buffer, i: number, k: number): void {
    const f = this.file as NonNullable<typeof this.file>;
    const m = Math.min(k, f.left);
    f.hash.update(m === chunk.length ? chunk : chunk.subarray(i, i + m));
    f.left -= m;
    if (f.left > 0) return;
    this.file = null;
    this.digests?.set(f.key, { sha256: f.hash.digest("hex"), size: f.size });
  }

  private stopDigests(): void {
    this.digests = null;
    this.file = null;
  }

  /** The header block b[h, h + 512), found at byte `at` of the stream. */
  private block(b: Buffer, h: number, at: number): void {
    if (this.sparseData !== null) {
      // Old GNU sparse headers continue in extension blocks before the data.
      if (b[h + 504] === 0) {
        this.skip = this.sparseData;
        this.sparseData = null;
      }
      return;
    }
    if (b[h] === 0 && ZERO.compare(b, h, h + BLOCK) === 0) {
      this.ended = true;
      return;
    }
    if (!checksumOk(b, h)) {
      const after = this.last ? ` after entry '${printable(this.last)}'` : "";
      throw new TarViolation(`corrupt tar header${after} (bad checksum near byte ${at})`);
    }
    const type = b[h + 156] ?? 0;
    // "ustar\0" is POSIX (with a name prefix field); GNU writes "ustar  \0".
    const posix = b[h + 262] === 0 && b[h + 257] === 0x75;
    let name = text(b, h, 100);
    if (posix && b[h + 345] !== 0) name = `${text(b, h + 345, 155)}/${name}`;
    let size = numeric(b, h + 124, 12);
    if (!Number.isFinite(size)) throw new TarViolation(`corrupt size in the header of '${name}'`);
    if (type === 0x4c || type === 0x4b || type === 0x78 || type === 0x67) {
      // L, K: GNU long name or link target; x, g: pax records.
      if (size > MAX_META)
        throw new TarViolation(`a ${String.fromCharCode(type)} header of ${size} bytes is too big`);
      if (size === 0) return;
      if (size > this.scratch.length) this.scratch = Buffer.allocUnsafe(size);
      this.collect = { kind: type, buf: this.scratch, fill: 0, size };
      return;
    }
    const pax = this.pax;
    if (this.longName !== undefined) name = this.longName;
    if (pax.path !== undefined) name = pax.path;
    if (pax["GNU.sparse.name"] !== undefined) name = pax["GNU.sparse.name"];
    let link = this.longLink ?? text(b, h + 157, 100);
    if (pax.linkpath !== undefined) link = pax.linkpath;
    if (pax.size !== undefined) size = Number(pax.size);
    // A sparse file's data in the archive is not its content.
    const sparse = type === 0x53 || Object.keys(pax).some((k) => k.startsWith("GNU.sparse."));
    this.longName = undefined;
    this.longLink = undefined;
    this.pax = {};
    this.last = name;
    this.entries++;
    const key = this.entry(type, name, link, size);
    if (
      this.digests &&
      key !== null &&
      size > 0 &&
      !sparse &&
      (type === 0 || type === 0x30 || type === 0x37)
    )
      this.file = { hash: createHash("sha256"), left: size, key, size };
    if (type === 0x53 && b[h + 482] !== 0) this.sparseData = padded(size);
    else this.skip = padded(size);
  }

  private meta(kind: number, buf: Buffer): void {
    if (kind === 0x4c) this.longName = text(buf, 0, buf.length);
    else if (kind === 0x4b) this.longLink = text(buf, 0, buf.length);
    else if (kind === 0x78) Object.assign(this.pax, parsePax(buf));
    else {
      const g = parsePax(buf);
      if (g.path !== undefined || g.linkpath !== undefined)
        throw new TarViolation("a pax global header sets a path for every entry; refused");
    }
  }

  /** Checks an entry; returns its path key if it is not a directory. */
  private entry(type: number, name: string, link: string, size: number): string | null {
    // Made only for a message: printable() costs more than the whole check.
    const shown = () => printable(name);
    const parts = pathParts(name, "path", name);
    const key = parts.join("/");
    this.throughSymlink(parts, key, name, "is written through");
    const ch = String.fromCharCode(type);
    if (ch === "M" || ch === "N")
      throw new TarViolation(
        `entry '${shown()}' is a multi-volume or old GNU header; refused`,
        name,
      );
    // These types carry no data; a size on them would make tar and this
    // scanner disagree about where the next header is.
    if ("123456".includes(ch) && size !== 0)
      throw new TarViolation(`entry '${shown()}' (type ${ch}) claims ${size} bytes of data`, name);
    if (key === "" && ch !== "5")
      throw new TarViolation(`entry '${shown()}' replaces the root`, name);
    const plainDir = (ch === "0" || type === 0) && name.endsWith("/");
    if (ch === "5" || ch === "D" || plainDir) {
      if (this.symlinks.has(key))
        throw new TarViolation(`directory '${shown()}' would be made through the symlink`, name);
      return null;
    }
    if (ch === "1") {
      const target = pathParts(link, "hardlink target", name);
      const targetKey = target.join("/");
      this.throughSymlink(target, targetKey, name, "is a hardlink through");
      if (!this.nondirs.has(targetKey))
        throw new TarViolation(
          `hardlink '${shown()}' points to '${printable(link)}', which is not earlier in the archive (outside it)`,
          name,
        );
      // The same inode as its target, with the data its target has now.
      const d = this.digests?.get(targetKey);
      if (d) this.digests?.set(key, d);
    } else if (ch === "2") {
      this.symlinks.add(key);
      this.clearDir = null;
    } else if (ch !== "3" && ch !== "4" && ch !== "6") {
      this.dataBytes += size;
    }
    if (this.nondirs.has(key)) this.stopDigests();
    this.nondirs.add(key);
    return key;
  }

  /** Refuses a path (parts, joined: key) with a symlink among its leading components. */
  private throughSymlink(parts: string[], key: string, name: string, verb: string): void {
    if (this.symlinks.size === 0) return;
    const slash = key.lastIndexOf("/");
    if (slash < 0) return;
    // Archives list a directory's entries together: its path is checked once.
    const dir = key.slice(0, slash);
    if (dir === this.clearDir) return;
    let prefix = "";
    for (let j = 0; j < parts.length - 1; j++) {
      prefix = j === 0 ? (parts[0] as string) : `${prefix}/${parts[j]}`;
      if (this.symlinks.has(prefix))
        throw new TarViolation(
          `entry '${printable(name)}' ${verb} the symlink '${printable(prefix)}' (a write outside the image)`,
          name,
        );
    }
    this.clearDir = dir;
  }
}
