// What goes wrong around the verbs, late in instances.test.ts's sequence:
// two commands at once, an image deleted under a running cutover, a corrupt
// machine.json, a root the host keeps busy, a start that fails on any
// instance, and a fallback whose image was deleted by hand. A module, not a *.test.ts
// file, so that it runs on instances.test.ts's test hosts rather than booting more.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { sleep, type TestHost } from "../host/host.ts";
import { GERMAN } from "./images-helpers.ts";
import {
  ensureSystem1,
  type HostCtx,
  isActive,
  machineJson,
  ok,
  release,
  STORE,
  upSince,
} from "./instances-helpers.ts";

export function hazards(ctx: HostCtx): void {
  describe("hazards around the verbs", () => {
    // The test file boots the host; this part makes the state it starts from
    // if an earlier part did not (when it runs alone, with --test-name-pattern).
    let host: TestHost;
    before(async () => {
      host = ctx.host;
      await ensureSystem1(host);
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

    it("gives machines made at the same moment uid ranges of their own", async (t) => {
      // The claim is a file created with O_EXCL in /run: the kernel's, alike everywhere.
      if (host.suite !== "bookworm") return t.skip("the same on every systemd; runs on bookworm");
      const names = ["race1", "race2", "race3"];
      const made = await Promise.all(
        names.map((n) => host.boxctl(["cutover-instance", n, "foo-0.1"])),
      );
      for (const r of made) ok(r);
      const bases = await Promise.all(
        names.map(async (n) => {
          const s = JSON.parse(ok(await host.boxctl(["status", n, "--json"])).stdout);
          assert.deepEqual(s.privateUsers.sharedWith, [], n);
          return s.privateUsers.base as number;
        }),
      );
      assert.equal(new Set(bases).size, names.length, bases.join(" "));
      for (const n of names) {
        ok(await host.boxctl(["poweroff", n]));
        ok(await host.boxctl(["delete-machine", n, "--yes"]));
      }
      assert.equal(
        (
          await host.exec(["sh", "-c", "cat /run/boxctl/bases/* | grep -c '^race' || true"])
        ).stdout.trim(),
        "0",
        "each deleted machine's claim went with it",
      );
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

    it("refuses a busy root before the container goes down", async () => {
      const before = await machineJson(host);
      const up0 = await upSince(host);
      // A host process whose working directory is inside the container's root.
      await host.sh([
        "setsid",
        "-f",
        "sh",
        "-c",
        "cd /var/lib/machines/system1 && exec sleep 577 </dev/null >/dev/null 2>&1",
      ]);
      try {
        // In a German locale: boxctl must still recognise umount's "target is busy".
        const r = await host.boxctl(["cutover-instance", "system1", "foo-0.2"], { env: GERMAN });
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /\/var\/lib\/machines\/system1 could not be unmounted; it is busy/);
        assert.match(
          r.stderr,
          /hint: find what keeps it busy with: fuser -vm \/var\/lib\/machines\/system1/,
        );
        assert.match(r.stderr, /system1 is running on instance 1 \(foo-0\.1\) again/);
        assert.equal(await upSince(host), up0, "the container was never stopped");
        assert.equal(await isActive(host), true);
        assert.equal(await release(host), "0.1");
        const m = await machineJson(host);
        assert.deepEqual([m.current, m.fallback], [before.current, before.fallback]);
      } finally {
        await host.exec(["pkill", "-x", "-f", "sleep 577"]);
      }
    });

    it("a cause outside both instances fails the cutover and the way back: each said once, and start is what is left", async () => {
      const before = await machineJson(host);
      const settings = "/etc/systemd/nspawn/system1.nspawn";
      await host.sh(["cp", settings, "/root/system1.nspawn.bak"]);
      // A bind mount whose source is gone fails every start of system1, on any instance.
      await host.sh(["sh", "-c", `printf '[Files]\\nBind=/gone-bx\\n' >> ${settings}`]);
      try {
        const r = await host.boxctl(["cutover-instance", "system1", "foo-0.2"]);
        assert.equal(r.code, 1, r.stderr);
        // The new instance's failed start, then the way back's: each run quoted once.
        assert.equal(r.stderr.match(/ said:\n/g)?.length, 2, r.stderr);
        // nspawn's own line about it (262 says "Failed to clone"), in each. From
        // 257 on journald may store it without a unit (its sender exits at once;
        // unit-log.ts finds it).
        assert.equal(r.stderr.match(/Failed to (stat|clone) \/gone-bx/g)?.length, 2, r.stderr);
        assert.match(r.stderr, /and going back to instance \d+ \(foo-0\.1\) failed too/);
        assert.match(
          r.stderr,
          /hint: system1 is back on instance \d+ \(foo-0\.1\) but did not start; fix the cause, then: boxctl start system1$/m,
        );
        assert.equal(await isActive(host), false);
        assert.equal(
          (await host.exec(["test", "-e", `${STORE}/machines/system1/intent.json`])).code,
          1,
          "nothing left for recover",
        );
      } finally {
        await host.sh(["cp", "/root/system1.nspawn.bak", settings]);
      }
      ok(await host.boxctl(["start", "system1"]), "the hint's command");
      assert.equal(await release(host), "0.1");
      const m = await machineJson(host);
      assert.deepEqual([m.current, m.fallback], [before.current, before.fallback]);
    });

    it("a fallback whose image was deleted by hand: status says so, and fallback-instance refuses before anything stops", async (t) => {
      // boxctl's own check, before systemd is asked anything: one systemd is enough.
      if (host.suite !== "bookworm") return t.skip("the same on every systemd; runs on bookworm");
      const M = "gone1";
      ok(await host.boxctl(["stage-image", "/srv/images/foo-0.1.tar", "--name", "foo-gone"]));
      ok(await host.boxctl(["cutover-instance", M, "foo-gone"]));
      ok(await host.boxctl(["cutover-instance", M, "foo-0.2"]));
      await host.sh(["rm", "-rf", `${STORE}/images/foo-gone`]);
      const since = await upSince(host, M);
      const status = ok(await host.boxctl(["status", M]));
      assert.match(
        status.stdout,
        /Fallback: +generation 1, image foo-gone, .*; its image is gone from the store: stage it again \(boxctl stage-image FILE --name foo-gone\) to fall back\n/,
      );
      const r = await host.boxctl(["fallback-instance", M]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /^boxctl: cannot fallback-instance: gone1's instance 1 is on image foo-gone, which is gone from the store/,
      );
      assert.match(r.stderr, /hint: stage it again .*--name foo-gone\), then run this again$/m);
      assert.equal(await upSince(host, M), since, "the container was not restarted");
      assert.equal(await release(host, M), "0.2");
      ok(await host.boxctl(["poweroff", M]));
      ok(await host.boxctl(["delete-machine", M, "--yes"]));
    });

    it("goes back on Ctrl-C mid-cutover and exits 130", async () => {
      const before = await machineJson(host);
      // A real Ctrl-C: script gives boxctl a terminal, and the ^C written to it
      // reaches the terminal's foreground process group once boxctl says it is
      // waiting for the boot; --check keeps that step busy while it lands.
      // (SIGTERM and a hang-up: test/unit/plan.test.ts.)
      const r = await host.exec([
        "bash",
        "-c",
        `set -o pipefail; : >/tmp/ctrl-c.out
       (for i in $(seq 600); do grep -q 'wait-booted:' /tmp/ctrl-c.out && break; sleep 0.05; done
        printf '\\003') |
       script -qec "boxctl cutover-instance system1 foo-0.2 --check 'sleep 3'" /dev/null |
       tee /tmp/ctrl-c.out`,
      ]);
      assert.equal(r.code, 130, r.stdout);
      assert.match(r.stdout, /boxctl: interrupted; stopping after this step/);
      assert.match(
        r.stdout,
        /interrupted by the user before step '(remount|restart|wait-booted|commit)'/,
      );
      assert.match(
        r.stdout,
        /was interrupted; system1 is running on instance 1 \(foo-0\.1\) again/,
      );
      assert.equal(await release(host), "0.1");
      const m = await machineJson(host);
      assert.deepEqual([m.current, m.fallback], [before.current, before.fallback]);
      assert.equal(
        (await host.exec(["test", "-e", `${STORE}/machines/system1/intent.json`])).code,
        1,
      );
    });
  });
}
