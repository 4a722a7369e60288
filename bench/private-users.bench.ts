// First boot of a fresh instance in each user-namespace mode, in a test
// host, interleaved round by round: boxctl's private users (an idmapped view
// of the image), nspawn's stock -U (PrivateUsers=pick with the image chowned
// into the instance) and PrivateUsers=no. Each round makes the instance with
// boxctl, powers it off and empties it (reset), sets the mode in NAME.nspawn,
// then times `systemctl start` until the guest's systemd reports running,
// and measures the upper dir. Ratios are against PrivateUsers=no.
//   node --import tsx bench/private-users.bench.ts [bookworm|trixie]   (root)
import { TestHost } from "../test/host/host.ts";
import { median } from "./lib.ts";

const suite = (process.argv[2] ?? "bookworm") as "bookworm" | "trixie";
const rounds = Number(process.env.BENCH_PRIVATE_RUNS ?? 3);
const modes = ["private", "stock -U", "no"] as const;
type Mode = (typeof modes)[number];

const host = await TestHost.boot(suite);
const sh = (script: string) => host.sh(["sh", "-c", script], { timeoutMs: 300_000 });

async function firstBoot(mode: Mode, m: string): Promise<{ ms: number; bytes: number }> {
  const priv = mode === "private" ? "yes" : "no";
  await sh(`boxctl cutover-instance ${m} foo-0.1 --private-users ${priv} >/dev/null`);
  await sh(`boxctl poweroff ${m} && boxctl reset ${m} foo-0.1 --yes >/dev/null`);
  if (mode === "stock -U")
    await sh(
      `sed -i 's/^PrivateUsers=.*/PrivateUsers=pick/; s/^PrivateUsersOwnership=.*/PrivateUsersOwnership=chown/' /etc/systemd/nspawn/${m}.nspawn`,
    );
  const out = await sh(`s=$(date +%s%N); systemctl start systemd-nspawn@${m}
    until systemd-run -M ${m} --wait --pipe -q systemctl is-system-running --wait 2>/dev/null | grep -Eq 'running|degraded'; do sleep 0.05; done
    e=$(date +%s%N); echo $(( (e - s) / 1000000 )) $(du -s -B1 /var/lib/boxctl/machines/${m}/instances/1/upper | cut -f1)`);
  await sh(`systemctl stop systemd-nspawn@${m}`);
  const [ms, bytes] = out.trim().split(" ").map(Number);
  return { ms: ms ?? 0, bytes: bytes ?? 0 };
}

try {
  await sh("boxctl stage-image /srv/images/foo-0.1.tar >/dev/null 2>&1");
  const got: Record<Mode, { ms: number[]; bytes: number[] }> = {
    private: { ms: [], bytes: [] },
    "stock -U": { ms: [], bytes: [] },
    no: { ms: [], bytes: [] },
  };
  for (let i = 0; i < rounds; i++)
    for (const mode of modes) {
      const r = await firstBoot(
        mode,
        `b${i}${mode === "private" ? "p" : mode === "no" ? "n" : "u"}`,
      );
      got[mode].ms.push(r.ms);
      got[mode].bytes.push(r.bytes);
    }
  const base = { ms: median(got.no.ms), bytes: median(got.no.bytes) };
  console.log(
    `first boot on ${suite}, ${rounds} interleaved rounds (medians; ratio to PrivateUsers=no)`,
  );
  for (const mode of modes) {
    const ms = median(got[mode].ms);
    const mb = median(got[mode].bytes) / 1e6;
    console.log(
      `${mode.padEnd(9)} boot ${ms} ms (${(ms / base.ms).toFixed(2)})  upper ${mb.toFixed(1)} MB (${(median(got[mode].bytes) / base.bytes).toFixed(2)})  runs: ${got[mode].ms.join(", ")} ms`,
    );
  }
} finally {
  await host.destroy();
}
