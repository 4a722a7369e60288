// stage-image: what the archive is (a file, standard input, or an http(s)
// URL) and what the user asked of it, checked before anything is read;
// staging.ts then unpacks it where nothing is visible until the end.
import { closeSync, fstatSync, openSync, type Stats } from "node:fs";
import { imageNameFromPath, parseSize } from "../archive/archive.ts";
import { isUrl, openUrl, shownUrl, urlPath } from "../archive/download.ts";
import { BoxError, printable, UsageError } from "../base/errors.ts";
import { checkName } from "../base/names.ts";
import type { Runner } from "../host/runner.ts";
import { imageExists, loadImage, sweepStaging } from "../store/images.ts";
import { alreadyStaged, type Staged, type StageRequest, stageFrom } from "./staging.ts";

/** The default bound on the unpacked tar stream of one image. */
export const DEFAULT_MAX_SIZE = "64G";
export type { Staged, StageRequest };

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

export async function stageImage(r: Runner, req: StageRequest): Promise<Staged | null> {
  const fromStdin = req.path === "-";
  const fromUrl = isUrl(req.path);
  const label = fromStdin ? "standard input" : fromUrl ? shownUrl(req.path) : req.path;
  if (fromStdin && !req.name)
    throw new UsageError(
      "an archive read from standard input needs --name NAME",
      "for example: boxctl stage-image - --name foo-0.1 < foo-0.1.tar",
    );
  const name = checkName(
    "image",
    req.name ?? imageNameFromPath(fromUrl ? urlPath(req.path) : req.path),
  );
  const want = req.sha256?.toLowerCase();
  if (want !== undefined && !/^[0-9a-f]{64}$/.test(want))
    throw new UsageError(
      `--sha256 wants 64 hex digits, not '${printable(req.sha256 ?? "")}'`,
      "use the output of: sha256sum FILE",
    );
  if (fromUrl && /^http:/i.test(req.path) && want === undefined)
    throw new UsageError(
      `${label} is plain http: anyone on the way can change what arrives, so it needs --sha256 HEX`,
      "take the sha256 from where you got the URL, or use https://",
    );
  const maxBytes = maxBytesOf(req);
  sweepStaging();
  if (imageExists(name)) {
    // The same image again: nothing to do, which a script or Ansible wants to hear.
    const staged = loadImage(name);
    if (staged && want !== undefined && staged.sha256 === want)
      return { meta: staged, seconds: 0, already: true };
    throw alreadyStaged(name);
  }
  if (fromUrl) {
    const dl = r.dryRun ? undefined : await openUrl(req.path, req.timeoutMs ?? 30_000);
    return stageFrom(r, req, {
      name,
      label,
      want,
      maxBytes,
      fd: undefined,
      st: undefined,
      total: dl?.total,
      input: dl?.stream,
    });
  }

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
