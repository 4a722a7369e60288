// stage-image: unpack an archive into staging/NAME.PID.RANDOM, check it,
// then rename it into images/NAME in one step. Until that rename nothing
// is visible; on any failure, or Ctrl-C, the staging directory goes.
import {
  chmodSync,
  closeSync,
  createReadStream,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  type Stats,
} from "node:fs";
import { basename, join } from "node:path";
import type { Readable } from "node:stream";
import { detect, imageNameFromPath, MAGIC_BYTES, parseSize } from "../archive/archive.ts";
import { findLayout, prettyName } from "../archive/layout.ts";
import { extractFile, hashInBackground, onlyRootWrites, prescan } from "../archive/prescan.ts";
import { Progress } from "../archive/progress.ts";
import { bomb, diskFull, INTERRUPTED, pump, tarArgv, violation } from "../archive/pump.ts";
import { type TarScanner, TarViolation } from "../archive/tarscan.ts";
import { BoxError, printable, UsageError } from "../base/errors.ts";
import { checkName } from "../base/names.ts";
import { paths } from "../base/paths.ts";
import { fsyncDir, makeDir, removeTree, writeJsonAtomic } from "../host/files.ts";
import { journal } from "../host/journal.ts";
import { type Runner, showCommand } from "../host/runner.ts";
import {
  IMAGE_VERSION,
  type ImageMeta,
  imageExists,
  stagingEntry,
  sweepStaging,
} from "../store/images.ts";

/** The default bound on the unpacked tar stream of one image. */
export const DEFAULT_MAX_SIZE = "64G";

export interface StageRequest {
  path: string;
  name?: string;
  sha256?: string;
  maxSize?: string;
  force?: boolean;
  quiet?: boolean;
}

export function alreadyStaged(name: string): BoxError {
  return new BoxError(
    `image '${name}' is already staged`,
    `delete it first (boxctl delete-image ${name}), or stage this archive under another name with --name NAME`,
  );
}

function maxBytesOf(req: StageRequest): number {
  const text = req.maxSize ?? process.env.BOXCTL_MAX_IMAGE_SIZE ?? DEFAULT_MAX_SIZE;
  const n = parseSize(text);
  if (n === null || n <= 0)
    throw new UsageError(
      `invalid size '${printable(text)}' for --max-size (or BOXCTL_MAX_IMAGE_SIZE)`,
      "give a size such as 64G, 500M or 1048576",
    );
  return n;
}

/** What a stage achieved: the image, and how long it took; null after a dry run. */
export interface Staged {
  meta: ImageMeta;
  seconds: number;
}

