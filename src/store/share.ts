// Identical files stored once across images (issue 15). stage-image calls
// shareIdentical() on its private staging tree, after the layout is settled
// and before the sync and the rename that make the image visible: each
// regular file identical in every respect to one indexed in another image
// (share-index.ts: content and all a hard link shares) becomes a hard link
// to that image's file (share-tree.ts), and the new image's index is
// written beside its image.json. A crash or Ctrl-C leaves only staging debris, swept later;
// the other image's file gains a link and nothing else.
//
// Why it is safe: images are read-only lowers, overlayfs copies a file up
// before any write, so no container ever writes a shared inode; deleting
// an image removes its names, not other images' data. What a container can
// see is a link count above 1 (docs/shared-files.md).
//
// The staged tree comes from an untrusted archive: it is walked with
// lstat and readdir only, a file is hashed from the stream tar was given
// (ShareRequest.digests) or else opened O_NOFOLLOW and checked to be the
// inode walked, and a link only ever points at a file under another
// image's rootfs whose directory resolves to itself (no link on the way).
import { type BigIntStats, lstatSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setImmediate as yieldNow } from "node:timers/promises";
import { gunzipSync, gzipSync } from "node:zlib";
import { paths } from "../base/paths.ts";
import type { Runner } from "../host/runner.ts";
import { listImageNames } from "./images.ts";
import {
  fileKey,
  forEachIndexed,
  INDEX_FILE,
  indexText,
  parseXattrDump,
  UNKNOWN_XATTRS,
} from "./share-index.ts";
import {
  hashFile,
  keepDirTimes,
  replaceWithLink,
  STOPPED,
  type Walked,
  walk,
} from "./share-tree.ts";

export interface ShareResult {
  /** Regular files indexed (size > 0, one link, a name boxctl indexes). */
  files: number;
  /** Of those, now hard links to another image's file. */
  linked: number;
  /** Their bytes: what the sharing saved. */
  bytes: number;
  /** Why nothing was shared or indexed, if so. */
  skipped?: string;
}

/**
 * Files of other images for each wanted key, from their indexes, newest
 * image first, until every key has a file for each of its files here.
 */
function findTwins(name: string, want: Map<string, Walked[]>): Map<string, string[]> {
  const found = new Map<string, string[]>();
  let short = want.size;
  const others = listImageNames()
    .filter((n) => n !== name)
    .map((n) => ({ n, idx: join(paths.image(n), INDEX_FILE) }))
    .map((o) => {
      try {
        return { ...o, at: lstatSync(o.idx).mtimeMs };
      } catch {
        return { ...o, at: -1 }; // staged before sharing existed: no index, not shared with
      }
    })
    .filter((o) => o.at >= 0)
    .sort((a, b) => b.at - a.at);
  for (const o of others) {
    let root: string;
    try {
      root = realpathSync(join(paths.image(o.n), "rootfs"));
    } catch {
      continue;
    }
    let text: string;
    try {
      text = gunzipSync(readFileSync(o.idx)).toString("utf8");
    } catch {
      continue; // damaged: that image is not shared with
    }
    forEachIndexed(text, (key, rel) => {
      const mine = want.get(key);
      if (!mine) return;
      const got = found.get(key) ?? [];
      if (got.length === 0) found.set(key, got);
      // A few spare: the same inode may be listed by several images.
      if (got.length < mine.length + 4) got.push(`${root}/${rel}`);
      if (got.length === mine.length) short--;
    });
    if (short <= 0) break;
  }
  return found;
}

/** The sha256 the stream gave every name of f, if they all have the same one of f's size. */
function streamed(digests: ShareRequest["digests"], f: Walked): string | null {
  if (!digests) return null;
  let sha: string | null = null;
  for (const n of f.names) {
    const d = digests.get(n);
    if (!d || BigInt(d.size) !== f.st.size || (sha !== null && d.sha256 !== sha)) return null;
    sha = d.sha256;
  }
  return sha;
}

const sameFacts = (a: BigIntStats, b: BigIntStats) =>
  a.size === b.size &&
  a.mode === b.mode &&
  a.uid === b.uid &&
  a.gid === b.gid &&
  a.mtimeNs === b.mtimeNs &&
  a.dev === b.dev;

export interface ShareRequest {
  /** The private staging dir: the index goes here, beside image.json. */
  stageDir: string;
  rootfs: string;
  name: string;
  /**
   * Each regular file's sha256 and size as tar was handed its data, by
   * path (archive/tarscan.ts), so that files need not be read back; a
   * file without one, or whose size differs, is read and hashed.
   */
  digests?: ReadonlyMap<string, { sha256: string; size: number }>;
  /** True once the stage is being abandoned (Ctrl-C). */
  stop: () => boolean;
}

export async function shareIdentical(r: Runner, o: ShareRequest): Promise<ShareResult> {
  try {
    return await share(r, o);
  } catch (e) {
    if (e === STOPPED) return { files: 0, linked: 0, bytes: 0, skipped: "interrupted" };
    throw e;
  }
}

