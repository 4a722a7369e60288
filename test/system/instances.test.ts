// Instances. The original tool's whole workflow, and every verb
// and failure path of cutover-instance, fallback-instance, reset,
// delete-instance, history and diff, on a real systemd in each test host.
// The middle of the sequence lives in instances-verbs.ts and
// instances-hazards.ts, registered here in order, so that it shares this
// file's test hosts instead of booting its own.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SUITES, sleep, TestHost } from "../host/host.ts";
import { hazards } from "./instances-hazards.ts";
import { isActive, machineJson, mounted, ok, release, STORE, stage } from "./instances-helpers.ts";
import { cutoverVerbs } from "./instances-verbs.ts";

const UPPER = (gen: number) => `${STORE}/machines/system1/instances/${gen}/upper`;

for (const suite of SUITES) {
  describe(`instances on ${suite}`, () => {
    let host: TestHost;
    const ctx = {
      get host() {
        return host;
      },
    };
    before(async () => {
      host = await TestHost.boot(suite, { store: "tmpfs" });
      await stage(host, "foo-0.1");
      await stage(host, "foo-0.2");
    });
    after(() => host?.destroy());

    it("runs the original workflow: cutover, poweroff, start, cutover, fallback", async () => {
      // A setting the user wrote before boxctl ever ran must survive.
      await host.sh(["mkdir", "-p", "/etc/systemd/nspawn"]);
      await host.sh([
        "sh",
        "-c",
        "printf '# mine\\n[Exec]\\nEnvironment=MINE=1\\n' > /etc/systemd/nspawn/system1.nspawn",
      ]);
      ok(await host.boxctl(["cutover-instance", "system1", "foo-0.1"]), "first cutover");
      assert.equal(await release(host), "0.1");
      ok(await host.inMachine("system1", ["sh", "-c", "echo hi > /root/marker"]));
      const settings = await host.sh(["cat", "/etc/systemd/nspawn/system1.nspawn"]);
      assert.match(settings, /^# mine$/m);
      assert.match(settings, /^Environment=MINE=1$/m);
      assert.match(settings, /^\[Exec\]\n(#.*\n)?PrivateUsers=\d+:65536$/m);

      ok(await host.boxctl(["poweroff", "system1"]), "boxctl poweroff");
      assert.equal(await isActive(host), false);
      ok(await host.boxctl(["start", "system1"]), "boxctl start");
      await host.waitBooted("system1");
      assert.equal(await release(host), "0.1");

      ok(await host.boxctl(["cutover-instance", "system1", "foo-0.2"]), "second cutover");
      assert.equal(await release(host), "0.2");
      assert.notEqual((await host.inMachine("system1", ["cat", "/root/marker"])).code, 0);

      const fb = ok(await host.boxctl(["fallback-instance", "system1"]), "fallback");
      assert.match(fb.stdout, /running on instance 1 \(foo-0\.1\)/);
      assert.equal(await release(host), "0.1");
      assert.equal((await host.inMachine("system1", ["cat", "/root/marker"])).stdout, "hi\n");
      const m = await machineJson(host);
      assert.deepEqual([m.current, m.fallback], [1, 2]);
    });

    it("mounts a real overlay, without copying the image up", async () => {
      const mnt = await mounted(host);
      assert.equal(mnt.fstype, "overlay");
      assert.equal(mnt.upper, UPPER(1));
      const kb = Number((await host.sh(["du", "-s", "-k", UPPER(2)])).split(/\s/)[0]);
      assert.ok(kb < 10 * 1024, `upper of a booted instance is ${kb} KiB, want < 10 MiB`);
    });

    it("a second fallback returns to the newer instance (it swaps, never walks back)", async () => {
      ok(await host.boxctl(["fallback-instance", "system1"]));
      assert.equal(await release(host), "0.2");
      assert.deepEqual(
        [(await machineJson(host)).current, (await machineJson(host)).fallback],
        [2, 1],
      );
      ok(await host.boxctl(["fallback-instance", "system1"]));
      assert.equal(await release(host), "0.1");
    });

    it("works with plain machinectl and systemctl, without boxctl", async () => {
      ok(await host.exec(["machinectl", "poweroff", "system1"]));
      for (let i = 0; i < 100 && (await isActive(host)); i++) await sleep(200);
      assert.equal(await isActive(host), false);
      // The tests start system1 more often than systemd's default start
      // limit (5 in 10 s) allows; a sysadmin would not.
      await host.exec(["systemctl", "reset-failed", "systemd-nspawn@system1"]);
      ok(await host.exec(["machinectl", "start", "system1"]));
      await host.waitBooted("system1");
      assert.equal((await host.inMachine("system1", ["cat", "/root/marker"])).stdout, "hi\n");
      ok(await host.exec(["systemctl", "stop", "systemd-nspawn@system1"]));
      ok(await host.exec(["umount", "/var/lib/machines/system1"]));
      // systemd learns of an unmount from the mount table, and not at once: a
      // start issued before it has noticed finds the mount unit still active,
      // mounts nothing, and nspawn refuses the empty directory (4 to 10 times
      // in 20 tries here, on 252, 257 and 262). Wait, as boxctl does after its own.
      const mountUnit = "var-lib-machines-system1.mount";
      for (
        let i = 0;
        i < 500 && (await host.exec(["systemctl", "is-active", "-q", mountUnit])).code === 0;
        i++
      )
        await sleep(10);
      await host.exec(["systemctl", "reset-failed", "systemd-nspawn@system1"]);
      ok(await host.exec(["systemctl", "start", "systemd-nspawn@system1"]));
      await host.waitBooted("system1");
      assert.equal((await mounted(host)).upper, UPPER(1));
      assert.match(await host.sh(["machinectl", "list", "--no-legend"]), /^system1\s+container/m);
    });

    cutoverVerbs(ctx);

    hazards(ctx);

    it("comes back on the right instance after a host reboot", async () => {
      ok(await host.exec(["machinectl", "enable", "system1"]));
      await host.reboot();
      await host.waitBooted("system1");
      assert.equal(await release(host), "0.1");
      assert.equal((await host.inMachine("system1", ["cat", "/root/marker"])).stdout, "hi\n");
      const mnt = await mounted(host);
      assert.deepEqual([mnt.fstype, mnt.upper], ["overlay", UPPER(1)]);
    });
  });
}
