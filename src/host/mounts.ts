// The mount table, parsed from /proc/self/mountinfo (which the runner
// reads) rather than asked of findmnt(8): no process to spawn, which
// matters inside a cutover's downtime window.

export interface MountEntry {
  fstype: string;
  source: string;
  /** Super-block options, e.g. lowerdir=...,upperdir=...,workdir=... */
  superOptions: string;
}

/** The mount at exactly `path`, topmost first, from /proc/self/mountinfo (no process spawned). */
export function mountAt(path: string, text: string): MountEntry | null {
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

/** Every mount point in a mountinfo text, as its process sees them (relative to its root). */
export function mountPoints(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const mp = line.split(" - ")[0]?.split(" ")[4];
    if (mp) out.push(unescapeMount(mp));
  }
  return out;
}
