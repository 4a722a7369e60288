// The built bundle runs on each distribution's own node, and the
// test hosts really run systemd, machinectl and a nested container.
// On the stable releases the same host then tests the Debian package
// itself (package.ts), last, since it ends with boxctl purged.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { cachePath, NODE_MAJOR, STABLE_SUITES, SYSTEMD_VERSION, TestHost } from "../host/host.ts";
import { packageTests } from "./package.ts";

for (const suite of STABLE_SUITES) {
  describe(`foundation on ${suite}`, () => {
    let host: TestHost;
    const ctx = {
      get host() {
        return host;
      },
    };
    before(async () => {
      host = await TestHost.boot(suite);
    });
    after(() => host?.destroy());

    it(`runs systemd ${SYSTEMD_VERSION[suite]} as PID 1`, async () => {
      assert.equal((await host.sh(["cat", "/proc/1/comm"])).trim(), "systemd");
      const v = await host.sh(["systemctl", "--version"]);
      assert.match(v, new RegExp(`^systemd ${SYSTEMD_VERSION[suite]}\\b`));
    });

    it("runs the bundle on the distribution's node", async () => {
      const r = await host.boxctl(["--version"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^boxctl \d+\.\d+\.\d+/);
      const node = await host.sh(["node", "--version"]);
      assert.match(node, new RegExp(`^v${NODE_MAJOR[suite]}\\.`));
    });

    it("has --help for every verb, and usage errors exit 2", async (t) => {
      // One bundle file, parsed whole at start ("runs the bundle" above, on each node): one suite runs every verb.
      if (suite !== "bookworm") return t.skip("the same bundle on every node; runs on bookworm");
      const verbs = (await host.sh(["boxctl", "--help"])).match(/^ {2}([a-z][a-z-]+)(?= )/gm) ?? [];
      assert.ok(verbs.length >= 20, `only ${verbs.length} verbs in --help`);
      // One shell in the host runs them all: the first line of each verb's
      // --help, and its exit status (`help VERB` runs the same code for every
      // verb: the unit tests compare the two for each, this host for one).
      const names = verbs.map((x) => x.trim());
      const out = await host.sh([
        "sh",
        "-c",
        'for v in "$@"; do boxctl "$v" --help > /tmp/h || echo "$v exited $?"; head -n 1 /tmp/h; done',
        "sh",
        ...names,
      ]);
      const lines = out.trimEnd().split("\n");
      assert.equal(lines.length, names.length, out);
      for (const [i, v] of names.entries())
        assert.match(lines[i] ?? "", new RegExp(`^Usage: boxctl ${v} `));
      const a = await host.boxctl(["cutover-instance", "--help"]);
      assert.equal((await host.boxctl(["help", "cutover-instance"])).stdout, a.stdout);
      const typo = await host.boxctl(["cutover-instanse", "a", "b"]);
      assert.equal(typo.code, 2);
      assert.match(
        typo.stderr,
        /Unknown command 'cutover-instanse'\. Did you mean 'cutover-instance'\?/,
      );
      const bad = await host.boxctl(["start"]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /start: missing NAME/);
    });

    it("says a mutating verb needs root, and does not try sudo", async () => {
      const r = await host.exec([
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "boxctl",
        "poweroff",
        "system1",
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /'boxctl poweroff' changes the system and needs root/);
      assert.doesNotMatch(r.stderr, /sudo:/);
      const dry = await host.exec([
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "boxctl",
        "--version",
      ]);
      assert.equal(dry.code, 0);
    });

    it("boots a nested container that machinectl lists", async () => {
      await host.sh(["mkdir", "-p", "/var/lib/machines/g1"]);
      await host.sh([
        "tar",
        "--numeric-owner",
        "-xpf",
        "/srv/images/foo-0.1.tar",
        "-C",
        "/var/lib/machines/g1",
      ]);
      await host.sh(["systemctl", "start", "systemd-nspawn@g1"]);
      assert.match(await host.waitBooted("g1"), /^(running|degraded)$/);
      const list = await host.sh(["machinectl", "list", "--no-legend"]);
      assert.match(list, /^g1\s+container\s+systemd-nspawn/m);
      const release = await host.sh([
        "systemd-run",
        "-M",
        "g1",
        "--wait",
        "--pipe",
        "-q",
        "cat",
        "/etc/foo-release",
      ]);
      assert.match(release, /VERSION=0\.1/);
    });

    // One host per stable release; the upgrade test builds N+1 once for both.
    if (suite !== "sid") packageTests(ctx);
  });
}

it("has the guest images the later tests stage", () => {
  assert.ok(cachePath("guest-bookworm"));
});
