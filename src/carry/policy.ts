// The carry policy as a user writes it (set-carry NAME SPEC, cutover-instance
// --carry SPEC): a comma-separated list of `identity`, `etc` and absolute
// paths, or `none`. Pure: parsing, checking and printing, unit-tested.
import { posix } from "node:path";
import { UsageError } from "../base/errors.ts";
import { type CarryPolicy, DEFAULT_CARRY } from "../store/machine.ts";

/** The files that make a machine the same machine: its IDs and its SSH host keys. */
export const IDENTITY_FILES = ["etc/machine-id", "etc/hostname"];
export const IDENTITY_SSH_DIR = "etc/ssh";
export const IDENTITY_SSH_PREFIX = "ssh_host_";

/**
 * Trees systemd-nspawn mounts over the container's root at every boot
 * (API file systems, /run, /tmp): what lies under them in the instance is
 * not what the container sees, so carrying them would copy the wrong thing.
 */
const MOUNTED_BY_NSPAWN = ["/proc", "/sys", "/dev", "/run", "/tmp"];

const HINT = "SPEC is none, or a comma-separated list of identity, etc and absolute paths";

/** A named path, normalized and checked: absolute, inside the container, not / itself. */
export function checkCarryPath(p: string): string {
  if (!p.startsWith("/"))
    throw new UsageError(
      `carry path '${p}' is not absolute`,
      `write it as the container sees it, e.g. /var/lib/app`,
    );
  if (p.split("/").some((c) => c === ".." || c === "."))
    throw new UsageError(
      `carry path '${p}' has a '.' or '..' component`,
      "give the path itself, e.g. /var/lib/app",
    );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\x00-\x1f\x7f]/.test(p))
    throw new UsageError(`carry path '${JSON.stringify(p)}' has a control character`);
  const norm = posix.normalize(p).replace(/\/+$/, "");
  if (norm === "")
    throw new UsageError(
      "carry path '/' would copy the whole container",
      "name the directories to keep, e.g. /var/lib/app,/home",
    );
  for (const m of MOUNTED_BY_NSPAWN)
    if (norm === m || norm.startsWith(`${m}/`))
      throw new UsageError(
        `carry path '${p}' is under ${m}, which systemd-nspawn mounts at every boot`,
        "carry only paths that live in the container's own root",
      );
  return norm;
}

export function parseCarry(spec: string): CarryPolicy {
  const parts = spec
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (parts.length === 0) throw new UsageError("empty carry SPEC", HINT);
  if (parts.includes("none")) {
    if (parts.length > 1)
      throw new UsageError(`'none' cannot be combined with other parts in '${spec}'`, HINT);
    return { identity: false, etc: false, paths: [] };
  }
  const policy: CarryPolicy = { identity: false, etc: false, paths: [] };
  for (const part of parts) {
    if (part === "identity") policy.identity = true;
    else if (part === "etc") policy.etc = true;
    else if (part === "default") policy.identity = true;
    else if (part.startsWith("/")) {
      const p = checkCarryPath(part);
      if (!policy.paths.includes(p)) policy.paths.push(p);
    } else throw new UsageError(`unknown carry part '${part}'`, HINT);
  }
  // A path inside another would be copied twice; the outer one is enough.
  policy.paths = policy.paths.filter(
    (p) => !policy.paths.some((q) => q !== p && p.startsWith(`${q}/`)),
  );
  return policy;
}

export function policyOf(recorded: CarryPolicy | undefined): CarryPolicy {
  return recorded ?? DEFAULT_CARRY;
}

/** The policy as SPEC text, the form parseCarry reads back. */
export function formatCarry(p: CarryPolicy): string {
  const parts = [...(p.identity ? ["identity"] : []), ...(p.etc ? ["etc"] : []), ...p.paths];
  return parts.length ? parts.join(",") : "none";
}

export const carriesAnything = (p: CarryPolicy) => p.identity || p.etc || p.paths.length > 0;

/**
 * The first carried path that is, or lies under, a mount point inside the
 * container (mounts: the container's own mount table; "/" is its root):
 * boxctl carries an instance's own files, never what is mounted over them.
 */
export function mountedPath(
  p: CarryPolicy,
  mounts: readonly string[],
): { path: string; mount: string } | null {
  for (const path of p.paths)
    for (const mount of mounts)
      if (mount !== "/" && (path === mount || path.startsWith(`${mount}/`))) return { path, mount };
  return null;
}
