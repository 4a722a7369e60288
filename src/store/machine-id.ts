// Machine IDs an image would hand every machine made from it, and what a new
// instance's upper dir gets so that each machine boots with its own.
import {
  chmodSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

/** What an image's root says about its machine ID, as stage-image would read it. */
export interface MachineIdFacts {
  /** Contents of etc/machine-id, or null when it is missing. */
  etcMachineId: string | null;
  /** var/lib/dbus/machine-id: a regular file's contents, a symlink's target, or absent. */
  dbusMachineId: { kind: "file"; content: string } | { kind: "symlink"; target: string } | null;
}

/**
 * The machine IDs an image would hand every machine made from it. An empty
 * etc/machine-id or "uninitialized" is what an image should carry: nspawn
 * then gives the container a random UUID and its systemd commits it to
 * etc/machine-id in the instance. A regular var/lib/dbus/machine-id with an
 * ID in it is read by dbus-daemon before etc/machine-id, so it is shared too
 * (the debootstrap guest has exactly this: an empty etc/machine-id, a
 * filled var/lib/dbus/machine-id).
 */
export function sharedMachineIds(f: MachineIdFacts): string[] {
  const out: string[] = [];
  const id = /^[0-9a-f]{32}$/;
  if (f.etcMachineId !== null && id.test(f.etcMachineId.trim())) out.push("/etc/machine-id");
  if (f.dbusMachineId?.kind === "file" && id.test(f.dbusMachineId.content.trim()))
    out.push("/var/lib/dbus/machine-id");
  return out;
}

/**
 * What a new instance's upper dir gets so that it boots with its own ID:
 * an empty etc/machine-id (mode 0444) over a filled one, and over a filled
 * var/lib/dbus/machine-id the symlink to /etc/machine-id that Debian's dbus
 * itself makes on new systems. Parent directories are created in the upper
 * dir with the image's mode and (shifted) owner, which overlayfs merges with
 * the image's. Owners are BASE+N (0+N for an instance without private users).
 */
export type SeedEntry =
  | { path: string; kind: "file"; mode: number; content: string }
  | { path: string; kind: "symlink"; target: string };

export function machineIdSeed(shared: string[]): SeedEntry[] {
  const out: SeedEntry[] = [];
  if (shared.includes("/etc/machine-id"))
    out.push({ path: "etc/machine-id", kind: "file", mode: 0o444, content: "" });
  if (shared.includes("/var/lib/dbus/machine-id"))
    out.push({ path: "var/lib/dbus/machine-id", kind: "symlink", target: "/etc/machine-id" });
  return out;
}

/** lstat, or null; never follows a link. */
function lstatOrNull(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/**
 * Reads the facts from an image's root without following any link: an
 * image's etc or var/lib/dbus that is a symlink says nothing, and must not
 * make boxctl read a host file.
 */
export function machineIdFacts(root: string): MachineIdFacts {
  const realDir = (rel: string) => {
    let p = root;
    for (const part of rel.split("/")) {
      p = join(p, part);
      if (!lstatOrNull(p)?.isDirectory()) return false;
    }
    return true;
  };
  const file = (rel: string) => {
    const st = lstatOrNull(join(root, rel));
    return st?.isFile() && st.size < 4096 ? readFileSync(join(root, rel), "latin1") : null;
  };
  const dbus = realDir("var/lib/dbus") ? lstatOrNull(join(root, "var/lib/dbus/machine-id")) : null;
  return {
    etcMachineId: realDir("etc") ? file("etc/machine-id") : null,
    dbusMachineId: dbus?.isSymbolicLink()
      ? { kind: "symlink", target: readlinkSync(join(root, "var/lib/dbus/machine-id")) }
      : dbus?.isFile()
        ? { kind: "file", content: file("var/lib/dbus/machine-id") ?? "" }
        : null,
  };
}

/**
 * Writes the seed into a new, empty upper dir: each entry's missing parent
 * directories with the image's mode, and every owner shifted by uidShift
 * (the machine's BASE for a private-users instance, 0 otherwise).
 */
export function writeSeed(upper: string, image: string, seed: SeedEntry[], uidShift: number) {
  for (const e of seed) {
    const parts = e.path.split("/");
    let rel = "";
    for (const part of parts.slice(0, -1)) {
      rel = rel ? `${rel}/${part}` : part;
      const st = lstatSync(join(image, rel));
      if (lstatOrNull(join(upper, rel))) continue;
      mkdirSync(join(upper, rel));
      chmodSync(join(upper, rel), st.mode & 0o7777);
      lchownSync(join(upper, rel), st.uid + uidShift, st.gid + uidShift);
    }
    const at = join(upper, e.path);
    if (e.kind === "file") writeFileSync(at, e.content, { mode: e.mode });
    else symlinkSync(e.target, at);
    lchownSync(at, uidShift, uidShift);
  }
}
