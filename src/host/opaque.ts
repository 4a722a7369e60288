// The overlay's own marks in an upper dir that boxctl reads: opaque
// directories (trusted.overlay.opaque=y), which hide the image's files
// below them. getfattr(1), from the attr package, reads them; diff and the
// /etc merge of a carry both need them.
import { BoxError } from "../base/errors.ts";
import type { Runner } from "./runner.ts";

/** Undoes getfattr's octal escapes (\012 for a newline, UTF-8 bytes one by one). */
export function unescapeGetfattr(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const m = /^\\([0-7]{3})/.exec(s.slice(i, i + 4));
    if (m?.[1]) {
      bytes.push(Number.parseInt(m[1], 8));
      i += 3;
    } else if (s.slice(i, i + 2) === "\\\\") {
      bytes.push(0x5c);
      i += 1;
    } else bytes.push(...Buffer.from(s[i] as string, "utf8"));
  }
  return Buffer.from(bytes).toString("utf8");
}

/** Parses `getfattr -d` output into the paths (relative to root) of opaque dirs. */
export function parseOpaque(out: string, root: string): Set<string> {
  const set = new Set<string>();
  let file = "";
  for (const line of out.split("\n")) {
    if (line.startsWith("# file: ")) file = unescapeGetfattr(line.slice(8));
    else if (line === 'trusted.overlay.opaque="y"' && file.startsWith(root))
      set.add(file.slice(root.length).replace(/\/$/, ""));
  }
  return set;
}

/**
 * The opaque directories under dir (default: all of root), as paths
 * relative to root ("/etc/x"). A root-owned tool reading a container's
 * tree: -h keeps it from following any link the container planted.
 */
export async function opaqueDirs(r: Runner, root: string, dir = root): Promise<Set<string>> {
  const argv = [
    "getfattr",
    "-R",
    "-P",
    // Never read through a link the container planted (without -h getfattr
    // reads the attributes of the link's target, a host file for /etc/shadow).
    "-h",
    "--absolute-names",
    "-m",
    "^trusted\\.overlay\\.opaque$",
    "-d",
    dir,
  ];
  let res: Awaited<ReturnType<Runner["run"]>>;
  try {
    res = await r.run(argv, { check: false });
  } catch (e) {
    throw new BoxError(
      `boxctl needs getfattr to find opaque directories: ${(e as Error).message}`,
      "install it: apt-get install attr",
    );
  }
  if (res.code !== 0 && !res.stdout)
    throw new BoxError(`getfattr failed on ${dir}: ${res.stderr.trim()}`, "run boxctl as root");
  return parseOpaque(res.stdout, root);
}
