// Carrying (issue 19), inside one systemd test host:
//  1. downtime (host unit inactive -> container booted, as in
//     cutover.bench.ts) of a cutover that carries identity and /etc (its
//     restart split into stop, carry-final and start) against one with
//     --carry none (a plain systemctl restart) and against a plain
//     `systemctl restart`, interleaved round by round;
//  2. the cost of carrying a named path: a cutover with --carry PATH against
//     one with --carry none, from the command to its return, beside
//     `cp -a` of the same tree on the host's file system.
//   node --import tsx bench/carry.bench.ts [bookworm|trixie]
import { setTimeout as sleep } from "node:timers/promises";
import { type Suite, TestHost } from "../test/host/host.ts";
import { stage } from "../test/system/instances-helpers.ts";
import { median } from "./lib.ts";

const suite = (process.argv[2] ?? "bookworm") as Suite;
const ROUNDS = Number(process.env.BENCH_DOWNTIME_RUNS ?? 10);
const COPY_RUNS = Number(process.env.BENCH_RUNS ?? 3);
const FILES = Number(process.env.BENCH_FILES ?? 10000);
const FILE_KB = Number(process.env.BENCH_FILE_KB ?? 20);
const M = "bench1";
const host = await TestHost.boot(suite);
const sh = (argv: string[]) => host.sh(argv, { timeoutMs: 600_000 });
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function mono(prop: string, unit?: string, machine?: string): Promise<number> {
  const argv = ["systemctl", "show", "-P", `${prop}TimestampMonotonic`, ...(unit ? [unit] : [])];
  const out = machine ? (await host.inMachine(machine, argv)).stdout : await sh(argv);
  return Number(out.trim());
}

/** Downtime of argv (ms) and, of it, the part before nspawn was started again. */
async function downtime(argv: string[]): Promise<[number, number]> {
  await sh(argv);
  await sleep(1500);
  await host.waitBooted(M);
  const unit = `systemd-nspawn@${M}.service`;
  const stopped = await mono("InactiveEnter", unit);
  const execd = await mono("ExecMainStart", unit);
  const booted = await mono("Finish", undefined, M);
  return [(booted - stopped) / 1000, (execd - stopped) / 1000];
}

try {
  await stage(host, "foo-0.1");
  await stage(host, "foo-0.2");
  await sh(["boxctl", "cutover-instance", M, "foo-0.1"]);
  await host.waitBooted(M);
  // Enabled, so that machines.target holds the unit: an inactive unit nothing
  // refers to is unloaded between `systemctl stop` and the start that
  // follows, and a reloaded unit has lost its InactiveEnter timestamp.
  await sh(["machinectl", "enable", M]);
  // A typical local /etc: a hostname, a host key, a user, a few edited files.
  await host.inMachine(M, [
    "sh",
    "-c",
    "echo bench > /etc/hostname; mkdir -p /etc/ssh; head -c 400 /dev/urandom > /etc/ssh/ssh_host_ed25519_key; useradd -m bob; echo x >> /etc/issue; echo 'a b' > /etc/app.conf",
  ]);
  const rows: Record<string, [number[], number[]]> = {
    "cutover --carry identity,etc": [[], []],
    "fallback-instance (no carry)": [[], []],
    "systemctl restart": [[], []],
  };
  const images = ["foo-0.2", "foo-0.1"];
  for (let i = 0; i < ROUNDS; i++) {
    for (const [label, argv] of [
      [
        "cutover --carry identity,etc",
        ["boxctl", "cutover-instance", M, images[i % 2] as string, "--carry", "identity,etc"],
      ],
      ["systemctl restart", ["systemctl", "restart", `systemd-nspawn@${M}.service`]],
      // Back to the instance with the changes, so that every carrying cutover carries the same.
      ["fallback-instance (no carry)", ["boxctl", "fallback-instance", M]],
    ] as const) {
      const [d, s] = await downtime([...argv]);
      rows[label]?.[0].push(d);
      rows[label]?.[1].push(s);
    }
  }
  const base = median(rows["systemctl restart"]?.[0] ?? []);
  process.stdout.write(
    `downtime, ${ROUNDS} rounds on ${suite} (median ms; ratio to systemctl restart; of it, stop -> nspawn started)\n`,
  );
  for (const [label, [d, s]] of Object.entries(rows))
    process.stdout.write(
      `  ${label.padEnd(30)} ${median(d).toFixed(0)} ms  ${(median(d) / base).toFixed(3)}  ${median(s).toFixed(1)} ms\n`,
    );

  // 2. A named path of FILES files of FILE_KB each.
  await host.inMachine(
    M,
    [
      "sh",
      "-c",
      `mkdir -p /var/lib/data && cd /var/lib/data && i=0; while [ $i -lt ${FILES} ]; do mkdir -p d$((i/100)); head -c ${FILE_KB * 1024} /dev/urandom > d$((i/100))/f$i; i=$((i+1)); done`,
    ],
    600_000,
  );
  const timed = async (argv: string[]) => {
    const t0 = nowMs();
    await sh(argv);
    return nowMs() - t0;
  };
  const withPath: number[] = [];
  const none: number[] = [];
  const cp: number[] = [];
  for (let i = 0; i < COPY_RUNS; i++) {
    withPath.push(
      await timed(["boxctl", "cutover-instance", M, "foo-0.2", "--carry", "/var/lib/data"]),
    );
    await sh(["boxctl", "fallback-instance", M]);
    none.push(await timed(["boxctl", "cutover-instance", M, "foo-0.2", "--carry", "none"]));
    await sh(["boxctl", "fallback-instance", M]);
    await sh(["rm", "-rf", "/var/lib/boxctl/cp-bench"]);
    await sh(["sync"]);
    cp.push(
      await timed(["cp", "-a", `/var/lib/machines/${M}/var/lib/data`, "/var/lib/boxctl/cp-bench"]),
    );
  }
  const mb = (FILES * FILE_KB) / 1024;
  const carryMs = median(withPath) - median(none);
  process.stdout.write(
    `named path of ${FILES} files, ${mb.toFixed(0)} MiB, ${COPY_RUNS} runs (median): cutover with it ${median(withPath).toFixed(0)} ms, without ${median(none).toFixed(0)} ms: carrying costs ${carryMs.toFixed(0)} ms; cp -a ${median(cp).toFixed(0)} ms\n` +
      `  per GiB: carry ${((carryMs * 1024) / mb / 1000).toFixed(1)} s, cp -a ${((median(cp) * 1024) / mb / 1000).toFixed(1)} s; per 10,000 files: carry ${((carryMs * 10000) / FILES / 1000).toFixed(2)} s, cp -a ${((median(cp) * 10000) / FILES / 1000).toFixed(2)} s\n`,
  );
} finally {
  await host.destroy();
}
