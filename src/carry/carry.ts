// Carrying a machine's identity, its local /etc and named paths from the
// instance a cutover leaves into the new one. Only the new instance's
// upper dir is written, before it is ever mounted; the old instance is
// only read: its upper dir directly (for /etc, what the container changed)
// and, for identity and named paths, a read-only overlay of its upper over
// its image (the container's own view), mounted at /run/boxctl/carry/NAME.
//
// The container's content is untrusted and boxctl is root: every path is
// resolved one component at a time on open directories without following
// links (fsafe.ts), and tar copies links as links (copy.ts). The new upper
// dir is boxctl's alone until the remount step mounts it.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { mountAt } from "../host/mounts.ts";
import { opaqueDirs } from "../host/opaque.ts";
import type { Runner } from "../host/runner.ts";
import { umount } from "../host/systemd.ts";
import { viewArgv } from "../overlay/views.ts";
import { viewSpec } from "../overlay/wiring.ts";
import type { CarryPolicy, Instance } from "../store/machine.ts";
import { copyEntries, type IdShift, shiftId } from "./copy.ts";
import { type EtcResult, mergeDir } from "./etc.ts";
import {
  at,
  close,
  ensureDirAt,
  listAt,
  lstatAt,
  type Opened,
  openDirAt,
  openPath,
  trustedOpener,
} from "./fsafe.ts";
import { formatCarry, IDENTITY_FILES, IDENTITY_SSH_DIR, IDENTITY_SSH_PREFIX } from "./policy.ts";

export interface CarryReport {
  policy: string;
  /** Identity files carried ("/etc/machine-id"). */
  identity: string[];
  etc: EtcResult | null;
  paths: string[];
}

/** Owner bases of the two instances (0 without private users); see IdShift. */
export interface IdBases {
  old: number;
  new: number;
}

const COUNT = 65536;
const isIdentity = (rel: string) =>
  IDENTITY_FILES.includes(rel) || rel.startsWith(`${IDENTITY_SSH_DIR}/${IDENTITY_SSH_PREFIX}`);

/** A private-users instance's image, idmapped into its range, for the carry's own view. */
const imageView = (name: string) => `${paths.carryView(name)}.image`;

/** Unmounts a view left mounted by a carry that was interrupted; recovery calls it. */
export async function releaseCarryView(r: Runner, name: string): Promise<void> {
  for (const view of [paths.carryView(name), imageView(name)])
    while (mountAt(view, r.mountinfo())) await umount(r, view, true);
}

async function mountView(r: Runner, name: string, old: Instance): Promise<string> {
  const view = paths.carryView(name);
  await releaseCarryView(r, name);
  mkdirSync(view, { recursive: true, mode: 0o700 });
  // A private-users instance's upper dir is owned BASE+N: its image must be
  // seen in the same range, or the view would mix N and BASE+N. The
  // instance's own view may be gone (the container stopped, carry-final),
  // so the carry mounts one of its own with the same script.
  let image = paths.imageRoot(old.image);
  if (old.uidBase) {
    image = imageView(name);
    await r.run(viewArgv({ ...viewSpec(name, old, old.uidBase), view: image }), { mutates: true });
  }
  // Two lower layers and no upper: read-only by construction; overlayfs
  // reads the upper dir's whiteouts and opaque marks as the container does.
  const lower = `${paths.upper(name, old.gen)}:${image}`;
  await r.run(["mount", "-t", "overlay", "overlay", "-o", `ro,lowerdir=${lower}`, view], {
    mutates: true,
  });
  return view;
}

function failOpen(
  what: string,
  res: Opened | { at: string; why: Opened },
  side = "the old instance",
): never {
  const where =
    typeof res === "object"
      ? `/${res.at} is ${res.why === "missing" ? "missing" : "a symlink or not a directory"}`
      : String(res);
  throw new BoxError(
    `cannot carry ${what}: in ${side} ${where}`,
    "boxctl never follows a link in the container's tree; carry the real directory, or change the policy: boxctl set-carry NAME SPEC",
  );
}

/**
 * The directory parts in the new upper dir, opened, with each missing one
 * made as overlayfs's copy-up would: owner and mode of the new image's
 * directory there, or of the old view's where the new image has none.
 */
function ensureUpperDirs(
  upper: number,
  newImg: number,
  view: number,
  parts: string[],
  s: { fromImage: IdShift; fromOld: IdShift },
): number {
  let dst = openPath(upper, []) as number;
  let ni: number | null = openPath(newImg, []) as number;
  let vi: number | null = openPath(view, []) as number;
  const down = (fd: number | null, part: string): number | null => {
    if (fd === null) return null;
    const d = openDirAt(fd, part);
    close(fd);
    return typeof d === "number" ? d : null;
  };
  try {
    for (const part of parts) {
      const img = ni === null ? null : lstatAt(ni, part);
      const st = img?.isDirectory() ? img : vi === null ? null : lstatAt(vi, part);
      // The image's owners are shifted to the new instance's; the view's already are the old one's.
      const shift = st === img ? s.fromImage : s.fromOld;
      const meta = st
        ? { mode: st.mode, uid: shiftId(st.uid, shift), gid: shiftId(st.gid, shift) }
        : { mode: 0o755, uid: s.fromImage.to, gid: s.fromImage.to };
      const next = ensureDirAt(dst, part, meta);
      if (typeof next !== "number")
        failOpen(`into /${parts.join("/")}`, { at: part, why: next }, "the new instance");
      close(dst);
      dst = next;
      ni = down(ni, part);
      vi = down(vi, part);
    }
    return dst;
  } finally {
    close(ni);
    close(vi);
  }
}

