// The Debian suites the test hosts are built from, and what each one runs.
export type Suite = "bookworm" | "trixie" | "sid";
/** Every suite a test host can be built from (test/host/cache.sh host-SUITE). */
export const ALL_SUITES: Suite[] = ["bookworm", "trixie", "sid"];
/**
 * The suites the system tests run on: $BOXCTL_TEST_SUITES (names separated
 * by spaces, e.g. "bookworm trixie"), by default all three. cache.sh reads
 * the same variable, with the same default, to know which hosts to build.
 */
export const SUITES: Suite[] = parseSuites(process.env.BOXCTL_TEST_SUITES);
/**
 * The two stable releases. On 2 cores a warm npm test stays under ten
 * minutes only if sid, the newest systemd, runs just the groups that
 * exercise systemd most (container verbs with a host reboot, instances);
 * every other group runs here (README, "Development").
 */
export const STABLE_SUITES: Suite[] = SUITES.filter((s) => s !== "sid");
/**
 * The share of a per-step matrix (crash, power cut) that suite runs. The
 * steps are dealt out in turn over the stable suites that run, so every
 * step runs once, on alternating systemd versions, and the two matrices
 * cost half as much; with one suite, or BOXCTL_TEST_FULL=1, every suite runs
 * every step. Measured: this takes about a minute off a warm npm test.
 */
export function shareOf<T>(items: readonly T[], suite: Suite): T[] {
  const n = STABLE_SUITES.length;
  const k = STABLE_SUITES.indexOf(suite);
  if (process.env.BOXCTL_TEST_FULL === "1" || n < 2 || k < 0) return [...items];
  return items.filter((_, i) => i % n === k);
}
/**
 * systemd's major version on each suite's host when its cache was built;
 * sid moves, so a test that depends on the exact number asks the host
 * (TestHost.systemdVersion()).
 */
export const SYSTEMD_VERSION: Record<Suite, number> = { bookworm: 252, trixie: 257, sid: 262 };
/** The major version of each suite's nodejs package (sid: when its cache was built). */
export const NODE_MAJOR: Record<Suite, number> = { bookworm: 18, trixie: 20, sid: 24 };
/** PRETTY_NAME of each host's os-release (sid's changes with each Debian release). */
export const OS_PRETTY_NAME: Record<Suite, string> = {
  bookworm: "Debian GNU/Linux 12 (bookworm)",
  trixie: "Debian GNU/Linux 13 (trixie)",
  sid: "Debian GNU/Linux forky/sid",
};
/**
 * Suites whose systemd (256 and later) refuses to boot on the legacy cgroup
 * hierarchy this machine has: their outer systemd-nspawn gets
 * SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1, which gives the container cgroup v2.
 */
export const UNIFIED: ReadonlySet<Suite> = new Set<Suite>(["sid"]);

export function parseSuites(value: string | undefined): Suite[] {
  if (!value?.trim()) return [...ALL_SUITES];
  const names = value.split(/\s+/).filter(Boolean);
  for (const n of names) {
    if (!(ALL_SUITES as string[]).includes(n))
      throw new Error(`BOXCTL_TEST_SUITES: unknown suite '${n}' (known: ${ALL_SUITES.join(" ")})`);
  }
  return [...new Set(names)] as Suite[];
}
