// The verbs past the original workflow, in instances.test.ts's sequence:
// cutovers that fail and fall back on their own, history, diff, --dry-run,
// a new machine whose first cutover fails, reset and delete-instance. A
// module, not a *.test.ts file, so that it runs on instances.test.ts's
// test hosts, on the state its earlier tests left, rather than booting more.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { CUTOVER_STEPS } from "../../src/plan/steps.ts";
import type { TestHost } from "../host/host.ts";
import {
  ensureSystem1,
  type HostCtx,
  isActive,
  machineJson,
  ok,
  release,
  STORE,
  stageBroken,
  tinyImage,
} from "./instances-helpers.ts";

export function cutoverVerbs(ctx: HostCtx): void {
  describe("the instance verbs past the workflow", () => {
    // The test file boots the host; this part makes the state it starts from
    // if an earlier part did not (when it runs alone, with --test-name-pattern).
    let host: TestHost;
    before(async () => {
      host = ctx.host;
      await ensureSystem1(host);
    });

    it("falls back on its own when the new image does not boot", async () => {
      await stageBroken(host);
      const r = await host.boxctl(["cutover-instance", "system1", "broken", "--timeout", "20"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /container system1 stopped while booting/);
      // What that run of the container's unit logged, its own lines only.
      assert.match(r.stderr, /^ {2}systemd-nspawn@system1\.service said:\n {4}Starting /m);
      assert.match(
        r.stderr,
        /^ {4}systemd-nspawn@system1\.service: Main process exited, code=exited, status=1/m,
      );
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

    it("falls back at once when the new container stops half-way through its boot", async () => {
      await stageBroken(host, "dies", "powers-off");
      // The timeout is long: the fallback must come from the unit going down, not from it.
      const r = await host.boxctl(["cutover-instance", "system1", "dies", "--timeout", "300"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /container system1 stopped while booting/);
      assert.match(r.stderr, /system1 is running on instance 1 \(foo-0\.1\) again/);
      assert.equal(await release(host), "0.1");
      ok(await host.boxctl(["delete-instance", "system1", "dies"]));
      ok(await host.boxctl(["delete-image", "dies"]));
    });

    it("refuses an image without systemd before it stops the container, and warns when staging it", async () => {
      // An OS tree whose init is not systemd.
      await tinyImage(host, "/tmp/nosd-1.0.tar", { init: "sbin/init" });
      const s = ok(await host.boxctl(["stage-image", "/tmp/nosd-1.0.tar"]), "stage-image");
      assert.match(
        s.stderr,
        /^boxctl: warning: nosd-1\.0 cannot boot as a boxctl container, so cutover-instance will refuse it: it has no systemd/m,
      );
      const leader = () => host.sh(["machinectl", "show", "system1", "-p", "Leader", "--value"]);
      const [before, pid] = [await machineJson(host), await leader()];
      const r = await host.boxctl(["cutover-instance", "system1", "nosd-1.0"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /^boxctl: image 'nosd-1\.0' cannot boot as a boxctl container: it has no systemd \(no executable \/usr\/lib\/systemd\/systemd\)/m,
      );
      assert.match(r.stderr, /hint: install systemd in the image/);
      assert.deepEqual(await machineJson(host), before, "nothing recorded");
      assert.equal(await leader(), pid, "system1 was never stopped");
      ok(await host.boxctl(["delete-image", "nosd-1.0"]));
    });

    it("refuses an image of a tree that nspawn's -U shifted on disk, and warns when staging it", async () => {
      // A tree as the stock unit's -U leaves it: every file owned by its uid range.
      await tinyImage(host, "/tmp/shifted-1.0.tar", { owner: 160169984 });
      const s = ok(await host.boxctl(["stage-image", "/tmp/shifted-1.0.tar"]), "stage-image");
      assert.match(s.stderr, /^boxctl: warning: shifted-1\.0 cannot boot as a boxctl container/m);
      const before = await machineJson(host);
      const r = await host.boxctl(["cutover-instance", "system1", "shifted-1.0"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /^boxctl: image 'shifted-1\.0' cannot boot as a boxctl container: its root directory is owned by uid 160169984, not 0/m,
      );
      assert.match(r.stderr, /hint: shift the tree back .*--private-users-ownership=chown/);
      assert.deepEqual(await machineJson(host), before, "nothing recorded");
      ok(await host.boxctl(["delete-image", "shifted-1.0"]));
    });

    it("refuses a store on overlayfs before it changes anything", async () => {
      // This test host's own root is overlayfs: a store there, with a tiny image.
      const env = { BOXCTL_STORE: "/root/ovl-store" };
      await tinyImage(host, "/tmp/tiny-1.0.tar");
      assert.equal((await host.sh(["stat", "-f", "-c", "%T", "/root"])).trim(), "overlayfs");
      ok(await host.boxctl(["stage-image", "/tmp/tiny-1.0.tar"], { env }), "stage-image");
      const r = await host.boxctl(["cutover-instance", "ovl1", "tiny-1.0"], { env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /^boxctl: the store \/root\/ovl-store is on overlayfs, which cannot hold an instance's changes/m,
      );
      assert.match(
        r.stderr,
        /hint: mount another file system \(ext4, xfs or btrfs\) at \/root\/ovl-store/,
      );
      assert.equal(await host.sh(["ls", "/root/ovl-store/machines"]).catch(() => ""), "");
      assert.equal((await host.exec(["test", "-e", "/var/lib/machines/ovl1"])).code, 1);
      await host.sh(["rm", "-rf", "/root/ovl-store", "/tmp/tiny-1.0.tar"]);
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
      assert.match(t.stdout, /^GEN\s+IMAGE\s+CREATED\s+LAST ACTIVE\s+CHANGES\s+USERS\s+MARK/);
      assert.match(t.stdout, /^1\s+foo-0\.1\s+\S+\s+now\s+\S+\s+private \(\d+\)\s+current$/m);
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
      assert.match(
        r.stdout,
        // The default policy carries identity: the restart is split around carry-final.
        /^umount \/var\/lib\/machines\/system1\nsystemctl start var-lib-machines-system1\.mount\n# system1: stop: .*\nsystemctl stop systemd-nspawn@system1\.service\n# system1: carry-final: .*\n# system1: restart: .*\nsystemctl restart systemd-nspawn@system1\.service$/m,
      );
      assert.match(r.stdout, /^# would carry identity: .*\/etc\/machine-id/m);
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
      // status shows the failed unit's last run, as systemctl status would.
      const st = JSON.parse((await host.boxctl(["status", "system2", "--json"])).stdout);
      assert.equal(st.unit.activeState, "failed");
      assert.ok(
        st.unit.log.some((l: string) => /Main process exited, code=exited, status=1/.test(l)),
        st.unit.log.join("\n"),
      );
      assert.match((await host.boxctl(["status", "system2"])).stdout, /^ {2}Log: +\S/m);
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
        /Discard all changes \(.*\) of system1's instance 1 \(foo-0\.1\), its machine ID, SSH host keys and hostname included, restarting it\? \[y\/N\]/,
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
  });
}
