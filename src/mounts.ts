// The mount table, read from /proc/self/mountinfo rather than findmnt(8):
// no process to spawn, which matters inside a cutover's downtime window.
import { readFileSync } from "node:fs";

export interface MountEntry {
  fstype: string;
  source: string;
  /** Super-block options, e.g. lowerdir=...,upperdir=...,workdir=... */
  superOptions: string;
}

/** The mount at exactly `path`, topmost first, from /proc/self/mountinfo (no process spawned). */
export function mountAt(path: string, mountinfo?: string): MountEntry | null {
  const text = mountinfo ?? readFileSync("/proc/self/mountinfo", "utf8");
  let found: MountEntry | null = null;
  for (const line of text.split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const mp = unescapeMount(left.split(" ")[4] ?? "");
    if (mp !== path) continue;
    const [fstype = "", source = "", superOptions = ""] = right.split(" ");
    found = { fstype, source: unescapeMount(source), superOptions: unescapeMount(superOptions) };
  }
  return found;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** The value of one overlay option (upperdir, lowerdir) in a super-block option list. */
export function overlayOption(superOptions: string, key: string): string | null {
  for (const part of superOptions.split(",")) {
    if (part.startsWith(`${key}=`)) return part.slice(key.length + 1);
  }
  return null;
}
