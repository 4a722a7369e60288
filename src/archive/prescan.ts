// The fast path for an uncompressed tar in a file that only root can
// change. tar starts at once, reading the file itself through
// /proc/PID/fd/N (the very inode boxctl opened), while node reads the
// same file once beside it: every header through TarScanner, every byte
// into the sha256. No byte of file data passes from node to tar, so
// staging costs what tar costs, plus one read and hash of the file on
// the other core.
//
// Why tar may run before the check has finished: tar unpacks into
// staging/NAME.XXXXXX/tree, a directory that mkdtemp made 0700 inside the
// 0700 staging/, and nothing there becomes visible before the rename that
// stageFrom does only after this function has resolved, that is after the
// whole file was checked and tar exited 0. On a violation tar is killed,
// waited for, and the staging directory removed, with the same message
// as when the check ran first. What a hostile archive can make GNU tar do
// in the meantime stays inside that directory:
// - paths: tar strips a leading '/' and skips members with '..' in their
//   name or hard link target, so every path it writes is under -C;
// - symlinks: one that is absolute or has '..' (the only kind that can
//   lead out) is first created as an empty placeholder file and made a
//   symlink only when tar has finished; a later member "through" it meets
//   a plain file (ENOTDIR) and is not written; since tar is killed on a
//   violation, it never gets there;
// - device nodes, setuid/setcap files, FIFOs: created, never opened or
//   run, and only root can reach them through the 0700 directories; rm -rf
//   (removeTree) does not follow symlinks or cross into another mount;
// - space: tar writes at most what the archive holds, and the archive is
//   a file on a local disk already bounded by --max-size; a full disk is
//   reported as today and the partial tree removed.

import { createHash } from "node:crypto";
import { readFileSync, readSync, type Stats, statfsSync } from "node:fs";
import { BoxError } from "../base/errors.ts";
import { type Runner, spawnError } from "../host/runner.ts";
import { childFailed, collect, diskFull, tarArgv, violation } from "./pump.ts";
import { TarViolation } from "./tarfields.ts";
import { type MemberDigest, TarScanner } from "./tarscan.ts";

// NFS, SMB/CIFS, FUSE, 9p, Ceph: another machine or process may change the
// file between the check and tar's read, so those take the streaming path.
const REMOTE_FS = new Set([
  0x6969, 0x517b, 0xff534d42, 0xfe534d42, 0x65735546, 0x01021997, 0x00c36400,
]);

/**
 * True if nobody but root can change the file while it is staged: a
 * regular file owned by root, not writable by group or others (an ACL
 * granting write shows in the group bits), on a local file system.
 */
export function onlyRootWrites(path: string, st: Stats): boolean {
  if (!st.isFile() || st.uid !== 0 || (st.mode & 0o022) !== 0) return false;
  try {
    return !REMOTE_FS.has(Number(statfsSync(path).type));
  } catch {
    return false;
  }
}

const CHUNK = 1 << 20;
const HEADERS_ONLY = 1 << 16;

export interface Scanned {
  scanner: TarScanner;
  /** Null when hashing was given up (hashing() turned false). */
  sha256: string | null;
  bytes: number;
}

/**
 * Reads the tar in fd (size bytes) once: checks every header, and hashes
 * every byte while hashing() says so. Once it does not, file data is
 * stepped over by arithmetic and only headers are read. Yields to the
 * event loop between chunks, so that signals and tar's exit are seen.
 * Throws TarViolation, or what hashing() throws (to stop at once).
 */
export async function scanFile(
  fd: number,
  size: number,
  hashing: () => boolean = () => true,
): Promise<Scanned> {
  const scanner = new TarScanner({ digests: true });
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(CHUNK);
  let off = 0;
  let hashed = true;
  for (;;) {
    if (hashed && !hashing()) hashed = false;
    if (!hashed) {
      if (scanner.ended || off >= size) break;
      const jumped = scanner.skipData(size - off);
      off += jumped;
      if (jumped > 0) continue;
    }
    const n = readSync(fd, buf, 0, hashed ? CHUNK : Math.min(HEADERS_ONLY, size - off), off);
    if (n === 0) break;
    const chunk = buf.subarray(0, n);
    if (hashed) hash.update(chunk);
    // The end-of-archive marker stops the check; the hash goes on to EOF.
    if (!scanner.ended && off < size)
      scanner.push(off + n <= size ? chunk : chunk.subarray(0, size - off));
    off += n;
    await new Promise(setImmediate);
  }
  scanner.finish();
  return { scanner, sha256: hashed ? hash.digest("hex") : null, bytes: off };
}

export interface FileExtract {
  fd: number;
  size: number;
  label: string;
  dest: string;
  meter: { bytes: number };
}

/** Runs tar on the file and checks it beside (see the top of this file). */
export async function extractChecked(
  r: Runner,
  o: FileExtract,
  ctl: { abort?: (e: Error) => void },
): Promise<{
  sha256: string;
  bytesIn: number;
  dataBytes: number;
  digests: ReadonlyMap<string, MemberDigest> | null;
}> {
  const tar = r.spawn(tarArgv(o.dest, `/proc/${process.pid}/fd/${o.fd}`));
  tar.stdin?.end();
  // The first of: tar's failure, a full disk, Ctrl-C. A violation found
  // by the check outranks all of them but Ctrl-C.
  let tarError: Error | null = null;
  let aborted: Error | null = null;
  const kill = () => {
    if (tar.exitCode === null && tar.signalCode === null) tar.kill("SIGKILL");
  };
  const stderr = collect(tar, (s) => {
    if (/No space left on device/.test(s)) {
      tarError ??= diskFull(o.dest);
      kill();
    }
  });
  const tarDone = new Promise<void>((resolve) => {
    tar.on("error", (e: NodeJS.ErrnoException) => {
      tarError ??= spawnError(e);
      resolve();
    });
    tar.on("close", (code, sig) => {
      if (code !== 0) tarError ??= childFailed("tar", code, sig, stderr());
      resolve();
    });
  });
  ctl.abort = (e) => {
    aborted ??= e;
    kill();
  };
  const poll = setInterval(() => {
    try {
      const io = readFileSync(`/proc/${tar.pid}/io`, "latin1");
      o.meter.bytes = Math.min(o.size, Number(/^rchar: (\d+)/m.exec(io)?.[1] ?? 0));
    } catch {
      // tar has exited
    }
  }, 200);
  poll.unref();
  try {
    let scanned: Scanned;
    try {
      // Once staging has failed anyway the hash is of no use; the headers
      // are still checked to the end, so that a violation is what is said.
      scanned = await scanFile(o.fd, o.size, () => {
        if (aborted) throw aborted;
        return tarError === null;
      });
    } catch (e) {
      kill();
      await tarDone;
      if (aborted) throw aborted;
      if (e instanceof TarViolation) throw violation(o.label, e);
      throw e instanceof BoxError
        ? e
        : new BoxError(`cannot read ${o.label}: ${(e as Error).message}`, "check the file");
    }
    if (aborted) kill();
    await tarDone;
    if (aborted) throw aborted;
    if (tarError) throw tarError;
    o.meter.bytes = o.size;
    return {
      sha256: scanned.sha256 as string,
      bytesIn: scanned.bytes,
      dataBytes: scanned.scanner.dataBytes,
      digests: scanned.scanner.memberDigests(),
    };
  } finally {
    clearInterval(poll);
  }
}
