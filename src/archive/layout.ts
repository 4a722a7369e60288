// Where the OS tree is inside what tar unpacked, and what OS it is. The
// tree is untrusted: its symlinks are resolved inside it, never on the host.
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { BASE_MAX, BASE_MIN, UID_RANGE } from "../base/uids.ts";

const OS_RELEASE = ["etc/os-release", "usr/lib/os-release"];

/**
 * Resolves rel inside root as if root were "/", following at most 40
 * symlinks; null if it does not exist or is not a regular file.
 */
export function resolveInRoot(root: string, rel: string): string | null {
  const todo = rel.split("/").filter((p) => p && p !== ".");
  const done: string[] = [];
  let hops = 0;
  while (todo.length) {
    const part = todo.shift() as string;
    if (part === "..") {
      done.pop();
      continue;
    }
    const at = join(root, ...done, part);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(at);
    } catch {
      return null;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) return null;
      const target = readlinkSync(at);
      if (target.startsWith("/")) done.length = 0;
      todo.unshift(...target.split("/").filter((p) => p && p !== "."));
      continue;
    }
    if (todo.length && !st.isDirectory()) return null;
    if (!todo.length && !st.isFile()) return null;
    done.push(part);
  }
  return join(root, ...done);
}

export function osReleaseOf(root: string): string | null {
  for (const rel of OS_RELEASE) {
    if (resolveInRoot(root, rel)) return rel;
  }
  return null;
}

/** Where `systemd-nspawn --boot` looks for an init first; /sbin/init comes after these. */
const SYSTEMD = ["usr/lib/systemd/systemd", "lib/systemd/systemd"];

/**
 * Why a boxctl container could not boot from the tree at root, with what
 * to do about it; null if it could. nspawn boots no tree without an
 * os-release; a tree owned by a shifted uid range boots, degraded, with
 * every file owned by no user of the container; and boxctl learns that a
 * boot has finished (and runs --check) through the container's own
 * systemd: with another init, a cutover would stop the container and fall
 * back only after --timeout.
 */
export function unbootable(root: string): { why: string; fix: string } | null {
  if (!osReleaseOf(root))
    return {
      why: "it has no etc/os-release or usr/lib/os-release, and systemd-nspawn boots no tree without one",
      fix: "stage an archive of a whole OS tree",
    };
  // nspawn's -U chowns a tree on disk to its range, root directory included.
  const owner = lstatSync(root).uid;
  // A boxctl machine's root as the host sees it (machinectl export-tar of a private-users machine).
  if (owner >= BASE_MIN && owner < BASE_MAX + UID_RANGE)
    return {
      why: `its root directory is owned by uid ${owner}, not 0: a boxctl machine's files as the host sees them (machinectl export-tar of a machine with private users), whose files no user in a container would own`,
      fix: "archive the machine from inside instead: boxctl shell NAME -- tar --numeric-owner --xattrs --xattrs-include='*' --acls --one-file-system -cpf - -C / . > FILE (README, An image from a machine)",
    };
  if (owner >= 65536)
    return {
      why: `its root directory is owned by uid ${owner}, not 0: a tree that systemd-nspawn -U shifted on disk, whose files no user in the container would own`,
      fix: "shift the tree back before you archive it: systemd-nspawn -D DIR --private-users=0:65536 --private-users-ownership=chown true (README, An existing container)",
    };
  const init = SYSTEMD.some((rel) => {
    const p = resolveInRoot(root, rel);
    return p !== null && (statSync(p).mode & 0o111) !== 0;
  });
  if (init) return null;
  return {
    why: "it has no systemd (no executable /usr/lib/systemd/systemd), and boxctl follows a container's boot, and runs --check, through the container's systemd",
    fix: "install systemd in the image (on Debian: the systemd-sysv package) and stage it again",
  };
}

/** PRETTY_NAME (or NAME) from the tree's os-release, null if it has none. */
export function prettyName(root: string): string | null {
  for (const rel of OS_RELEASE) {
    const p = resolveInRoot(root, rel);
    if (!p) continue;
    const text = readFileSync(p, "utf8").slice(0, 64 * 1024);
    const fields: Record<string, string> = {};
    for (const line of text.split("\n")) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m?.[1]) fields[m[1]] = unquote(m[2] ?? "");
    }
    return fields.PRETTY_NAME ?? fields.NAME ?? "Linux";
  }
  return null;
}

function unquote(s: string): string {
  const m = /^(["'])(.*)\1$/.exec(s);
  return (m ? (m[2] ?? "") : s).replace(/\\(.)/g, "$1");
}

export type Layout =
  | { kind: "root" }
  | { kind: "inner"; dir: string }
  | { kind: "none"; containerImage?: string };

/**
 * An archive whose root is the OS tree is used as it is; one whose only
 * top-level entry is a directory holding the OS tree is used from inside.
 */
export function findLayout(tree: string): Layout {
  if (osReleaseOf(tree)) return { kind: "root" };
  const top = readdirSync(tree);
  if (top.length === 1) {
    const dir = top[0] as string;
    if (lstatSync(join(tree, dir)).isDirectory() && osReleaseOf(join(tree, dir)))
      return { kind: "inner", dir };
  }
  const containerImage = containerImageFormat(top);
  return containerImage ? { kind: "none", containerImage } : { kind: "none" };
}

/**
 * An image for docker or podman rather than a root file system: what
 * `docker save` / `podman save` write (manifest.json beside the layers), or
 * an OCI image layout (oci-layout, index.json, blobs/). Its files are in
 * layers that only a container engine can put together.
 */
function containerImageFormat(top: string[]): string | null {
  if (top.includes("oci-layout") && top.includes("index.json")) return "an OCI image layout";
  if (top.includes("manifest.json") && !top.includes("etc") && !top.includes("usr"))
    return "a docker save or podman save archive";
  return null;
}
