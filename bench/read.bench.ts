// Read verbs with a full store: 50 machines and 20 images. Times
// `boxctl list --json`, `boxctl status NAME` and `boxctl list-images`, each
// against `machinectl list`, and `boxctl --version` against `node -e ''`,
// alternating candidate and baseline, inside one systemd test host, and
// prints the ratios of the medians.
//   node --import tsx bench/read.bench.ts [bookworm|trixie]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Suite, TestHost } from "../test/host/host.ts";

const suite = (process.argv[2] ?? "bookworm") as Suite;
const MACHINES = 50;
const IMAGES = 20;
const RUNS = 21;

/** Fabricates the store beside one real, running machine: tiny trees, valid state files. */
function fabricate(host: TestHost): void {
  const store = join(host.dir, "var/lib/boxctl");
  const now = new Date().toISOString();
  for (let i = 1; i < IMAGES; i++) {
    const name = `bench-${i}.0`;
    mkdirSync(join(store, "images", name, "rootfs/etc"), { recursive: true });
    writeFileSync(join(store, "images", name, "rootfs/etc/os-release"), "NAME=bench\n");
    writeFileSync(
      join(store, "images", name, "image.json"),
      JSON.stringify({
        version: 1,
        name,
        os: "bench",
        size: 11,
        staged: now,
        sha256: "0".repeat(64),
        source: `${name}.tar`,
      }),
    );
  }
  for (let i = 1; i < MACHINES; i++) {
    const name = `m${i}`;
    const instances = [1, 2].map((gen) => ({
      gen,
      image: `bench-${((i + gen) % (IMAGES - 1)) + 1}.0`,
      created: now,
      lastActive: null,
    }));
    for (const { gen } of instances) {
      for (const d of ["upper/etc", "work"])
        mkdirSync(join(store, "machines", name, "instances", String(gen), d), { recursive: true });
    }
    writeFileSync(
      join(store, "machines", name, "machine.json"),
      JSON.stringify({
        version: 1,
        name,
        current: 2,
        fallback: 1,
        instances,
        lastOperation: { verb: "cutover-instance", started: now, finished: now, result: "ok" },
      }),
    );
  }
}

// Runs inside the host, so that no nsenter sits between the timer and the command.
const TIMER = `
const { spawnSync } = await import("node:child_process");
const pairs = JSON.parse(process.argv[1]);
const runs = Number(process.argv[2]);
const once = (argv) => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: "ignore" });
  if (r.status !== 0) throw new Error(argv.join(" ") + " exited " + r.status);
  return Number(process.hrtime.bigint() - t0) / 1e6;
};
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const out = [];
for (const [cand, base] of pairs) {
  once(cand); once(base);
  const c = [], b = [];
  for (let i = 0; i < runs; i++) { c.push(once(cand)); b.push(once(base)); }
  const show = (a) => a.map((w) => (w === "" ? "''" : w)).join(" ");
  out.push({ cand: show(cand), base: show(base), c: median(c), b: median(b) });
}
console.log(JSON.stringify(out));
`;

const host = await TestHost.boot(suite);
try {
  await host.sh(["boxctl", "stage-image", "--quiet", "/srv/images/foo-0.1.tar"]);
  await host.sh(["boxctl", "cutover-instance", "bench0", "foo-0.1"], { timeoutMs: 120_000 });
  fabricate(host);
  const count = JSON.parse(await host.sh(["boxctl", "list", "--json"])).machines.length;
  const images = (await host.sh(["ls", "/var/lib/boxctl/images"])).trim().split("\n").length;
  const ml = ["machinectl", "list"];
  const pairs = [
    [["boxctl", "list", "--json"], ml],
    [["boxctl", "status", "bench0"], ml],
    [["boxctl", "list-images"], ml],
    [
      ["boxctl", "--version"],
      ["node", "-e", ""],
    ],
    // The floor: what starting node at all costs against machinectl.
    [["node", "-e", ""], ml],
  ];
  const r = await host.exec(
    ["node", "--input-type=module", "-e", TIMER, JSON.stringify(pairs), String(RUNS)],
    { timeoutMs: 600_000 },
  );
  if (r.code !== 0) throw new Error(r.stderr);
  const node = (await host.sh(["node", "--version"])).trim();
  console.log(
    `${suite} test host, node ${node}: ${count} machines (1 running), ${images} images, median of ${RUNS}`,
  );
  console.log("| command | median | baseline | baseline median | ratio |");
  console.log("|---|---|---|---|---|");
  for (const x of JSON.parse(r.stdout) as { cand: string; base: string; c: number; b: number }[])
    console.log(
      `| \`${x.cand}\` | ${x.c.toFixed(1)} ms | \`${x.base}\` | ${x.b.toFixed(1)} ms | ${(x.c / x.b).toFixed(2)} |`,
    );
} finally {
  await host.destroy();
}
