// The streaming half of stage-image. Node reads the file once, hashes and
// counts it, and passes it (through the decompressor, if any) to GNU tar,
// checking every tar header on the way (tarscan.ts). Node only ever holds
// one chunk: big chunks, and no per-byte work outside the headers.
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import type { Readable, Writable } from "node:stream";
import { BoxError, EXIT } from "../base/errors.ts";
import { type Runner, spawnError } from "../host/runner.ts";
import { decompressor, detect, type Format, MAGIC_BYTES } from "./archive.ts";
import { TarViolation } from "./tarfields.ts";
import { TarScanner } from "./tarscan.ts";

export interface PumpOptions {
  input: Readable;
  /** How the file is named in messages. */
  label: string;
  /** Where tar unpacks. */
  dest: string;
  /** Refuse once the tar stream grows past this many bytes. */
  maxBytes: number;
  /** Counts input bytes for the progress line. */
  meter: { bytes: number };
}

export interface PumpResult {
  format: Format;
  sha256: string;
  bytesIn: number;
  scanner: TarScanner;
}

export function tarArgv(dest: string, archive = "-"): string[] {
  return [
    "tar",
    "-x",
    "-f",
    archive,
    "--numeric-owner",
    "--xattrs",
    "--xattrs-include=*",
    "--acls",
    "--selinux",
    "-p",
    "-C",
    dest,
  ];
}

const STDERR_CAP = 64 * 1024;

export function collect(child: ChildProcess, onText?: (s: string) => void): () => string {
  let text = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    if (text.length < STDERR_CAP) text += d;
    onText?.(d);
  });
  return () => text.trim().split("\n").slice(-4).join("\n  ");
}

/** Streams the archive into tar; resolves when everything has exited cleanly. */
export function pump(
  r: Runner,
  o: PumpOptions,
  signal: { abort?: (e: Error) => void },
): Promise<PumpResult> {
  const hash = createHash("sha256");
  const scanner = new TarScanner({ digests: true });
  const children: ChildProcess[] = [];
  let format: Format | null = null;
  let bytesIn = 0;
  let tarBytes = 0;
  let tar: ChildProcess | null = null;
  let dec: ChildProcess | null = null;
  let head: Buffer | null = Buffer.alloc(0);
  let failed: Error | null = null;

  return new Promise<PumpResult>((resolve, reject) => {
    let open = 0;
    let inputDone = false;
    const done = () => {
      if (failed || !inputDone || open > 0 || !format) return;
      resolve({ format, sha256: hash.digest("hex"), bytesIn, scanner });
    };
    const fail = (e: Error) => {
      if (failed) return;
      failed = e;
      o.input.removeAllListeners("data");
      o.input.pause(); // not destroy(): that would close a descriptor the caller owns
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      // Settle only once every child is gone: the caller deletes their output next.
      const wait = children.map(
        (c) =>
          new Promise<void>((r) =>
            c.exitCode !== null || c.signalCode !== null ? r() : c.once("close", () => r()),
          ),
      );
      Promise.all(wait).then(() => reject(e));
    };
    signal.abort = fail;

    const spawnChild = (argv: string[], what: string): ChildProcess => {
      const c = r.spawn(argv);
      children.push(c);
      open++;
      c.stdin?.on("error", () => undefined); // EPIPE: the exit status tells the story
      c.on("error", (e: NodeJS.ErrnoException) => fail(spawnError(e)));
      c.on("close", (code, sig) => {
        open--;
        if (code !== 0 && !failed) fail(childFailed(what, code, sig, stderrOf.get(c)?.() ?? ""));
        else done();
      });
      return c;
    };
    const stderrOf = new Map<ChildProcess, () => string>();

    // Everything tar sees passes through here, after its headers are checked.
    const toTar = (chunk: Buffer, src: Readable) => {
      tarBytes += chunk.length;
      if (tarBytes > o.maxBytes) {
        fail(bomb(o.label, o.maxBytes));
        return;
      }
      if (scanner.ended || !tar?.stdin) return;
      try {
        scanner.push(chunk);
      } catch (e) {
        fail(e instanceof TarViolation ? violation(o.label, e) : (e as Error));
        return;
      }
      send(src, tar.stdin, chunk);
      if (scanner.ended) tar.stdin.end();
    };
    const endTar = () => {
      if (failed) return;
      try {
        scanner.finish();
      } catch (e) {
        fail(e instanceof TarViolation ? violation(o.label, e) : (e as Error));
        return;
      }
      tar?.stdin?.end();
    };

    const start = (first: Buffer): boolean => {
      format = detect(first);
      if (!format) {
        fail(
          new BoxError(
            `${o.label} is not a tar archive (nor a gzip, xz, zstd or bzip2 compressed one)`,
            "give stage-image a .tar, .tar.gz, .tar.xz, .tar.zst or .tar.bz2 of a root file system",
          ),
        );
        return false;
      }
      tar = spawnChild(tarArgv(o.dest), "tar");
      stderrOf.set(
        tar,
        collect(tar, (s) => {
          if (/No space left on device/.test(s)) fail(diskFull(o.dest));
        }),
      );
      const argv = decompressor(format);
      if (argv) {
        dec = spawnChild(argv, argv[0] as string);
        stderrOf.set(dec, collect(dec));
        const out = dec.stdout as Readable;
        out.on("data", (c: Buffer) => toTar(c, out));
        out.on("end", endTar);
      }
      return true;
    };

    const feed = (chunk: Buffer) => {
      hash.update(chunk);
      bytesIn += chunk.length;
      o.meter.bytes = bytesIn;
      if (dec?.stdin) {
        send(o.input, dec.stdin, chunk);
      } else toTar(chunk, o.input);
    };

    o.input.on("data", (chunk: Buffer) => {
      if (failed) return;
      if (head) {
        // Only the first few hundred bytes are needed to know the format.
        head = Buffer.concat([head, chunk]);
        if (head.length < MAGIC_BYTES) return;
        const first = head;
        head = null;
        if (start(first)) feed(first);
        return;
      }
      feed(chunk);
    });
    o.input.on("error", (e: NodeJS.ErrnoException) =>
      fail(
        e instanceof BoxError
          ? e
          : new BoxError(
              `cannot read ${o.label}: ${e.message}`,
              "check the path and its permissions",
            ),
      ),
    );
    o.input.on("end", () => {
      if (failed) return;
      if (head) {
        const first = head;
        head = null;
        if (first.length === 0) {
          fail(new BoxError(`${o.label} is empty`, "give stage-image a root file system archive"));
          return;
        }
        if (!start(first)) return;
        feed(first);
      }
      inputDone = true;
      if (dec?.stdin) dec.stdin.end();
      else endTar();
      done();
    });
  });
}

