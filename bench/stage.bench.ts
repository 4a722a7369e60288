// How much staging costs over plain GNU tar. Boots a test host,
// builds a ~500 MB root-filesystem tar inside it (three copies of the
// foo-0.1 guest under one os-release), then, interleaved and in the same
// file system (/var/lib), times:
//   tar      tar -xpf with the fidelity flags boxctl uses (the baseline)
//   stage    boxctl stage-image
//   sha256   boxctl stage-image --sha256 HEX
//   stdin    boxctl stage-image - < FILE (the streaming path; tmpfs only)
//   machinectl  machinectl import-tar (where the host has it)
//   before, before-stdin  stage and stdin by another build of boxctl, given
//               as BENCH_BEFORE=path/to/boxctl.cjs (e.g. main's), so that a
//               change is measured against its parent in the same rounds
// Each timing includes a final sync, so that write-back is charged to the
// run that caused it. Prints medians and ratios to the tar baseline.
//   node --import tsx bench/stage.bench.ts [bookworm|trixie] [ROUNDS]
import { execFileSync } from "node:child_process";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { SUITES, type Suite, TestHost } from "../test/host/host.ts";

const suite = (process.argv[2] as Suite | undefined) ?? "trixie";
const rounds = Number(process.argv[3] ?? 5);
if (!SUITES.includes(suite)) throw new Error(`suite must be one of ${SUITES.join(", ")}`);

const host = await TestHost.boot(suite);
const before = process.env.BENCH_BEFORE;
if (before) copyFileSync(before, join(host.dir, "root/before.cjs"));
const sh = (script: string) => host.sh(["sh", "-c", script], { timeoutMs: 600_000 });

/** Runs script, then sync; returns the wall time in seconds. */
async function timed(script: string): Promise<number> {
  const out = await sh(
    `t0=$(date +%s%N); ${script}; sync; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 ))`,
  );
  return Number(out.trim().split("\n").pop()) / 1e6;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

try {
  process.stderr.write(`building the archive in ${host.name}...\n`);
  await sh(`set -e; mkdir -p /root/big/etc
    for i in 1 2 3; do mkdir /root/big/copy$i; tar --numeric-owner -xpf /srv/images/foo-0.1.tar -C /root/big/copy$i; done
    cp /root/big/copy1/usr/lib/os-release /root/big/etc/os-release
    tar --numeric-owner --xattrs --xattrs-include='*' --acls -C /root/big -cf /root/big.tar .
    rm -rf /root/big; cat /root/big.tar > /dev/null`);
  const bytes = Number((await sh("stat -c %s /root/big.tar")).trim());
  const sha = (await sh("sha256sum /root/big.tar")).slice(0, 64);
  const hasMachinectl = (await host.exec(["sh", "-c", "command -v machinectl"])).code === 0;
  const flags = "--numeric-owner --xattrs --xattrs-include='*' --acls --selinux";
  const measure = async (fs: string, n: number, streamed = false) => {
    const runs: Record<string, number[]> = {
      tar: [],
      stage: [],
      sha256: [],
      stdin: [],
      machinectl: [],
      before: [],
      "before-stdin": [],
    };
    for (let i = 0; i < n; i++) {
      const dir = "/var/lib/boxctl/bench-tar";
      runs.tar?.push(await timed(`mkdir -p ${dir} && tar ${flags} -xpf /root/big.tar -C ${dir}`));
      await sh(`rm -rf ${dir}; sync`);
      runs.stage?.push(await timed("boxctl stage-image -q /root/big.tar --name b1"));
      await sh("boxctl delete-image b1 >/dev/null; sync");
      runs.sha256?.push(
        await timed(`boxctl stage-image -q /root/big.tar --name b2 --sha256 ${sha}`),
      );
      await sh("boxctl delete-image b2 >/dev/null; sync");
      if (streamed) {
        runs.stdin?.push(await timed("boxctl stage-image -q - --name b3 < /root/big.tar"));
        await sh("boxctl delete-image b3 >/dev/null; sync");
      }
      if (before) {
        runs.before?.push(
          await timed("node /root/before.cjs stage-image -q /root/big.tar --name b4"),
        );
        await sh("boxctl delete-image b4 >/dev/null; sync");
        if (streamed) {
          runs["before-stdin"]?.push(
            await timed("node /root/before.cjs stage-image -q - --name b5 < /root/big.tar"),
          );
          await sh("boxctl delete-image b5 >/dev/null; sync");
        }
      }
      if (hasMachinectl) {
        runs.machinectl?.push(await timed("machinectl --quiet import-tar /root/big.tar bench"));
        await sh("machinectl remove bench; sync");
      }
      process.stderr.write(`${fs}: round ${i + 1}/${n} done\n`);
    }
    const load = execFileSync("uptime", { encoding: "utf8" }).trim();
    const base = median(runs.tar ?? []);
    const mb = bytes / 2 ** 20;
    console.log(`\n${suite}, ${fs}: ${mb.toFixed(0)} MiB uncompressed tar, ${n} rounds, medians`);
    console.log(`at the end: ${load}`);
    for (const [what, xs] of Object.entries(runs)) {
      if (!xs.length) continue;
      const m = median(xs);
      const all = xs.map((x) => x.toFixed(2)).join(" ");
      console.log(
        `${what.padEnd(12)} ${m.toFixed(2)} s ${(mb / m).toFixed(0).padStart(5)} MiB/s  ratio ${(m / base).toFixed(2)}  (${all})`,
      );
    }
  };
  // On the host's disk: what a user sees, write-back included.
  await measure("disk (ext4 of the machine, with sync)", rounds);
  // On tmpfs: no disk, so boxctl's own CPU cost shows in full.
  await sh(
    "mount -t tmpfs -o size=6g tmpfs /var/lib/boxctl && mount -t tmpfs -o size=6g tmpfs /var/lib/machines",
  );
  await measure("tmpfs (CPU-bound worst case)", rounds + 2, true);
} finally {
  await host.destroy();
}
