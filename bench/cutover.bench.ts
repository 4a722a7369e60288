// Cutover: downtime, cost against image size, disk cost. Inside one
// systemd test host, alternating candidate and baseline:
//  1. downtime (container stopped -> booted) of boxctl cutover-instance and
//     of fallback-instance, against `systemctl restart systemd-nspawn@NAME`
//     of the same container. "Stopped" is the host unit's
//     InactiveEnterTimestampMonotonic, "booted" the container manager's
//     FinishTimestampMonotonic, on the same (monotonic) clock;
//  2. a whole cutover, from the command to the container booted, on a 10x
//     larger image against the small one, with `machinectl clone` of the
//     same two images beside it;
//  3. an instance's disk use after its first boot against the image's size.
//   node --import tsx bench/cutover.bench.ts [bookworm|trixie]
import { setTimeout as sleep } from "node:timers/promises";
import { type Suite, TestHost } from "../test/host/host.ts";
import { stage } from "../test/system/instances-helpers.ts";
import { compare, compareInterleaved, median } from "./lib.ts";

const suite = (process.argv[2] ?? "bookworm") as Suite;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
// A boot here varies by +-20 % run to run, so downtime needs many pairs.
const DOWNTIME_RUNS = Number(process.env.BENCH_DOWNTIME_RUNS ?? 30);
const SETTLE_MS = 1500;
// BENCH_PARTS=downtime: only part 1 (no 2 GiB image to build).
const ONLY_DOWNTIME = process.env.BENCH_PARTS === "downtime";
const host = await TestHost.boot(suite);