/** Carries what policy says from instance old into the new (not yet mounted) instance target. */
export async function carry(
  r: Runner,
  name: string,
  old: Instance,
  target: Instance,
  policy: CarryPolicy,
  bases: IdBases = { old: 0, new: 0 },
): Promise<CarryReport> {
  const report: CarryReport = { policy: formatCarry(policy), identity: [], etc: null, paths: [] };
  const fromOld: IdShift = { from: bases.old, to: bases.new, count: COUNT };
  const fromImage: IdShift = { from: 0, to: bases.new, count: COUNT };
  const upperPath = paths.upper(name, target.gen);
  const scratchPath = join(paths.instance(name, target.gen), "carry");
  rmSync(scratchPath, { recursive: true, force: true });
  mkdirSync(scratchPath, { mode: 0o700 });
  const fds: number[] = [];
  const open = trustedOpener(fds);
  try {
    const upper = open(upperPath);
    const scratch = open(scratchPath);
    const newImg = open(paths.imageRoot(target.image));
    if (policy.etc) {
      const oldUpper = open(paths.upper(name, old.gen));
      const oldImg = open(paths.imageRoot(old.image));
      const out: EtcResult = { kept: [], conflicts: [], unchanged: 0 };
      if (lstatAt(oldUpper, "etc")) {
        await copyEntries(r, oldUpper, ["etc"], upper, scratchPath, fromOld);
        const makeOpaque: string[] = [];
        const ctx = {
          r,
          // As "etc/x": the merge walks paths relative to the upper dir.
          opaque: new Set(
            [...(await opaqueDirs(r, upperPath, join(upperPath, "etc")))].map((p) => p.slice(1)),
          ),
          skip: (rel: string) => policy.identity && isIdentity(rel),
          makeOpaque,
          scratch: { fd: scratch, path: scratchPath },
          shift: fromImage,
          out,
        };
        await mergeDir(ctx, upper, "", oldImg, newImg);
        for (const rel of makeOpaque)
          await r.run(
            ["setfattr", "-h", "-n", "trusted.overlay.opaque", "-v", "y", join(upperPath, rel)],
            { mutates: true },
          );
      }
      report.etc = out;
    }
    if (!policy.identity && policy.paths.length === 0) return report;
    const view = open(await mountView(r, name, old));
    if (policy.identity) {
      // Each group is one directory and the names wanted in it (null: the SSH host keys).
      const groups: [string[], string[] | null][] = [
        [["etc"], IDENTITY_FILES.map((f) => f.slice("etc/".length))],
        [IDENTITY_SSH_DIR.split("/"), null],
      ];
      for (const [dir, wanted] of groups) {
        const src = openPath(view, dir);
        if (typeof src !== "number") continue;
        fds.push(src);
        const names = (
          wanted ?? listAt(src).filter((n) => n.startsWith(IDENTITY_SSH_PREFIX))
        ).filter((n) => {
          const st = lstatAt(src, n);
          return st !== null && !st.isDirectory();
        });
        if (names.length === 0) continue;
        const dst = ensureUpperDirs(upper, newImg, view, dir, { fromImage, fromOld });
        fds.push(dst);
        for (const n of names)
          for (const x of [n, `${n}.boxctl-new`])
            rmSync(at(dst, x), { recursive: true, force: true });
        await copyEntries(r, src, names, dst, scratchPath, fromOld);
        report.identity.push(...names.map((n) => `/${dir.join("/")}/${n}`));
      }
    }
    for (const p of policy.paths) {
      const parts = p.slice(1).split("/");
      const last = parts.pop() as string;
      const src = openPath(view, parts);
      if (typeof src !== "number") failOpen(p, src);
      fds.push(src);
      const st = lstatAt(src, last);
      if (!st)
        throw new BoxError(
          `cannot carry ${p}: it does not exist in the old instance`,
          "remove it from the policy: boxctl set-carry NAME SPEC",
        );
      const dst = ensureUpperDirs(upper, newImg, view, parts, { fromImage, fromOld });
      fds.push(dst);
      rmSync(at(dst, last), { recursive: true, force: true });
      await copyEntries(r, src, [last], dst, scratchPath, fromOld);
      // Whole: the new image's files under the path must not show through.
      const imgDir = openPath(newImg, [...parts, last]);
      if (typeof imgDir === "number") {
        close(imgDir);
        if (lstatAt(dst, last)?.isDirectory())
          await r.run(
            [
              "setfattr",
              "-h",
              "-n",
              "trusted.overlay.opaque",
              "-v",
              "y",
              join(upperPath, ...parts, last),
            ],
            { mutates: true },
          );
      }
      report.paths.push(p);
    }
    return report;
  } finally {
    for (const fd of fds) close(fd);
    if (existsSync(paths.carryView(name))) await releaseCarryView(r, name);
    rmSync(scratchPath, { recursive: true, force: true });
  }
}
