// The fast path for an uncompressed tar in a file that only root can
// change: check every header first, reading the file at header offsets
// only, then let tar read the file itself. No byte of file data passes
// through node, so staging costs what tar costs (plus the hash, computed
// beside tar on another core).
import { readFileSync, readSync, type Stats, statfsSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { BoxError } from "../base/errors.ts";
import { type Runner, spawnError } from "../host/runner.ts";
import { childFailed, collect, diskFull, tarArgv } from "./pump.ts";
import { TarScanner, TarViolation } from "./tarscan.ts";

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

const WINDOW = 65536;

/** Checks every header of the tar in fd (size bytes); throws TarViolation. */
export function prescan(fd: number, size: number): TarScanner {
  const scanner = new TarScanner();
  const buf = Buffer.alloc(WINDOW);
  let off = 0;
  while (off < size && !scanner.ended) {
    // File data is stepped over by arithmetic, never read.
    const jumped = scanner.skipData(size - off);
    off += jumped;
    if (jumped > 0 || off >= size) continue;
    const n = readSync(fd, buf, 0, Math.min(WINDOW, size - off), off);
    if (n === 0) break;
    scanner.push(buf.subarray(0, n));
    off += n;
  }
  scanner.finish();
  return scanner;
}

export { TarViolation };

// Hashing runs on its own thread, from the moment the file is opened, so
// that it overlaps the header check as well as tar. Positional reads: the
// descriptor's offset is left alone.
const HASH_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { readSync } = require("node:fs");
const { createHash } = require("node:crypto");
const h = createHash("sha256");
const buf = Buffer.allocUnsafe(1 << 20);
let off = 0;
for (;;) {
  const n = readSync(workerData.fd, buf, 0, buf.length, off);
  if (n === 0) break;
  h.update(n === buf.length ? buf : buf.subarray(0, n));
  off += n;
}
parentPort.postMessage({ sha256: h.digest("hex"), bytes: off });
`;

export interface Hashing {
  result: Promise<{ sha256: string; bytes: number }>;
  stop: () => void;
}

export function hashInBackground(fd: number, label: string): Hashing {
  const worker = new Worker(HASH_WORKER, { eval: true, workerData: { fd } });
  const result = new Promise<{ sha256: string; bytes: number }>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", (e) => reject(new BoxError(`cannot read ${label}: ${e.message}`)));
  });
  // The caller may give up before the hash is done; that is no error.
  result.catch(() => undefined);
  return { result, stop: () => void worker.terminate() };
}

export interface FileExtract {
  fd: number;
  size: number;
  label: string;
  dest: string;
  meter: { bytes: number };
  hashing: Hashing;
}

/**
 * Runs tar on the checked file through /proc/PID/fd/N, so tar reads the
 * very inode that was checked even if the path is swapped meanwhile.
 */
export function extractFile(
  r: Runner,
  o: FileExtract,
  ctl: { abort?: (e: Error) => void },
): Promise<{ sha256: string; bytesIn: number }> {
  const argv = tarArgv(o.dest, `/proc/${process.pid}/fd/${o.fd}`);
  const tar = r.spawn(argv);
  tar.stdin?.end();
  const poll = setInterval(() => {
    try {
      const io = readFileSync(`/proc/${tar.pid}/io`, "latin1");
      o.meter.bytes = Math.min(o.size, Number(/^rchar: (\d+)/m.exec(io)?.[1] ?? 0));
    } catch {
      // tar has exited
    }
  }, 200);
  poll.unref();
  return new Promise((resolve, reject) => {
    let failed: Error | null = null;
    let hashed: { sha256: string; bytes: number } | null = null;
    let tarDone = false;
    const settle = () => {
      if (failed || hashed === null || !tarDone) return;
      clearInterval(poll);
      o.meter.bytes = o.size;
      resolve({ sha256: hashed.sha256, bytesIn: hashed.bytes });
    };
    const fail = (e: Error) => {
      if (failed) return;
      failed = e;
      clearInterval(poll);
      o.hashing.stop();
      if (tar.exitCode === null && tar.signalCode === null) {
        tar.kill("SIGKILL");
        tar.once("close", () => reject(e));
      } else reject(e);
    };
    ctl.abort = fail;
    const stderr = collect(tar, (s) => {
      if (/No space left on device/.test(s)) fail(diskFull(o.dest));
    });
    tar.on("error", (e: NodeJS.ErrnoException) => fail(spawnError(e)));
    tar.on("close", (code, sig) => {
      tarDone = true;
      if (code !== 0) fail(childFailed("tar", code, sig, stderr()));
      else settle();
    });
    o.hashing.result.then((h) => {
      hashed = h;
      settle();
    }, fail);
  });
}