async function sh(argv: string[]): Promise<string> {
  return host.sh(argv, { timeoutMs: 600_000 });
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Monotonic timestamps (µs) from `systemctl show`, of unit or of the
 * manager itself, on the host or (with machine) inside the container.
 * Read in name=value form: --value prints in systemd's order, not ours.
 */
async function timestamps(
  names: string[],
  unit?: string,
  machine?: string,
): Promise<(name: string) => number> {
  const argv = [
    "systemctl",
    "show",
    ...names.flatMap((n) => ["-p", `${n}TimestampMonotonic`]),
    ...(unit ? [unit] : []),
  ];
  const text = machine ? (await host.inMachine(machine, argv)).stdout : await sh(argv);
  const values = new Map(
    text
      .trim()
      .split("\n")
      .map((l) => [l.split("=")[0], Number(l.split("=")[1])] as const),
  );
  return (name) => values.get(`${name}TimestampMonotonic`) ?? Number.NaN;
}

/** Where each candidate's downtime went; printed after the ratios. */
interface Phases {
  switch: number[];
  nspawn: number[];
  boot: number[];
  flush: number[];
}
const PHASE_LABELS: Record<keyof Phases, string> = {
  switch: "switch",
  nspawn: "nspawn",
  boot: "boot",
  flush: "(of it journal flush)",
};
const phases: Record<string, Phases> = {};

/**
 * Runs argv, which stops and boots the machine, and returns the downtime:
 * from the moment the host's unit went inactive to the moment the
 * container's own systemd finished booting (FinishTimestampMonotonic),
 * both on the kernel's monotonic clock. Neither side's polling counts.
 * It also records the phases: "switch" (unit inactive -> nspawn executed,
 * where boxctl's umount and mount happen), "nspawn" (-> the container's
 * systemd started) and "boot" (-> booted), and within boot the journal
 * flush, which a new instance's first boot makes slower.
 */
async function downtime(label: string, machine: string, argv: string[]): Promise<number> {
  await sh(argv);
  // systemctl restart returns while the container still boots; polling it
  // then (as boxctl waits inside its own run) would slow the baseline's
  // boot. Both sides are left alone until well after they have booted.
  await sleep(SETTLE_MS);
  await host.waitBooted(machine);
  const guest = await timestamps(["Finish", "Userspace"], undefined, machine);
  // Part of "boot": the journal's flush to /var/log/journal, which on a
  // new instance's first boot creates the persistent journal file.
  const flush = await timestamps(
    ["InactiveExit", "ActiveEnter"],
    "systemd-journal-flush.service",
    machine,
  );
  const unit = await timestamps(
    ["InactiveEnter", "ExecMainStart"],
    `systemd-nspawn@${machine}.service`,
  );
  const stopped = unit("InactiveEnter");
  const execd = unit("ExecMainStart");
  const userspace = guest("Userspace");
  const booted = guest("Finish");
  const ms = (booted - stopped) / 1000;
  if (!(ms > 0 && execd > stopped && userspace > execd))
    throw new Error(`bad timestamps: ${JSON.stringify({ stopped, execd, userspace, booted })}`);
  const p = phases[label] ?? { switch: [], nspawn: [], boot: [], flush: [] };
  phases[label] = p;
  p.switch.push((execd - stopped) / 1000);
  p.nspawn.push((userspace - execd) / 1000);
  p.boot.push((booted - userspace) / 1000);
  p.flush.push((flush("ActiveEnter") - flush("InactiveExit")) / 1000);
  return ms;
}

async function timed(argv: string[]): Promise<number> {
  const t0 = nowMs();
  await sh(argv);
  return nowMs() - t0;
}

/**
 * A whole cutover, from the command's start to the moment the container's
 * systemd finished booting (its FinishTimestampMonotonic; this process's
 * hrtime is the same monotonic clock). boxctl notices the boot by polling
 * every 250 ms, so the time until it returns comes in steps of 250 ms; that
 * part does not depend on the image and is recorded in wall alone.
 */
async function cutoverCost(machine: string, image: string, wall: Record<string, number[]>) {
  await sleep(SETTLE_MS);
  const t0 = nowMs();
  await sh(["boxctl", "cutover-instance", machine, image]);
  wall[machine]?.push(nowMs() - t0);
  const booted = (await timestamps(["Finish"], undefined, machine))("Finish") / 1000;
  if (!(booted > t0)) throw new Error(`bad timestamps: booted ${booted}, started ${t0}`);
  return booted - t0;
}

const du = async (path: string) =>
  Number((await sh(["du", "-s", "-B1", "-x", path])).split(/\s/)[0]);

try {
  await stage(host, "foo-0.1");
  // The large image: foo-0.1 plus 2 GiB in 2048 files of 1 MiB.
  if (!ONLY_DOWNTIME)
    await sh(["cp", "-a", "/var/lib/boxctl/images/foo-0.1", "/var/lib/boxctl/images/big"]);
  if (!ONLY_DOWNTIME)
    await sh([
      "sh",
      "-c",
      "set -e; for d in $(seq 1 32); do mkdir -p /var/lib/boxctl/images/big/rootfs/opt/bulk/$d; for f in $(seq 1 64); do head -c 1048576 /dev/urandom > /var/lib/boxctl/images/big/rootfs/opt/bulk/$d/$f; done; done; sync",
    ]);
  const small = await du("/var/lib/boxctl/images/foo-0.1/rootfs");
  const big = ONLY_DOWNTIME ? small : await du("/var/lib/boxctl/images/big/rootfs");
  console.log(
    `images: small ${(small / 2 ** 20).toFixed(0)} MiB, big ${(big / 2 ** 20).toFixed(0)} MiB (x${(big / small).toFixed(1)})`,
  );

  await sh(["boxctl", "cutover-instance", "m1", "foo-0.1"]);
  await sh(["boxctl", "cutover-instance", "m1", "foo-0.1"]);
  // Enabled, so that daemon-reload does not unload the stopped unit and
  // with it the InactiveEnterTimestamp that downtime() reads.
  await sh(["machinectl", "enable", "m1"]);
  const restart = () =>
    downtime("systemctl restart", "m1", ["systemctl", "restart", "systemd-nspawn@m1.service"]);
  const results = await compareInterleaved(
    {
      "downtime: cutover-instance vs systemctl restart": () =>
        downtime("cutover-instance", "m1", ["boxctl", "cutover-instance", "m1", "foo-0.1"]),
      "downtime: fallback-instance vs systemctl restart": () =>
        downtime("fallback-instance", "m1", ["boxctl", "fallback-instance", "m1"]),
    },
    restart,
    DOWNTIME_RUNS,
  );
  for (const [label, p] of Object.entries(phases))
    console.log(
      `  phases of ${label} (medians): ${(Object.keys(PHASE_LABELS) as (keyof Phases)[])
        .map((k) => `${PHASE_LABELS[k]} ${median(p[k]).toFixed(0)} ms`)
        .join(", ")}`,
    );

  if (!ONLY_DOWNTIME) {
    await sh(["boxctl", "cutover-instance", "msmall", "foo-0.1"]);
    await sh(["boxctl", "cutover-instance", "mbig", "big"]);
    const wall: Record<string, number[]> = { mbig: [], msmall: [] };
    results.push(
      await compare(
        "cutover-instance, command to container booted: big image vs small image",
        () => cutoverCost("mbig", "big", wall),
        () => cutoverCost("msmall", "foo-0.1", wall),
        RUNS,
      ),
    );
    console.log(
      `  whole command, until boxctl returns (medians): big ${median(wall.mbig ?? []).toFixed(0)} ms, small ${median(wall.msmall ?? []).toFixed(0)} ms`,
    );

    // machinectl clone needs the images where machinectl looks for them.
    await sh(["cp", "-a", "/var/lib/boxctl/images/foo-0.1/rootfs", "/var/lib/machines/img-small"]);
    await sh(["cp", "-a", "/var/lib/boxctl/images/big/rootfs", "/var/lib/machines/img-big"]);
    const clone = (src: string) => async () => {
      const ms = await timed(["machinectl", "clone", src, `${src}-c`]);
      await sh(["machinectl", "remove", `${src}-c`]);
      return ms;
    };
    results.push(
      await compare(
        "machinectl clone: big image vs small image",
        clone("img-big"),
        clone("img-small"),
        3,
      ),
    );
    const cloneVsCutover = await compare(
      "big image: machinectl clone vs cutover-instance",
      clone("img-big"),
      () => timed(["boxctl", "cutover-instance", "mbig", "big"]),
      3,
    );
    results.push(cloneVsCutover);

    await sh(["boxctl", "cutover-instance", "mdisk", "foo-0.1"]);
    const hist = JSON.parse(await sh(["boxctl", "history", "mdisk", "--json"]));
    const upper = hist.instances[0].changesBytes as number;
    console.log(
      `disk: an instance after its first boot uses ${(upper / 2 ** 20).toFixed(1)} MiB; the image ${(small / 2 ** 20).toFixed(0)} MiB -> ratio ${(upper / small).toFixed(3)}`,
    );
    console.log(
      JSON.stringify({
        suite,
        results,
        instanceBytes: upper,
        imageBytes: small,
        bigImageBytes: big,
      }),
    );
  }
} finally {
  await host.destroy();
}
