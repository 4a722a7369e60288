// stage-image URL against `curl -o- URL | tar -x` with the same fidelity
// flags, from the same local HTTP server inside a test host (its loopback),
// into the same file system, alternating. Only the staging command is
// timed; the image or tree is removed between runs. Then again with the
// store on tmpfs, where boxctl's own CPU cost is not hidden by the disk.
// With BENCH_BEFORE=path/to/boxctl.cjs (another build, e.g. main's), that
// build is timed too, against the same baseline runs.
//   node --import tsx bench/url.bench.ts [bookworm|trixie]      (root)
import { execFileSync } from "node:child_process";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { type Suite, TestHost } from "../test/host/host.ts";
import { PORT, SERVER } from "../test/system/images-url.ts";
import { compareInterleaved } from "./lib.ts";

const suite = (process.argv[2] ?? "bookworm") as Suite;
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const URL = `http://127.0.0.1:${PORT}/ok/foo-0.1.tar`;
const host = await TestHost.boot(suite);
const before = process.env.BENCH_BEFORE;
if (before) copyFileSync(before, join(host.dir, "root/before.cjs"));
const FLAGS = "--numeric-owner --xattrs --xattrs-include='*' --acls --selinux -p";
const sh = (script: string) => host.sh(["sh", "-c", script], { timeoutMs: 600_000 });

async function timed(script: string): Promise<number> {
  const t0 = performance.now();
  await sh(script);
  return performance.now() - t0;
}

try {
  await sh(`cat > /root/serve.cjs <<'EOF'\n${SERVER}\nEOF`);
  await sh("systemd-run --unit=bx-http --collect node /root/serve.cjs /srv/images");
  await sh(
    `for i in $(seq 100); do curl -so /dev/null ${URL} && break; sleep 0.1; done; curl -sfo /dev/null ${URL}`,
  );
  const sha = (await sh("sha256sum /srv/images/foo-0.1.tar")).split(" ")[0];
  let n = 0;
  const stage = (boxctl: string) => async () => {
    const name = `u${n++}`;
    const ms = await timed(`${boxctl} stage-image -q ${URL} --name ${name} --sha256 ${sha}`);
    await sh(`boxctl delete-image ${name} >/dev/null`);
    return ms;
  };
  const run = (where: string) => {
    console.log(`stage-image URL vs curl | tar -x (same flags), ${where}:`);
    return compareInterleaved(
      {
        "stage-image URL": stage("boxctl"),
        ...(before ? { "stage-image URL (BENCH_BEFORE)": stage("node /root/before.cjs") } : {}),
        // boxctl keeps the disk writing while tar unpacks (host/files.ts,
        // writeBehind); this is the same done by hand, for reference.
        "curl | tar -x with sync -f in a loop beside it (boxctl's writeback, by hand)":
          async () => {
            const dir = "/var/lib/boxctl/bench-tree";
            const ms = await timed(
              `mkdir -p ${dir} && { while sleep 0.25; do sync -f ${dir}; done & } && curl -so- ${URL} | tar -x ${FLAGS} -C ${dir} && kill $! && sync -f ${dir}`,
            );
            await sh(`rm -rf ${dir}`);
            return ms;
          },
      },
      async () => {
        const dir = "/var/lib/boxctl/bench-tree";
        const ms = await timed(
          `mkdir -p ${dir} && curl -so- ${URL} | tar -x ${FLAGS} -C ${dir} && sync -f ${dir}`,
        );
        await sh(`rm -rf ${dir}`);
        return ms;
      },
      RUNS,
    );
  };
  // The target: on the host's disk, what a user sees.
  await run("on disk");
  // On tmpfs there is no disk to wait for: what boxctl's own CPU costs shows.
  await sh("mount -t tmpfs -o size=2g tmpfs /var/lib/boxctl");
  await run("on tmpfs");
  console.log(`at the end: ${execFileSync("uptime", { encoding: "utf8" }).trim()}`);
} finally {
  await host.destroy();
}
