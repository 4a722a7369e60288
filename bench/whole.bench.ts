// A whole cutover as the admin waits for it: from `boxctl cutover-instance
// M foo-0.1` starting to the command returning with the container booted,
// against the same container stopped and started by hand and waited for:
//   systemctl stop systemd-nspawn@M; systemctl start systemd-nspawn@M;
//   systemd-run -M M --wait --pipe systemctl is-system-running --wait
// The baseline's wait is event-based (the container's own systemctl
// blocks until its manager reports startup finished); only while the
// container's bus cannot be reached yet is it retried, at once (a tight
// loop, no sleep). Interleaved, in one test host, after 1.5 s of quiet
// each. Both sides are also read against an oracle: the container's own
// FinishTimestampMonotonic, on the clock this process's hrtime uses, i.e.
// a waiter that costs nothing and notices at once.
//   node --import tsx bench/whole.bench.ts [bookworm|trixie]   (BENCH_RUNS, default 15)
// BENCH_OLD_BOXCTL=dist/FILE adds another build of boxctl (a bundle in
// dist/, which the test host sees at /opt/boxctl) as a second candidate in
// the same rounds: before and after a change, on the same baseline runs.
// BENCH_OTHER_MACHINES=N first loads what N other boxctl machines add to
// the host's systemd (an active mount unit, its view service and a running
// service each; no containers), since a cutover's daemon-reload grows with
// the units systemd has loaded; the run also times daemon-reload alone.
import { setTimeout as sleep } from "node:timers/promises";
import { type Suite, TestHost } from "../test/host/host.ts";
import { stage } from "../test/system/instances-helpers.ts";
import { compareInterleaved, median } from "./lib.ts";

const suite = (process.argv[2] ?? "bookworm") as Suite;
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const OTHERS = Number(process.env.BENCH_OTHER_MACHINES ?? 0);
const SETTLE_MS = 1500;
const M = "m1";
const host = await TestHost.boot(suite);
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** The container manager's FinishTimestampMonotonic, in ms. */
async function finishedAt(): Promise<number> {
  const r = await host.inMachine(M, ["systemctl", "show", "-P", "FinishTimestampMonotonic"]);
  return Number(r.stdout.trim()) / 1000;
}

const OLD = process.env.BENCH_OLD_BOXCTL;
const oldPath = OLD ? `/opt/boxctl/${OLD.replace(/^dist\//, "")}` : "";
const oracle: Record<string, number[]> = { boxctl: [], old: [], baseline: [] };

async function timed(label: string, run: () => Promise<void>): Promise<number> {
  await sleep(SETTLE_MS);
  const t0 = nowMs();
  await run();
  const wall = nowMs() - t0;
  const fin = await finishedAt();
  if (!(fin > t0 && fin <= t0 + wall + 1)) throw new Error(`bad timestamps: ${t0} ${fin} ${wall}`);
  oracle[label]?.push(fin - t0);
  return wall;
}

async function byHand(): Promise<void> {
  await host.sh(["systemctl", "stop", `systemd-nspawn@${M}.service`]);
  await host.sh(["systemctl", "start", `systemd-nspawn@${M}.service`]);
  for (;;) {
    const r = await host.inMachine(M, ["systemctl", "is-system-running", "--wait"]);
    const state = r.stdout.trim();
    if (state === "running" || state === "degraded") return;
    if (state !== "" && state !== "starting" && state !== "initializing")
      throw new Error(`${M}: ${state} ${r.stderr}`);
  }
}

/**
 * The units n other machines keep loaded: per machine, a mount unit that
 * requires a oneshot "view" (as boxctl's do) and a running service standing
 * in for systemd-nspawn@. Mounts of 1 MiB tmpfs, no containers: only the
 * manager's unit count is what a daemon-reload pays for.
 */
async function loadOtherMachines(n: number): Promise<void> {
  if (n === 0) return;
  await host.sh([
    "bash",
    "-c",
    `set -e
    for i in $(seq 1 "$1"); do
      mkdir -p /var/lib/machines/other$i
      u=$(systemd-escape -p --suffix=mount /var/lib/machines/other$i)
      printf '[Unit]\\nRequires=other-view-%s.service\\nAfter=other-view-%s.service\\n[Mount]\\nWhat=tmpfs\\nWhere=/var/lib/machines/other%s\\nType=tmpfs\\nOptions=size=1M\\n' $i $i $i >/etc/systemd/system/$u
      printf '[Unit]\\nStopWhenUnneeded=yes\\n[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/mkdir -p /run/other-view/%s\\n' $i >/etc/systemd/system/other-view-$i.service
      printf '[Service]\\nExecStart=/bin/sleep infinity\\n' >/etc/systemd/system/other-ct-$i.service
    done
    systemctl daemon-reload
    for i in $(seq 1 "$1"); do
      systemctl start "$(systemd-escape -p --suffix=mount /var/lib/machines/other$i)" other-ct-$i.service
    done`,
    "-",
    String(n),
  ]);
}

/** Medians of daemon-reload alone, 12 runs after 2. */
async function reloadMs(): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 14; i++) {
    const t0 = nowMs();
    await host.sh(["systemctl", "daemon-reload"]);
    if (i >= 2) xs.push(nowMs() - t0);
  }
  return median(xs);
}

try {
  await loadOtherMachines(OTHERS);
  const units = (await host.sh(["systemctl", "list-units", "--all", "--no-legend"]))
    .split("\n")
    .filter(Boolean).length;
  const reload = await reloadMs();
  console.log(
    `  ${OTHERS} other machines: ${units} units loaded; systemctl daemon-reload ${reload.toFixed(0)} ms (median of 12)`,
  );
  await stage(host, "foo-0.1");
  await host.sh(["boxctl", "cutover-instance", M, "foo-0.1"]);
  await host.sh(["boxctl", "cutover-instance", M, "foo-0.1"]);
  const results = await compareInterleaved(
    {
      "cutover-instance (command to returned, booted) vs stop + start + is-system-running --wait":
        () => timed("boxctl", () => host.sh(["boxctl", "cutover-instance", M, "foo-0.1"]).then()),
      ...(OLD
        ? {
            [`${OLD} cutover-instance (command to returned, booted) vs the same baseline`]: () =>
              timed("old", () => host.sh([oldPath, "cutover-instance", M, "foo-0.1"]).then()),
          }
        : {}),
    },
    () => timed("baseline", byHand),
    RUNS,
  );
  // The warm-up pair is in oracle too; drop it.
  const warm = OLD ? 2 : 1;
  const b = median(oracle.baseline?.slice(warm) ?? []);
  for (const [label, i] of [
    ["boxctl", 0],
    ["old", 1],
  ] as const) {
    const xs = oracle[label]?.slice(1) ?? [];
    if (!xs.length) continue;
    const c = median(xs);
    console.log(
      `  ${label === "old" ? OLD : "boxctl"}, to the container's FinishTimestamp (medians): ${c.toFixed(0)} ms vs by hand ${b.toFixed(0)} ms -> ratio ${(c / b).toFixed(2)}; until it returned, against the by-hand oracle: ${((results[i]?.candidateMs ?? 0) / b).toFixed(2)}`,
    );
  }
  const load = (await host.sh(["cat", "/proc/loadavg"])).trim();
  console.log(
    JSON.stringify({
      suite,
      date: new Date().toISOString(),
      load,
      otherMachines: OTHERS,
      units,
      reloadMs: reload,
      results,
    }),
  );
} finally {
  await host.destroy();
}
