// Identical files stored once (issue 15): disk and time, on this machine's
// own file system (not in a test host, whose root is overlayfs, where each
// link() costs ~0.6 ms and a store would never live) and on tmpfs.
//   1. Five versions of the 160 MB foo-0.1 image, each changing about 5 %
//      of the bytes of the one before (every 20th file gets a line), staged
//      with boxctl: du of the five against du of one (target <= 1.3).
//   2. Staging the fifth version with sharing, into a store that holds the
//      other four, against `tar -xpf` of the same archive (GNU tar with the
//      fidelity flags boxctl uses), interleaved (target <= 1.10 on disk,
//      <= 1.30 on tmpfs); and the same stage into an empty store (all of
//      the sharing's work but the links). Each timing ends with a sync, so
//      write-back is charged to the run that caused it.
// Needs root, GNU tar, getfattr (attr) and a built dist/ (npm run build).
//   node --import tsx bench/store.bench.ts [WORKDIR on disk] [ROUNDS]
import { spawnSync } from "node:child_process";
import { appendFileSync, lstatSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { cachePath } from "../test/host/host.ts";
import { compareInterleaved } from "./lib.ts";

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

/** Regular files (one link) under dir, with their sizes, in path order. */
function regularFiles(dir: string): { path: string; size: number }[] {
  const out: { path: string; size: number }[] = [];
  const todo = [dir];
  while (todo.length) {
    const d = todo.pop() as string;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) todo.push(p);
      else if (e.isFile()) {
        const st = lstatSync(p);
        if (st.nlink === 1) out.push({ path: p, size: st.size });
      }
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/**
 * Five archives, each changing 5 % of the file bytes of the one before: a
 * line appended to files picked in a fixed pseudo-random order per version
 * until they hold 5 % of all bytes.
 */
function makeVersions(): { tars: string[]; changed: number[]; total: number } {
  const tree = join(work, "tree");
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  const foo = join(cachePath("guest-bookworm"), "images/foo-0.1.tar");
  sh(`tar ${FIDELITY.join(" ")} -xpf ${foo} -C ${tree}`);
  const files = regularFiles(tree);
  const total = files.reduce((a, f) => a + f.size, 0);
  const tars: string[] = [];
  const changed: number[] = [];
  let seed = 12345;
  for (let v = 1; v <= 5; v++) {
    let bytes = 0;
    if (v > 1) {
      const order = files.map((f) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return { f, k: seed };
      });
      order.sort((a, b) => a.k - b.k);
      for (const { f } of order) {
        if (bytes >= total * 0.05) break;
        appendFileSync(f.path, `version ${v}\n`);
        bytes += f.size;
      }
    }
    changed.push(bytes);
    const tar = join(work, `v${v}.tar`);
    sh(`tar ${FIDELITY.join(" ")} -C ${tree} -cf ${tar} .`);
    tars.push(tar);
  }
  rmSync(tree, { recursive: true, force: true });
  return { tars, changed, total };
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
  // Where a version's own bytes go: what it changed (regular files with one
  // link), and what no hard link can share (directories, symlinks, index).
  const own = sh(`find ${images[4]} -printf '%y %n %b\\n' | awk '
    $1 == "d" { d += $3 } $1 == "l" { l += $3 } $1 == "f" && $2 == 1 { f += $3 }
    END { printf "directories %.1f MiB, symlinks %.1f MiB, unshared files (changed, index) %.1f MiB", d/2048, l/2048, f/2048 }'`);
  console.log(`${fs}: sv-5 holds alone: ${own}`);
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
  // The same stage into an empty store: everything but the linking (walk,
  // getfattr, hashing, index), to tell the two costs apart.
  const empty = { BOXCTL_STORE: join(base, "empty-store") };
  return compareInterleaved(
    {
      [`${fs}: stage-image, four versions staged (shares ~95 %)`]: async () =>
        timed(
          `node ${boxctl} stage-image -q ${v5} --name cand`,
          `node ${boxctl} delete-image cand >/dev/null`,
        )(),
      [`${fs}: stage-image, empty store (nothing to share)`]: async () =>
        timed(
          `BOXCTL_STORE=${empty.BOXCTL_STORE} node ${boxctl} stage-image -q ${v5} --name cand`,
          `BOXCTL_STORE=${empty.BOXCTL_STORE} node ${boxctl} delete-image cand >/dev/null`,
        )(),
    },
    async () =>
      timed(`mkdir ${dest} && tar ${FIDELITY.join(" ")} -xpf ${v5} -C ${dest}`, `rm -rf ${dest}`)(),
    rounds,
  );
}

mkdirSync(work, { recursive: true });
const tmpfs = join(work, "tmpfs");
try {
  console.log(`${new Date().toISOString()}, load ${sh("cut -d' ' -f1-3 /proc/loadavg").trim()}`);
  const { tars, changed, total } = makeVersions();
  console.log(
    `five versions of foo-0.1 (${(total / 2 ** 20).toFixed(1)} MiB in regular files): each changes ${changed
      .slice(1)
      .map((c) => `${((100 * c) / total).toFixed(1)} %`)
      .join(", ")} of the bytes`,
  );
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