export async function stageImage(r: Runner, req: StageRequest): Promise<Staged | null> {
  const fromStdin = req.path === "-";
  const label = fromStdin ? "standard input" : req.path;
  if (fromStdin && !req.name)
    throw new UsageError(
      "an archive read from standard input needs --name NAME",
      "for example: boxctl stage-image - --name foo-0.1 < foo-0.1.tar",
    );
  const name = checkName("image", req.name ?? imageNameFromPath(req.path));
  const want = req.sha256?.toLowerCase();
  if (want !== undefined && !/^[0-9a-f]{64}$/.test(want))
    throw new UsageError(
      `--sha256 wants 64 hex digits, not '${printable(req.sha256 ?? "")}'`,
      "use the output of: sha256sum FILE",
    );
  const maxBytes = maxBytesOf(req);
  sweepStaging();
  if (imageExists(name)) throw alreadyStaged(name);

  let total: number | undefined;
  let fd: number | undefined;
  let st: Stats | undefined;
  if (!fromStdin) {
    try {
      fd = openSync(req.path, "r");
      st = fstatSync(fd);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new BoxError(
        `cannot read ${label}: ${code === "ENOENT" ? "no such file" : (e as Error).message}`,
        "check the path",
      );
    }
    if (st.isDirectory()) {
      closeSync(fd);
      throw new BoxError(
        `${label} is a directory`,
        "give stage-image an archive of it (tar -C DIR -cf FILE.tar .)",
      );
    }
    total = st.isFile() ? st.size : undefined;
    if (total === 0) {
      closeSync(fd);
      throw new BoxError(`${label} is empty`, "give stage-image a root file system archive");
    }
  }
  try {
    return await stageFrom(r, req, { name, label, want, maxBytes, fd, st, total });
  } finally {
    // A destroyed read stream may have closed it already.
    if (fd !== undefined) closeQuietly(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // EBADF: already closed
  }
}

interface Source {
  name: string;
  label: string;
  want: string | undefined;
  maxBytes: number;
  fd: number | undefined;
  st: Stats | undefined;
  total: number | undefined;
}

/** Unpacks with the fast path when it is safe (prescan.ts), else by streaming (pump.ts). */
async function unpack(
  r: Runner,
  s: Source,
  dest: string,
  meter: { bytes: number },
  ctl: { abort?: (e: Error) => void },
): Promise<{ sha256: string; dataBytes: number }> {
  const { fd, st, label } = s;
  if (fd !== undefined && st) {
    const head = Buffer.alloc(MAGIC_BYTES);
    const n = readSync(fd, head, 0, MAGIC_BYTES, 0);
    if (detect(head.subarray(0, n)) === "tar" && onlyRootWrites(`/proc/self/fd/${fd}`, st)) {
      if (st.size > s.maxBytes) throw bomb(label, s.maxBytes);
      const hashing = hashInBackground(fd, label);
      let scanner: TarScanner;
      try {
        scanner = prescan(fd, st.size);
      } catch (e) {
        hashing.stop();
        throw e instanceof TarViolation ? violation(label, e) : e;
      }
      const x = await extractFile(r, { fd, size: st.size, label, dest, meter, hashing }, ctl);
      return { sha256: x.sha256, dataBytes: scanner.dataBytes };
    }
  }
  const input: Readable =
    fd === undefined
      ? process.stdin
      : createReadStream("", { fd, start: 0, autoClose: false, highWaterMark: 1 << 20 });
  const res = await pump(r, { input, label, dest, maxBytes: s.maxBytes, meter }, ctl);
  return { sha256: res.sha256, dataBytes: res.scanner.dataBytes };
}

async function stageFrom(r: Runner, req: StageRequest, s: Source): Promise<Staged | null> {
  const { name, label, want, total } = s;
  const fromStdin = req.path === "-";
  // Staging streams the archive through tar, which a dry run cannot do;
  // it says what it would do instead.
  if (r.dryRun) {
    const dir = join(paths.staging(), `${stagingEntry(name)}XXXXXX`);
    process.stdout.write(
      `# unpack ${showCommand([label])} into ${dir}/tree, checking each header\n`,
    );
    process.stdout.write(`${showCommand(tarArgv(join(dir, "tree")))}\n`);
    process.stdout.write(`# rename ${dir} ${paths.image(name)}\n`);
    return null;
  }

  mkdirSync(paths.staging(), { recursive: true, mode: 0o700 });
  const stageDir = mkdtempSync(join(paths.staging(), stagingEntry(name)));
  const tree = join(stageDir, "tree");
  const progress = new Progress(name, total, !req.quiet && Boolean(process.stderr.isTTY));
  const ctl: { abort?: (e: Error) => void } = {};
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    ctl.abort?.(INTERRUPTED());
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Should the stream ever stall with nothing left to wait for, node would
  // exit 0 with a half-written tree; make that a loud failure instead.
  const onStall = () => {
    // Synchronous: node is about to exit, nothing async runs any more.
    rmSync(stageDir, { recursive: true, force: true });
    process.stderr.write("boxctl: internal error: staging stalled; nothing was staged\n");
    process.exitCode = 1;
  };
  process.once("beforeExit", onStall);
  const started = Date.now();
  try {
    mkdirSync(tree, { mode: 0o755 });
    progress.start();
    const res = await unpack(r, s, tree, progress.meter, ctl);
    progress.stop();
    if (want && res.sha256 !== want)
      throw new BoxError(
        `sha256 mismatch for ${label}: it is ${res.sha256}, not ${want}; nothing was staged`,
        "the file is not the one you meant, or it is damaged: fetch it again",
      );
    const rootfs = join(stageDir, "rootfs");
    const layout = findLayout(tree);
    if (layout.kind === "inner") {
      renameSync(join(tree, layout.dir), rootfs);
      rmdirSync(tree);
    } else if (layout.kind === "root" || req.force) {
      renameSync(tree, rootfs);
    } else {
      throw new BoxError(
        `${label} holds no OS: there is no etc/os-release or usr/lib/os-release at its top, nor inside a single top-level directory`,
        "if it really is a root file system, stage it anyway with --force",
      );
    }
    const meta: ImageMeta = {
      version: IMAGE_VERSION,
      name,
      os: prettyName(rootfs),
      size: res.dataBytes,
      staged: new Date().toISOString(),
      sha256: res.sha256,
      source: fromStdin ? "-" : basename(req.path),
    };
    writeJsonAtomic(r, join(stageDir, "image.json"), meta);
    // Only root may look inside an image: its tree has world-writable
    // directories (tmp/) that instances share.
    chmodSync(stageDir, 0o700);
    // tar does not fsync; without this a power cut after the rename could
    // leave a visible image with missing data.
    await r.run(["sync", "-f", stageDir]);
    if (interrupted) throw INTERRUPTED();
    // makeDir fsyncs a new images/ into the store, before the rename relies on it.
    makeDir(r, paths.images(), 0o755);
    try {
      renameSync(stageDir, paths.image(name));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOTEMPTY" || code === "EEXIST") throw alreadyStaged(name);
      throw e;
    }
    fsyncDir(paths.images());
    await journal(r, {
      operation: "stage-image",
      image: name,
      result: "ok",
      message: `staged image ${name} from ${meta.source} (${meta.size} bytes, sha256 ${meta.sha256})`,
      extra: { SHA256: meta.sha256 },
    });
    return { meta, seconds: (Date.now() - started) / 1000 };
  } catch (e) {
    progress.stop();
    await removeTree(r, stageDir);
    if ((e as NodeJS.ErrnoException).code === "ENOSPC") throw diskFull(paths.staging());
    throw e;
  } finally {
    process.off("beforeExit", onStall);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
