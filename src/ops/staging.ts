// The second half of stage-image: unpack an archive (a file, standard
// input or a download) into staging/NAME.PID.RANDOM, check it, then rename
// it into images/NAME in one step. Until that rename nothing is visible; on
// any failure, or Ctrl-C, the staging directory goes.
import {
  chmodSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  type Stats,
} from "node:fs";
import { basename, join } from "node:path";
import type { Readable } from "node:stream";
import { detect, MAGIC_BYTES } from "../archive/archive.ts";
import { isUrl } from "../archive/download.ts";
import { findLayout, prettyName, unbootable } from "../archive/layout.ts";
import { extractChecked, onlyRootWrites } from "../archive/prescan.ts";
import { Progress } from "../archive/progress.ts";
import { bomb, diskFull, INTERRUPTED, pump, tarArgv } from "../archive/pump.ts";
import type { MemberDigest } from "../archive/tarscan.ts";
import { BoxError } from "../base/errors.ts";
import { humanBytes } from "../base/format.ts";
import { paths } from "../base/paths.ts";
import { fsyncDir, makeDir, removeTree, writeBehind, writeJsonAtomic } from "../host/files.ts";
import { journal } from "../host/journal.ts";
import { type Runner, showCommand } from "../host/runner.ts";
import { IMAGE_VERSION, type ImageMeta, stagingEntry } from "../store/images.ts";
import { machineIdFacts, sharedMachineIds } from "../store/machine-id.ts";
import { shareIdentical } from "../store/share.ts";

export interface StageRequest {
  path: string;
  name?: string;
  sha256?: string;
  maxSize?: string;
  force?: boolean;
  quiet?: boolean;
  /** How long a download may stay silent. */
  timeoutMs?: number;
}

/** What a stage achieved: the image, and how long it took; null after a dry run. */
export interface Staged {
  meta: ImageMeta;
  seconds: number;
  /** It was staged already, with the --sha256 given: nothing was done. */
  already?: boolean;
  /** Its files now stored once with other images (store/share.ts). */
  shared?: { files: number; linked: number; bytes: number };
}

export function alreadyStaged(name: string): BoxError {
  return new BoxError(
    `image '${name}' is already staged`,
    `delete it first (boxctl delete-image ${name}), or stage this archive under another name with --name NAME`,
  );
}

export interface Source {
  name: string;
  label: string;
  want: string | undefined;
  maxBytes: number;
  fd: number | undefined;
  st: Stats | undefined;
  total: number | undefined;
  /** A download's body (stage-image URL). */
  input?: Readable;
}

interface Unpacked {
  sha256: string;
  dataBytes: number;
  /** Each regular file's sha256 as it streamed past, by archive path (tarscan.ts). */
  digests: ReadonlyMap<string, MemberDigest> | null;
}

/** Unpacks with the fast path when it is safe (prescan.ts), else by streaming (pump.ts). */
async function unpack(
  r: Runner,
  s: Source,
  dest: string,
  meter: { bytes: number },
  ctl: { abort?: (e: Error) => void },
): Promise<Unpacked> {
  const { fd, st, label } = s;
  if (fd !== undefined && st) {
    const head = Buffer.alloc(MAGIC_BYTES);
    const n = readSync(fd, head, 0, MAGIC_BYTES, 0);
    if (detect(head.subarray(0, n)) === "tar" && onlyRootWrites(`/proc/self/fd/${fd}`, st)) {
      if (st.size > s.maxBytes) throw bomb(label, s.maxBytes);
      const x = await extractChecked(r, { fd, size: st.size, label, dest, meter }, ctl);
      return { sha256: x.sha256, dataBytes: x.dataBytes, digests: x.digests };
    }
  }
  const input: Readable =
    s.input ??
    (fd === undefined
      ? process.stdin
      : createReadStream("", { fd, start: 0, autoClose: false, highWaterMark: 1 << 20 }));
  const res = await pump(r, { input, label, dest, maxBytes: s.maxBytes, meter }, ctl);
  const digests = res.scanner.memberDigests();
  return { sha256: res.sha256, dataBytes: res.scanner.dataBytes, digests };
}

export async function stageFrom(r: Runner, req: StageRequest, s: Source): Promise<Staged | null> {
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
    process.stdout.write(
      `# link files identical to other images' to them, and index ${dir}/rootfs\n`,
    );
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
    const behind = writeBehind(r, tree);
    const res = await unpack(r, s, tree, progress.meter, ctl).finally(behind);
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
    } else if (layout.containerImage) {
      throw new BoxError(
        `${label} is ${layout.containerImage}: a container engine's image in layers, not a root file system; nothing was staged`,
        "export a container's files as one tar and stage that: docker export $(docker create IMAGE) > FILE (podman the same way)",
      );
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
      source: fromStdin ? "-" : isUrl(req.path) ? label : basename(req.path),
    };
    const no = unbootable(rootfs);
    if (no && meta.os !== null)
      process.stderr.write(
        `boxctl: warning: ${name} cannot boot as a boxctl container, so cutover-instance will refuse it: ${no.why}\n  hint: ${no.fix}\n`,
      );
    const ids = sharedMachineIds(machineIdFacts(rootfs));
    if (ids.length) {
      meta.sharedMachineIds = ids;
      process.stderr.write(
        `boxctl: note: ${name} carries a machine ID (${ids.join(", ")}); every machine made from it would share it, so boxctl gives each new instance its own\n`,
      );
    }
    // Still private: files identical to another image's become links to
    // them, and the image's index is written (store/share.ts).
    const digests = underDir(res.digests, layout.kind === "inner" ? layout.dir : "");
    const shared = await shareIdentical(r, {
      stageDir,
      rootfs,
      name,
      digests,
      stop: () => interrupted,
    });
    if (interrupted) throw INTERRUPTED();
    if (shared.skipped)
      process.stderr.write(
        `boxctl: note: ${name} shares no file with other images: ${shared.skipped}\n`,
      );
    else if (shared.linked)
      r.note(
        `${name}: ${shared.linked} of ${shared.files} files (${humanBytes(shared.bytes)}) are stored once with other images`,
      );
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
    const { files, linked, bytes } = shared;
    return { meta, seconds: (Date.now() - started) / 1000, shared: { files, linked, bytes } };
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

/** The digests of the files under dir (all, for ""), by their paths inside it. */
function underDir(
  all: ReadonlyMap<string, MemberDigest> | null,
  dir: string,
): ReadonlyMap<string, MemberDigest> | undefined {
  if (!all) return undefined;
  if (dir === "") return all;
  const out = new Map<string, MemberDigest>();
  for (const [k, d] of all) if (k.startsWith(`${dir}/`)) out.set(k.slice(dir.length + 1), d);
  return out;
}
