// Identical files stored once (issue 15): disk and time, on this machine's
// own file system (not in a test host, whose root is overlayfs, where each
// link() costs ~0.6 ms and a store would never live) and on tmpfs.
//   1. Five versions of the 160 MB foo-0.1 image, each changing about 5 %
//      of the bytes of the one before (every 20th file gets a line), staged
//      with boxctl: du of the five against du of one (target <= 1.3).
//   2. Staging the fifth version with sharing, into a store that holds the
//      other four, against `tar -xpf` of the same archive (GNU tar with the
//      fidelity flags boxctl uses), interleaved (target <= 1.10 on disk,
//      <= 1.30 on tmpfs). Each timing ends with a sync, so write-back is
//      charged to the run that caused it.
// Needs root, GNU tar, getfattr (attr) and a built dist/ (npm run build).
//   node --import tsx bench/store.bench.ts [WORKDIR on disk] [ROUNDS]
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { cachePath } from "../test/host/host.ts";
import { compare } from "./lib.ts";

const work = resolve(process.argv[2] ?? "/var/tmp/boxctl-store-bench");
const rounds = Number(process.argv[3] ?? 7);
const boxctl = resolve("dist/boxctl.mjs");
const FIDELITY = ["--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls"];

function sh(script: string, env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync("sh", ["-c", script], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`${script}: ${r.stderr}`);
  return r.stdout;
}

const du = (dirs: string[]) =>
  Number(sh(`du -s -c -B1 -x ${dirs.join(" ")} | tail -1`).split(/\s/)[0]);

/** Five archives, each changing every 20th file (about 5 % of the bytes) of the one before. */
function makeVersions(): string[] {
  const tree = join(work, "tree");
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  const foo = join(cachePath("guest-bookworm"), "images/foo-0.1.tar");
  sh(`tar ${FIDELITY.join(" ")} -xpf ${foo} -C ${tree}`);
  const tars: string[] = [];
  for (let v = 1; v <= 5; v++) {
    if (v > 1)
      sh(`cd ${tree} && find usr etc -type f -links 1 | LC_ALL=C sort | awk 'NR % 20 == ${v}' |
        while IFS= read -r f; do echo "version ${v}" >> "$f"; done`);
    const tar = join(work, `v${v}.tar`);
    sh(`tar ${FIDELITY.join(" ")} -C ${tree} -cf ${tar} .`);
    tars.push(tar);
  }
  rmSync(tree, { recursive: true, force: true });
  return tars;
}

function measure(fs: string, base: string, tars: string[]) {
  const store = join(base, "store");
  const env = { BOXCTL_STORE: store };
  rmSync(store, { recursive: true, force: true });
  for (const [i, tar] of tars.entries())
    sh(`node ${boxctl} stage-image -q ${tar} --name sv-${i + 1}`, env);
  const images = [1, 2, 3, 4, 5].map((v) => join(store, "images", `sv-${v}`));
  const one = du([images[0] as string]);
  const five = du(images);
  const each = images.map((d) => du([d])).reduce((a, b) => a + b, 0);
  console.log(
    `${fs}: five versions ${(five / 2 ** 20).toFixed(1)} MiB, one ${(one / 2 ** 20).toFixed(1)} MiB -> ratio ${(five / one).toFixed(3)} (without sharing: ${(each / one).toFixed(2)})`,
  );
  // Against the first four: the fifth version, staged and deleted each round.
  sh(`node ${boxctl} delete-image sv-5 >/dev/null`, env);
  const dest = join(base, "tar-dest");
  const timed = (script: string, after: string) => () => {
    const t0 = process.hrtime.bigint();
    sh(`${script} && sync`, env);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    sh(`${after} && sync`, env);
    return ms;
  };
  const v5 = tars[4] as string;
  return compare(
    `${fs}: stage-image with sharing vs tar -xpf`,
    timed(
      `node ${boxctl} stage-image -q ${v5} --name cand`,
      `node ${boxctl} delete-image cand >/dev/null`,
    ),
    timed(`mkdir ${dest} && tar ${FIDELITY.join(" ")} -xpf ${v5} -C ${dest}`, `rm -rf ${dest}`),
    rounds,
  );
}

mkdirSync(work, { recursive: true });
const tmpfs = join(work, "tmpfs");
try {
  console.log(`${new Date().toISOString()}, load ${sh("cut -d' ' -f1-3 /proc/loadavg").trim()}`);
  const tars = makeVersions();
  sh(`cat ${tars.join(" ")} > /dev/null`);
  await measure(`disk (${sh(`findmnt -no FSTYPE -T ${work}`).trim()})`, work, tars);
  mkdirSync(tmpfs, { recursive: true });
  sh(`mount -t tmpfs -o size=2g tmpfs ${tmpfs}`);
  await measure("tmpfs", tmpfs, tars);
  console.log(`load now ${sh("cut -d' ' -f1-3 /proc/loadavg").trim()}`);
} finally {
  spawnSync("umount", [tmpfs]);
  rmSync(work, { recursive: true, force: true });
}
