// Copying entries between two open directories with GNU tar, exactly:
// owner and group by number, mode, xattrs (file capabilities, the
// kernel's trusted.overlay.* whiteout and opaque marks), POSIX ACLs, hard
// links within one copy, FIFOs and devices. Each side is a directory
// descriptor (fsafe.ts) handed to tar as its fd 3, and each name is one
// component, so that tar resolves nothing by path above it; below it GNU
// tar walks with openat(2) and O_NOFOLLOW and archives a link as a link.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BoxError } from "../base/errors.ts";
import type { Runner } from "../host/runner.ts";
import { self } from "./fsafe.ts";

/**
 * How a copy shifts ownership: an entry owned by from+N (N < count) comes
 * out owned by to+N. Both 0 for two instances without private users; a
 * private-users instance's files are owned by its machine's base range.
 */
export interface IdShift {
  from: number;
  to: number;
  count: number;
}

export const NO_SHIFT: IdShift = { from: 0, to: 0, count: 65536 };

/** One id through the shift; ids outside the range stay as they are. */
export function shiftId(id: number, s: IdShift): number {
  return id >= s.from && id < s.from + s.count ? id - s.from + s.to : id;
}

/** The shift as a tar --owner-map/--group-map file: one "+OLD +NEW" line per id. */
export function idMapText(s: IdShift): string {
  const lines: string[] = [];
  for (let i = 0; i < s.count; i++) lines.push(`+${s.from + i} +${s.to + i}`);
  return `${lines.join("\n")}\n`;
}

const EXACT = ["--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner"];

export function tarCreateArgv(
  archive: string,
  names: readonly string[],
  mapFile?: string,
): string[] {
  return [
    "tar",
    "--create",
    `--file=${archive}`,
    `--directory=${self(3)}`,
    ...EXACT,
    // The copy reads a running container: a file it writes meanwhile is
    // copied as tar read it (exit 1, a warning), and copied again if it
    // changes before the stop.
    "--warning=no-file-changed",
    ...(mapFile ? [`--owner-map=${mapFile}`, `--group-map=${mapFile}`] : []),
    "--",
    ...names,
  ];
}

export function tarExtractArgv(archive: string): string[] {
  return [
    "tar",
    "--extract",
    `--file=${archive}`,
    `--directory=${self(3)}`,
    ...EXACT,
    "--same-permissions",
    "--same-owner",
    // Not --overwrite: it opens an existing file without O_EXCL, which
    // would follow a symlink there. The caller removes what stands in the
    // way first; tar's default replaces a file by unlinking it.
  ];
}

/**
 * Copies the entries names of the directory open as src (recursively)
 * into the directory open as dst, through an archive file in scratch (a
 * directory boxctl owns on the instance's file system).
 */
export async function copyEntries(
  r: Runner,
  src: number,
  names: readonly string[],
  dst: number,
  scratch: string,
  shift: IdShift = NO_SHIFT,
): Promise<void> {
  if (names.length === 0) return;
  const archive = join(scratch, "carry.tar");
  let mapFile: string | undefined;
  if (shift.from !== shift.to) {
    mapFile = join(scratch, "idmap");
    writeFileSync(mapFile, idMapText(shift), { mode: 0o600 });
  }
  const c = await r.run(tarCreateArgv(archive, names, mapFile), {
    fds: [src],
    mutates: true,
    check: false,
  });
  // 1: a file changed while tar read it; what it read is in the archive.
  if (c.code > 1) throw tarFailed("reading", names, c.stderr);
  const x = await r.run(tarExtractArgv(archive), { fds: [dst], mutates: true, check: false });
  if (x.code !== 0) throw tarFailed("writing", names, x.stderr);
}

function tarFailed(what: string, names: readonly string[], stderr: string): BoxError {
  const tail = stderr.trim().split("\n").slice(-3).join("\n  ");
  // The runner runs tar in the C locale: its messages are English.
  const full = /No space left on device|Disk quota exceeded/.test(stderr);
  return new BoxError(
    `carrying ${names.join(", ")} failed while ${what} it: tar said:\n  ${tail}`,
    full
      ? "the store's file system is full: boxctl df shows where its space went, boxctl prune deletes old instances and unused images; then run the cutover again"
      : "a symlink swapped in while boxctl read the old instance is refused, not followed; run the cutover again",
  );
}
