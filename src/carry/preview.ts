// What a cutover would carry, without carrying it: cutover-instance
// --dry-run prints it. The /etc decisions are made on the old instance's
// upper dir itself, read through the same link-refusing walk, against the
// two images; nothing is copied, mounted or written. Two approximations:
// opaque directories are not recognised (reading their mark would need
// getfattr on the live tree by path), and identity files and named paths
// are looked up in the old upper dir, then the old image, as overlayfs
// would, without the view the real carry mounts.
import { paths } from "../base/paths.ts";
import type { Runner } from "../host/runner.ts";
import type { CarryPolicy, Instance } from "../store/machine.ts";
import type { CarryReport } from "./carry.ts";
import { NO_SHIFT } from "./copy.ts";
import { type EtcResult, mergeDir } from "./etc.ts";
import { close, isWhiteout, listAt, lstatAt, openPath, trustedOpener } from "./fsafe.ts";
import { formatCarry, IDENTITY_FILES, IDENTITY_SSH_DIR, IDENTITY_SSH_PREFIX } from "./policy.ts";

/** NAME in directory parts of the upper dir, else of the image: present and not a whiteout. */
function present(upper: number, image: number, parts: string[], name: string): boolean {
  for (const root of [upper, image]) {
    const d = openPath(root, parts);
    if (typeof d !== "number") continue;
    const st = lstatAt(d, name);
    close(d);
    if (st) return !isWhiteout(st);
  }
  return false;
}

function sshKeys(upper: number, image: number): string[] {
  const names = new Set<string>();
  for (const root of [upper, image]) {
    const d = openPath(root, IDENTITY_SSH_DIR.split("/"));
    if (typeof d !== "number") continue;
    for (const n of listAt(d)) if (n.startsWith(IDENTITY_SSH_PREFIX)) names.add(n);
    close(d);
  }
  return [...names].filter((n) => present(upper, image, IDENTITY_SSH_DIR.split("/"), n));
}

export async function previewCarry(
  r: Runner,
  name: string,
  old: Instance,
  target: Instance,
  policy: CarryPolicy,
): Promise<CarryReport> {
  const report: CarryReport = { policy: formatCarry(policy), identity: [], etc: null, paths: [] };
  const fds: number[] = [];
  const open = trustedOpener(fds);
  try {
    const upper = open(paths.upper(name, old.gen));
    const oldImg = open(paths.imageRoot(old.image));
    const newImg = open(paths.imageRoot(target.image));
    if (policy.etc) {
      const out: EtcResult = { kept: [], conflicts: [], unchanged: 0 };
      const etc = (fd: number) => {
        const d = openPath(fd, ["etc"]);
        return typeof d === "number" ? d : null;
      };
      const [u, o, n] = [etc(upper), etc(oldImg), etc(newImg)];
      try {
        if (u !== null)
          await mergeDir(
            {
              r,
              opaque: new Set(),
              skip: () => false,
              makeOpaque: [],
              scratch: { fd: -1, path: "" },
              shift: NO_SHIFT,
              out,
              preview: true,
            },
            u,
            "etc",
            o,
            n,
          );
      } finally {
        for (const d of [u, o, n]) close(d);
      }
      report.etc = out;
    }
    if (policy.identity) {
      for (const f of IDENTITY_FILES) {
        const parts = f.split("/");
        const last = parts.pop() as string;
        if (present(upper, oldImg, parts, last)) report.identity.push(`/${f}`);
      }
      report.identity.push(...sshKeys(upper, oldImg).map((n) => `/${IDENTITY_SSH_DIR}/${n}`));
    }
    for (const p of policy.paths) {
      const parts = p.slice(1).split("/");
      const last = parts.pop() as string;
      if (present(upper, oldImg, parts, last)) report.paths.push(p);
    }
    return report;
  } finally {
    for (const fd of fds) close(fd);
  }
}

/** The preview as --dry-run's lines. */
export function previewLines(c: CarryReport): string[] {
  const line = (what: string, l: string[]) =>
    `would carry ${what}: ${l.length ? l.join(" ") : "-"}`;
  return [
    line("identity", c.identity),
    ...(c.etc
      ? [
          line("/etc changes", c.etc.kept),
          line(
            "/etc conflicts (the container's version kept, the new image's as PATH.boxctl-new)",
            c.etc.conflicts,
          ),
        ]
      : []),
    ...(c.paths.length ? [line("paths", c.paths)] : []),
  ];
}
