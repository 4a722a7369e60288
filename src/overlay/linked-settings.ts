// A NAME.nspawn that is a symbolic link to a file kept elsewhere (a
// configuration repository, say). boxctl writes only under /etc/systemd, so
// it neither writes through the link nor replaces it with a file of its own
// (edits to the linked file would then silently stop applying): a change it
// needs there is refused, with the lines to put in the linked file. A link
// whose file already says what boxctl would write is used as it is.
import { existsSync, lstatSync, readlinkSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { readTextOrNull } from "../host/files.ts";
import type { Instance } from "../store/machine.ts";
import { nspawnSettingsText, nspawnSettingsWithout } from "./units.ts";

/** The file path links to, when it is a symbolic link; null otherwise. */
function linkTarget(path: string): string | null {
  try {
    return lstatSync(path).isSymbolicLink() ? resolve(dirname(path), readlinkSync(path)) : null;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/**
 * Refuses to change the file at path when it is a symbolic link: to text,
 * or with boxctl's settings taken out (delete-machine; text null: the file goes).
 */
export function refuseLinkedFile(path: string, text: string | null, removing = false): void {
  const target = linkTarget(path);
  if (target === null) return;
  const lines = text !== null && path.endsWith(".nspawn") ? boxctlSettings(text) : "boxctl's lines";
  const there = existsSync(target);
  const fix = removing
    ? `take boxctl's PrivateUsers= and PrivateUsersOwnership= lines out of ${target}${text === null || !there ? `, or remove the link (rm ${path})` : ""}`
    : there
      ? `put ${lines} into ${target} yourself, or replace the link with a copy of the file (cp --remove-destination ${target} ${path})`
      : `restore ${target} with ${lines} in it, or remove the link (rm ${path}) for boxctl to write the file there`;
  throw new BoxError(
    `${path} is a symbolic link to ${target}${there ? "" : ", which does not exist"}; boxctl changes files only under ${dirname(dirname(path))}, and will not replace the link`,
    `${fix}; then run the command again`,
  );
}

/** boxctl's two settings in a NAME.nspawn text, for a hint: "PrivateUsers=X ([Exec]) and …". */
function boxctlSettings(text: string): string {
  const value = (key: string) => new RegExp(`^${key}=.*$`, "m").exec(text)?.[0] ?? key;
  return `${value("PrivateUsers")} (in [Exec]) and ${value("PrivateUsersOwnership")} (in [Files])`;
}

/**
 * Refuses, before anything changes, a switch to inst (null: delete-machine)
 * that would change NAME.nspawn when that is a symbolic link.
 */
export function refuseLinkedSettings(name: string, inst: Instance | null): void {
  const path = paths.nspawnFile(name);
  const have = readTextOrNull(path);
  const want = inst ? nspawnSettingsText(have, inst.uidBase ?? null) : settingsLeft(have);
  if (have !== want) refuseLinkedFile(path, want, inst === null);
}

/** NAME.nspawn once boxctl's settings are out of it (null: the file goes). */
export const settingsLeft = (have: string | null) =>
  have === null ? null : nspawnSettingsWithout(have);
