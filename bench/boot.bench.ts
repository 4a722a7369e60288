// Boot cost of boxctl's boot-time recovery unit (issue 14) with nothing to
// recover: a test host with three enabled boxctl machines is rebooted
// (clean poweroff, then boot) again and again, alternating with and
// without /etc/systemd/system/boxctl-recover.service. With the unit, its
// ConditionPathExistsGlob= is false and node never starts; every mount
// unit is still ordered after it. Measured from the host's own systemd:
//  - userspace: systemd-analyze's "Startup finished in ... (userspace)";
//  - containers: the last of the three systemd-nspawn@ units to become
//    active (Type=notify: the container has booted), since userspace start;
//  - recovery unit: from its job starting to its condition failing.
//   node --import tsx bench/boot.bench.ts [bookworm|trixie]
import { type Suite, TestHost } from "../test/host/host.ts";
import { ok, stage } from "../test/system/instances-helpers.ts";
import { compare } from "./lib.ts";

const suite = (process.argv[2] ?? "bookworm") as Suite;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const MACHINES = ["m1", "m2", "m3"];
const UNIT = "/etc/systemd/system/boxctl-recover.service";
const host = await TestHost.boot(suite);

async function show(unit: string, prop: string): Promise<number> {
  return Number((await host.sh(["systemctl", "show", "-P", prop, unit])).trim());
}

/** Reboots and returns [userspace ms, containers-booted ms]. */
async function boot(): Promise<[number, number]> {
  await host.reboot();
  for (const m of MACHINES) await host.waitBooted(m);
  const out = await host.sh(["systemd-analyze", "time"]);
  const user = /in ([\d.]+)(m?s) \(userspace\)/.exec(out);
  if (!user) throw new Error(`systemd-analyze time said: ${out}`);
  const userMs = Number(user[1]) * (user[2] === "s" ? 1000 : 1);
  const base = Number(
    (await host.sh(["systemctl", "show", "-P", "UserspaceTimestampMonotonic"])).trim(),
  );
  let last = 0;
  for (const m of MACHINES)
    last = Math.max(
      last,
      await show(`systemd-nspawn@${m}.service`, "ActiveEnterTimestampMonotonic"),
    );
  return [userMs, (last - base) / 1000];
}

try {
  await stage(host, "foo-0.1");
  for (const m of MACHINES) {
    ok(await host.boxctl(["cutover-instance", m, "foo-0.1"]));
    ok(await host.boxctl(["enable", m]));
  }
  const unitText = await host.sh(["cat", UNIT]);
  const withUnit = async () => {
    await host.sh([
      "sh",
      "-c",
      'printf %s "$1" > /etc/systemd/system/boxctl-recover.service',
      "sh",
      unitText,
    ]);
    return boot();
  };
  const withoutUnit = async () => {
    await host.sh(["rm", "-f", UNIT]);
    return boot();
  };
  const last: [number, number][] = [];
  const keep = (run: () => Promise<[number, number]>) => async () => {
    const [u, c] = await run();
    last.push([u, c]);
    return u;
  };
  await compare(
    "userspace boot, with the recovery unit vs without",
    keep(withUnit),
    keep(withoutUnit),
    RUNS,
  );
  // The same reboots, read for the containers: even runs had the unit, odd ones not.
  const c = last.slice(2).map(([, ms]) => ms);
  const w = c.filter((_, i) => i % 2 === 0).sort((a, b) => a - b);
  const wo = c.filter((_, i) => i % 2 === 1).sort((a, b) => a - b);
  const med = (xs: number[]) => xs[Math.floor(xs.length / 2)] as number;
  console.log(
    `three containers booted, since userspace start: ${med(w).toFixed(0)} ms with the unit vs ${med(wo).toFixed(0)} ms without (medians of ${w.length}; ranges ${w[0]?.toFixed(0)}-${w.at(-1)?.toFixed(0)} vs ${wo[0]?.toFixed(0)}-${wo.at(-1)?.toFixed(0)})`,
  );
  await withUnit();
  const cond = await host.sh([
    "systemctl",
    "show",
    "-p",
    "ConditionResult,ConditionTimestampMonotonic,ActiveState",
    "boxctl-recover.service",
  ]);
  console.log(`boxctl-recover.service on a clean boot: ${cond.trim().replace(/\n/g, ", ")}`);
} finally {
  await host.destroy();
}
