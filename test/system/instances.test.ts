// Issue 4: instances. The original tool's whole workflow, and every verb
// and failure path of cutover-instance, fallback-instance, reset,
// delete-instance, history and diff, on a real systemd in each test host.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CUTOVER_STEPS } from "../../src/instances/plan.ts";
import { SUITES, sleep, TestHost } from "../host/host.ts";
import {
  isActive,
  machineJson,
  mounted,
  ok,
  release,
  STORE,
  stage,
  stageBroken,
} from "./instances-helpers.ts";

const UPPER = (gen: number) => `${STORE}/machines/system1/instances/${gen}/upper`;

for (const suite of SUITES) {
  describe(`instances on ${suite}`, () => {
    let host: TestHost;
    before(async () => {
      host = await TestHost.boot(suite);
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
      assert.match(settings, /^\[Exec\]\n(#.*\n)?PrivateUsers=no$/m);

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
      await host.exec(["systemctl", "reset-failed", "systemd-nspawn@system1"]);
      ok(await host.exec(["systemctl", "start", "systemd-nspawn@system1"]));
      await host.waitBooted("system1");
      assert.equal((await mounted(host)).upper, UPPER(1));
      assert.match(await host.sh(["machinectl", "list", "--no-legend"]), /^system1\s+container/m);
    });

    it("falls back on its own when the new image does not boot", async () => {
      await stageBroken(host);
      const r = await host.boxctl(["cutover-instance", "system1", "broken", "--timeout", "20"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /falling back to instance 1 \(foo-0\.1\)/);
      assert.match(r.stderr, /system1 is running on instance 1 \(foo-0\.1\) again/);
      assert.equal(await isActive(host), true);
      assert.equal(await release(host), "0.1");
      assert.equal((await host.inMachine("system1", ["cat", "/root/marker"])).stdout, "hi\n");
      const m = await machineJson(host);
      assert.deepEqual([m.current, m.fallback], [1, 2], "the old fallback is kept");
      assert.equal(m.lastOperation?.result, "rolled-back");
      assert.ok(
        m.instances.some((i) => i.image === "broken"),
        "the failed instance is kept",
      );
    });

    it("falls back on its own when --check fails, and passes a good --check", async () => {
      const bad = await host.boxctl([
        "cutover-instance",
        "system1",
        "foo-0.2",
        "--check",
        "grep -q VERSION=0.1 /etc/foo-release",
      ]);
      assert.equal(bad.code, 1, bad.stderr);
      assert.match(bad.stderr, /--check .* failed inside system1/);
      assert.equal(await release(host), "0.1");
      const good = await host.boxctl([
        "cutover-instance",
        "system1",
        "foo-0.2",
        "--check",
        "test -f /etc/foo-release && grep -q 0.2 /etc/foo-release",
      ]);
      ok(good, "cutover with a passing --check");
      assert.equal(await release(host), "0.2");
      ok(await host.boxctl(["fallback-instance", "system1"]));
      assert.equal(await release(host), "0.1");
    });

    it("changes nothing for an unknown image", async () => {
      const before = await host.sh(["cat", `${STORE}/machines/system1/machine.json`]);
      const dirs = await host.sh(["ls", `${STORE}/machines/system1/instances`]);
      const r = await host.boxctl(["cutover-instance", "system1", "nosuch-1.0"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /image 'nosuch-1\.0' is not staged/);
      assert.equal(await host.sh(["cat", `${STORE}/machines/system1/machine.json`]), before);
      assert.equal(await host.sh(["ls", `${STORE}/machines/system1/instances`]), dirs);
      assert.equal(await isActive(host), true);
    });

    it("lists instances with history, as a table and as JSON", async () => {
      const t = ok(await host.boxctl(["history", "system1"]));
      assert.match(t.stdout, /^GEN\s+IMAGE\s+CREATED\s+LAST ACTIVE\s+CHANGES\s+MARK/);
      assert.match(t.stdout, /^1\s+foo-0\.1\s+\S+\s+now\s+\S+\s+current$/m);
      const j = JSON.parse(ok(await host.boxctl(["history", "system1", "--json"])).stdout);
      assert.equal(j.version, 1);
      assert.equal(j.current, 1);
      assert.equal(j.running, true);
      const one = j.instances.find((i: { gen: number }) => i.gen === 1);
      assert.equal(one.current, true);
      assert.equal(typeof one.changesBytes, "number");
      assert.ok(j.instances.some((i: { fallback: boolean }) => i.fallback));
    });

    it("lists added, modified and deleted paths with diff", async () => {
      const script =
        "set -e; echo x > /root/added; echo y >> /etc/hostname; rm /etc/issue; rm -rf /usr/share/doc/apt; mkdir /usr/share/doc/apt; echo n > /usr/share/doc/apt/new";
      ok(await host.inMachine("system1", ["sh", "-c", script]));
      const j = JSON.parse(ok(await host.boxctl(["diff", "system1", "--json"])).stdout);
      assert.equal(j.version, 1);
      assert.equal(j.gen, 1);
      assert.ok(j.added.includes("/root/added"));
      assert.ok(j.added.includes("/root/marker"));
      assert.ok(j.added.includes("/usr/share/doc/apt/new"));
      assert.ok(j.modified.includes("/etc/hostname"));
      assert.ok(j.deleted.includes("/etc/issue"));
      assert.ok(
        j.deleted.includes("/usr/share/doc/apt/copyright"),
        "opaque dir hides the image's files",
      );
      assert.ok(!j.modified.includes("/usr/share/doc/apt/new"));
      const t = ok(await host.boxctl(["diff", "system1", "--instance", "2"]));
      assert.match(t.stdout, /^CHANGE\s+PATH$/m);
      assert.match(t.stdout, /added, \d+ modified, \d+ deleted in instance 2 \(foo-0\.2\)/);
    });

    it("shows the steps with --dry-run and changes nothing", async () => {
      const before = await host.sh(["cat", `${STORE}/machines/system1/machine.json`]);
      const r = ok(await host.boxctl(["cutover-instance", "system1", "foo-0.2", "--dry-run"]));
      const shown = [...r.stdout.matchAll(/^# system1: ([a-z-]+): /gm)].map((x) => x[1]);
      assert.deepEqual(shown, [...CUTOVER_STEPS]);
      assert.match(r.stdout, /^systemctl restart var-lib-machines-system1\.mount$/m);
      assert.equal(await host.sh(["cat", `${STORE}/machines/system1/machine.json`]), before);
      assert.equal(await release(host), "0.1");
    });

    it("leaves a new machine stopped, with no current instance, when its first cutover fails", async () => {
      const r = await host.boxctl(["cutover-instance", "system2", "broken", "--timeout", "20"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /system2 is left stopped with no current instance/);
      const m = await machineJson(host, "system2");
      assert.equal(m.current, null);
      assert.equal(m.instances.length, 1);
      assert.equal(await isActive(host, "system2"), false);
      assert.notEqual(
        (await host.exec(["test", "-e", "/etc/systemd/system/var-lib-machines-system2.mount"]))
          .code,
        0,
      );
      ok(await host.boxctl(["cutover-instance", "system2", "foo-0.1"]), "second try");
      assert.equal(await release(host, "system2"), "0.1");
      ok(await host.exec(["systemctl", "stop", "systemd-nspawn@system2"]));
    });

    it("asks on a terminal before resetting", async () => {
      const no = await host.exec(["script", "-qec", "boxctl reset system1 foo-0.1", "/dev/null"], {
        input: "n\n",
      });
      assert.match(
        no.stdout,
        /Discard all changes \(.*\) of system1's instance 1 \(foo-0\.1\), restarting it\? \[y\/N\]/,
      );
      assert.match(no.stdout, /nothing reset/);
      assert.equal((await host.inMachine("system1", ["cat", "/root/marker"])).stdout, "hi\n");
    });

    it("resets an instance after confirmation, restarting it", async () => {
      const refused = await host.boxctl(["reset", "system1", "foo-0.1"]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /--yes/);
      assert.equal((await host.inMachine("system1", ["cat", "/root/marker"])).stdout, "hi\n");
      ok(await host.boxctl(["reset", "system1", "foo-0.1", "--yes"]), "reset --yes");
      assert.equal(await isActive(host), true);
      assert.notEqual((await host.inMachine("system1", ["cat", "/root/marker"])).code, 0);
      assert.equal(await release(host), "0.1");
      ok(await host.inMachine("system1", ["sh", "-c", "echo hi > /root/marker"]));
    });

    it("deletes instances, but never the current one", async () => {
      const cur = await host.boxctl(["delete-instance", "system1", "foo-0.1"]);
      assert.equal(cur.code, 1);
      assert.match(cur.stderr, /is system1's current instance/);
      const m = await machineJson(host);
      const broken = m.instances.find((i) => i.image === "broken");
      ok(await host.boxctl(["delete-instance", "system1", "broken"]));
      assert.equal(
        await host
          .exec(["test", "-e", `${STORE}/machines/system1/instances/${broken?.gen}`])
          .then((r) => r.code),
        1,
      );
      const fb = ok(await host.boxctl(["delete-instance", "system1", "foo-0.2"]));
      assert.match(fb.stdout, /no fallback instance now/);
      assert.equal((await machineJson(host)).fallback, null);
      assert.equal(await release(host), "0.1");
    });

    it("lets one mutating command run at a time", async () => {
      ok(await host.boxctl(["cutover-instance", "system1", "foo-0.2"]));
      ok(
        await host.exec([
          "systemd-run",
          "--unit=bx-slow",
          "--collect",
          "--",
          "boxctl",
          "fallback-instance",
          "system1",
          "--check",
          "sleep 3",
        ]),
      );
      let pid = "";
      for (let i = 0; i < 100; i++) {
        const l = await host.exec(["cat", "/run/boxctl/lock/system1.lock"]);
        if (/fallback-instance/.test(l.stdout)) pid = l.stdout.split(" ")[0] ?? "";
        if (pid) break;
        await sleep(100);
      }
      const busy = await host.boxctl(["fallback-instance", "system1"]);
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, new RegExp(`system1 is busy: fallback-instance by pid ${pid}`));
      ok(await host.boxctl(["recover", "system1", "--wait"]), "recover --wait");
      assert.equal(await release(host), "0.1");
    });

    it("never deletes an image that a running cutover is about to use", async () => {
      ok(await host.boxctl(["stage-image", "/srv/images/foo-0.2.tar", "--name", "foo-spare"]));
      ok(
        await host.exec([
          "systemd-run",
          "--unit=bx-slow-spare",
          "--collect",
          "--",
          "boxctl",
          "cutover-instance",
          "spare",
          "foo-spare",
          "--check",
          "sleep 3",
        ]),
      );
      // Earlier cutovers left their pids in images.lock: wait for this one's.
      let pid = "";
      for (let i = 0; i < 100 && !pid; i++) {
        const mine = (await host.exec(["cat", "/run/boxctl/lock/spare.lock"])).stdout.split(" ")[0];
        const store = (await host.exec(["cat", "/run/boxctl/images.lock"])).stdout.split(" ")[0];
        if (mine && mine === store) pid = mine;
        else await sleep(100);
      }
      assert.ok(pid, "the cutover of spare never took the image store lock");
      const busy = await host.boxctl(["delete-image", "foo-spare"]);
      assert.equal(busy.code, 1, busy.stdout);
      assert.match(
        busy.stderr,
        new RegExp(`the image store is busy: cutover-instance by pid ${pid}`),
      );
      // --wait queues behind the cutover, which by then uses the image: refused, naming it.
      const queued = await host.boxctl(["delete-image", "foo-spare", "--wait"]);
      assert.equal(queued.code, 1);
      assert.match(queued.stderr, /image 'foo-spare' is in use by spare \(gen 1/);
      assert.match(
        (await host.inMachine("spare", ["cat", "/etc/foo-release"])).stdout,
        /VERSION=0\.2/,
      );
      ok(await host.boxctl(["poweroff", "spare"]));
    });

    it("names the file when machine.json is corrupt", async () => {
      const path = `${STORE}/machines/system1/machine.json`;
      await host.sh(["cp", path, "/root/machine.json.bak"]);
      await host.sh(["sh", "-c", `echo '{"version": 1, "name": ' > ${path}`]);
      try {
        const r = await host.boxctl(["history", "system1"]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`state file ${path} is corrupt`));
        const c = await host.boxctl(["fallback-instance", "system1"]);
        assert.equal(c.code, 1);
        assert.match(c.stderr, /is corrupt/);
        // list still lists the others, keeps system1 as boxctl's, names the file and fails.
        const l = await host.boxctl(["list", "--json"]);
        assert.equal(l.code, 1);
        assert.match(l.stderr, new RegExp(`state file ${path} is corrupt`));
        const byName = new Map<string, { managed: boolean; state: string; error: string | null }>(
          JSON.parse(l.stdout).machines.map((m: { name: string }) => [m.name, m]),
        );
        assert.equal(byName.get("system2")?.error, null, l.stdout);
        assert.equal(byName.get("system1")?.managed, true, l.stdout);
        assert.equal(byName.get("system1")?.state, "running", l.stdout);
        assert.match(byName.get("system1")?.error ?? "", /is corrupt/);
        const table = await host.boxctl(["list"]);
        assert.match(table.stdout, /^system1 +running +\S+ +\(unreadable\)/m);
      } finally {
        await host.sh(["cp", "/root/machine.json.bak", path]);
      }
    });

    it("goes back to the old instance when systemd cannot unmount a busy root", async () => {
      const before = await machineJson(host);
      // A host process whose working directory is inside the container's root.
      await host.sh([
        "setsid",
        "-f",
        "sh",
        "-c",
        "cd /var/lib/machines/system1 && exec sleep 577 </dev/null >/dev/null 2>&1",
      ]);
      try {
        const r = await host.boxctl(["cutover-instance", "system1", "foo-0.2"]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /\/var\/lib\/machines\/system1 could not be unmounted; it is busy/);
        assert.match(
          r.stderr,
          /hint: find what keeps it busy with: fuser -vm \/var\/lib\/machines\/system1/,
        );
        assert.match(r.stderr, /system1 is running on instance 1 \(foo-0\.1\) again/);
        assert.equal(await isActive(host), true);
        assert.equal(await release(host), "0.1");
        const m = await machineJson(host);
        assert.deepEqual([m.current, m.fallback], [before.current, before.fallback]);
      } finally {
        await host.exec(["pkill", "-x", "-f", "sleep 577"]);
      }
    });

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