// How much node queues for a child before it stops reading its input. A
// child's stdin is a socket that holds ~200 KiB; with node's default of
// 16 KiB every 64 KiB chunk paused the input until the child had read it
// all, one round trip of both processes per chunk. A few MiB queued keep
// node reading while the child writes, at a bounded cost in memory.
const QUEUE = 4 << 20;

/** Writes chunk to dst; pauses src while dst holds more than QUEUE bytes. */
function send(src: Readable, dst: Writable, chunk: Buffer): void {
  dst.write(chunk);
  if (dst.writableLength > QUEUE) backpressure(src, dst);
}

/** Pauses src until dst drains, or is closed (tar may stop reading at the end marker). */
function backpressure(src: Readable, dst: Writable): void {
  src.pause();
  const go = () => {
    dst.off("drain", go);
    dst.off("close", go);
    src.resume();
  };
  dst.on("drain", go);
  dst.on("close", go);
}

export function violation(label: string, e: TarViolation): BoxError {
  return new BoxError(
    `${label}: ${e.message}`,
    "the archive is unsafe or damaged; nothing was staged. Rebuild it from the source tree",
  );
}

export function bomb(label: string, max: number): BoxError {
  return new BoxError(
    `${label} unpacks to more than ${max} bytes, the bound for one image (a compression bomb?)`,
    "if the image really is that big, raise the bound with --max-size SIZE or BOXCTL_MAX_IMAGE_SIZE",
  );
}

export function diskFull(dest: string): BoxError {
  return new BoxError(
    `no space left on the file system of ${dest} while unpacking; nothing was staged`,
    "free space in the image store (boxctl delete-image NAME, or grow the file system) and retry",
  );
}

export function childFailed(
  what: string,
  code: number | null,
  sig: string | null,
  err: string,
): BoxError {
  // Ctrl-C reaches the whole foreground process group: tar may die of it
  // before boxctl's own handler runs.
  if (sig === "SIGINT" || sig === "SIGTERM") return INTERRUPTED();
  const how = code === null ? `was killed by ${sig}` : `exited ${code}`;
  const detail = err ? `:\n  ${err}` : "";
  if (/No space left on device/.test(err)) return diskFull("the store");
  if (what === "tar")
    return new BoxError(
      `the archive is truncated or corrupt: tar ${how}${detail}`,
      "check the file (its download, or tar -tf FILE); nothing was staged",
    );
  return new BoxError(
    `the ${what} data is truncated or corrupt: ${what} ${how}${detail}`,
    `check the file (${what} -t FILE); nothing was staged`,
  );
}

export const INTERRUPTED = () =>
  new BoxError("interrupted; nothing was staged", undefined, EXIT.interrupted);