async function share(r: Runner, o: ShareRequest): Promise<ShareResult> {
  const res: ShareResult = { files: 0, linked: 0, bytes: 0 };
  // One run over the whole tree: every attribute of every file that has any.
  // It runs beside the walk (another process, on the other core).
  const argv = ["getfattr", "-R", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names"];
  const getfattr: Promise<{ dump?: string; skipped?: string }> = r
    .run([...argv, "--", o.rootfs], { check: false })
    .then(
      (g) =>
        g.code === 0 ? { dump: g.stdout } : { skipped: `getfattr failed: ${g.stderr.trim()}` },
      (e: Error) => ({ skipped: e.message }),
    );
  let files: Walked[];
  try {
    files = await walk(o.rootfs, o.stop);
  } finally {
    await getfattr; // never leave it running into the staging dir's removal
  }
  const { dump, skipped } = await getfattr;
  if (dump === undefined) return { ...res, skipped };
  const xattrs = parseXattrDump(dump, o.rootfs);
  const want = new Map<string, Walked[]>();
  const entries: { key: string; rel: string }[] = [];
  for (const [i, f] of files.entries()) {
    const x = xattrs.get(f.rel) ?? "-";
    if (x === UNKNOWN_XATTRS) continue;
    let sha256 = streamed(o.digests, f);
    if (sha256 === null)
      try {
        sha256 = hashFile(join(o.rootfs, f.rel), f.st);
      } catch {
        sha256 = null; // gone or changed: nothing to share
      }
    if (!sha256) continue;
    const { size, mode, uid, gid, mtimeNs } = f.st;
    const key = fileKey({
      sha256,
      size,
      mode: Number(mode),
      uid: Number(uid),
      gid: Number(gid),
      mtimeNs,
      xattrs: x,
      links: f.names.length,
    });
    entries.push({ key, rel: f.rel });
    const same = want.get(key);
    if (same) same.push(f);
    else want.set(key, [f]);
    if (i % 256 === 0) {
      await yieldNow();
      if (o.stop()) throw STOPPED;
    }
  }
  res.files = entries.length;
  const twins = findTwins(o.name, want);
  const dirsOf = new Set<string>();
  for (const key of twins.keys())
    for (const f of want.get(key) ?? []) for (const n of f.names) dirsOf.add(dirname(n));
  const putBack = await keepDirTimes(r, o.rootfs, join(o.stageDir, "dirs.tar"), dirsOf);
  const safeDirs = new Map<string, boolean>();
  let n = 0;
  let tries = 0;
  // Each inode at most once per image, as the archive made it: two equal
  // files of one image stay two inodes, since with overlayfs' index=on a
  // write to one name of a lower hard link shows in all its names.
  const used = new Set<bigint>();
  for (const [key, cands] of twins) {
    const mine = want.get(key) as Walked[];
    let k = 0;
    for (const twin of cands) {
      const f = mine[k];
      if (!f) break;
      const ino = linkTwin(twin, f, o.rootfs, used, safeDirs, tries++);
      if (ino === null) continue;
      k++;
      res.linked += f.names.length;
      res.bytes += Number(f.st.size);
      if (++n % 256 === 0) {
        await yieldNow();
        if (o.stop()) throw STOPPED;
      }
    }
  }
  await putBack();
  writeFileSync(join(o.stageDir, INDEX_FILE), gzipSync(indexText(entries)), { mode: 0o600 });
  return res;
}

/** Makes staged file f a link to twin, after checking twin; its inode, or null if not. */
function linkTwin(
  twin: string,
  f: Walked,
  rootfs: string,
  used: Set<bigint>,
  safeDirs: Map<string, boolean>,
  n: number,
): bigint | null {
  // The twin's directory must be itself, not reached through a link.
  const tdir = dirname(twin);
  let safe = safeDirs.get(tdir);
  if (safe === undefined) {
    try {
      safe = realpathSync(tdir) === tdir;
    } catch {
      safe = false;
    }
    safeDirs.set(tdir, safe);
  }
  if (!safe) return null;
  let tst: BigIntStats;
  try {
    tst = lstatSync(twin, { bigint: true });
  } catch {
    return null;
  }
  // Images are never written, but an index is only a record: check.
  if (!tst.isFile() || !sameFacts(tst, f.st) || used.has(tst.ino)) return null;
  if (tst.nlink < BigInt(f.names.length)) return null; // not a group as large
  const done: string[] = [];
  try {
    for (const name of f.names) {
      replaceWithLink(twin, join(rootfs, name), n);
      done.push(name);
    }
  } catch (e) {
    // A group half moved would split what the archive made one file: put
    // the moved names back on the group's own inode (a name not moved).
    const code = (e as NodeJS.ErrnoException).code;
    const left = f.names[done.length] as string;
    for (const name of done) replaceWithLink(join(rootfs, left), join(rootfs, name), n);
    // EMLINK: the file system's link limit (ext4: 65000); ENOENT: that
    // image was deleted meanwhile. Either way the copy stays.
    if (code === "EMLINK" || code === "EXDEV" || code === "EEXIST" || code === "ENOENT")
      return null;
    throw e;
  }
  used.add(tst.ino);
  return tst.ino;
}
