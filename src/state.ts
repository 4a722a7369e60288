// State files are versioned JSON, written atomically: temp file, fsync,
// rename, fsync of the directory. A reader sees the old file or the new
// one, never a torn one, even across a power cut.
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import * as v from "valibot";
import { BoxError } from "./errors.ts";
import { runnerConfig, showCommand } from "./runner.ts";

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeFileAtomic(path: string, text: string, mode = 0o644): void {
  if (runnerConfig.dryRun) {
    process.stdout.write(`# write ${showCommand([path])}\n`);
    return;
  }
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

export function writeJsonAtomic(path: string, data: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(data, null, 2)}\n`);
}

export function removeFileDurably(path: string): void {
  if (runnerConfig.dryRun) {
    process.stdout.write(`# remove ${showCommand([path])}\n`);
    return;
  }
  if (!existsSync(path)) return;
  unlinkSync(path);
  fsyncDir(dirname(path));
}

/**
 * Reads a state file and checks it against its schema. A file that is
 * corrupt or hand-edited into an invalid shape is an error naming the
 * file, never silently ignored. A missing file is null.
 */
export function readJson<S extends v.GenericSchema>(
  path: string,
  schema: S,
): v.InferOutput<S> | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw corrupt(path, `it is not valid JSON (${(e as Error).message})`);
  }
  const r = v.safeParse(schema, data);
  if (!r.success) {
    const issue = r.issues[0];
    const where = issue ? v.getDotPath(issue) : null;
    throw corrupt(path, `${where ? `field '${where}': ` : ""}${issue?.message ?? "invalid"}`);
  }
  return r.output;
}

function corrupt(path: string, why: string): BoxError {
  return new BoxError(
    `state file ${path} is corrupt: ${why}`,
    "restore it from a backup, or fix it by hand; boxctl will not guess what it should say",
  );
}
