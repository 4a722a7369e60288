// Issue 2: the built bundle runs on each distribution's own node, and the
// test hosts really run systemd, machinectl and a nested container.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { cachePath, SUITES, SYSTEMD_VERSION, TestHost } from "../host/host.ts";

for (const suite of SUITES) {
  describe(`foundation on ${suite}`, () => {
    let host: TestHost;
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
      assert.match(node, suite === "bookworm" ? /^v18\./ : /^v20\./);
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
  });
}

it("has the guest images the later tests stage", () => {
  assert.ok(cachePath("guest-bookworm"));
});
