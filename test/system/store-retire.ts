// Part of store.test.ts: taking a machine off the host, with boxctl's
// delete-machine (whole, crash-safe, the name free again) and with the
// machinectl remove that README's "Known limits" warns of; and bringing an
// existing container to boxctl as README says, and back.
import assert from "node:assert/strict";
import { it } from "node:test";
import type { TestHost } from "../host/host.ts";
import { isActive, machineJson, ok, release, STORE } from "./instances-helpers.ts";

/** Its tests, in the caller's describe; other is a running machine that must stay untouched. */
export function retiring(getHost: () => TestHost, other: string): void {
  it("delete-machine retires a stopped machine: every trace of it goes, the name is free again", async () => {
    const host = getHost();
    const R = "r1";
    ok(await host.boxctl(["cutover-instance", R, "foo-0.1"]));
    ok(await host.boxctl(["cutover-instance", R, "foo-0.2"]));
    ok(await host.boxctl(["enable", R]));
    await host.sh([
      "sh",
      "-c",
      `printf '[Network]\\nVirtualEthernet=no\\n' >> /etc/systemd/nspawn/${R}.nspawn`,
    ]);
    const running = await host.boxctl(["delete-machine", R, "--yes"]);
    assert.equal(running.code, 1);
    assert.match(running.stderr, /r1 is running.*\n.*boxctl poweroff r1/);
    ok(await host.boxctl(["poweroff", R]));
    const asked = await host.boxctl(["delete-machine", R]);
    assert.equal(asked.code, 1);
    assert.match(asked.stderr, /needs confirmation/);
    assert.equal((await machineJson(host, R)).current, 2, "a refusal changes nothing");
    const doc = JSON.parse(ok(await host.boxctl(["delete-machine", R, "--yes", "--json"])).stdout);
    assert.deepEqual(
      [doc.changed, doc.wasEnabled, doc.instances.length, doc.keptMountPoint],
      [true, true, 2, false],
    );
    const gone = async (argv: string[]) => (await host.exec(argv)).code !== 0;
    assert.ok(await gone(["test", "-e", `${STORE}/machines/${R}`]), "no record, no instances");
    assert.ok(await gone(["test", "-e", `/var/lib/machines/${R}`]), "no mount point");
    assert.ok(await gone(["findmnt", "-n", `/var/lib/machines/${R}`]));
    assert.ok(await gone(["test", "-e", `/etc/systemd/system/var-lib-machines-${R}.mount`]));
    assert.equal(
      (
        await host.sh(["sh", "-c", `ls /etc/systemd/system | grep -c 'boxctl-view-${R}-' || true`])
      ).trim(),
      "0",
    );
    // The views are unmounted, not merely unlisted.
    assert.equal(
      (
        await host.exec(["sh", "-c", `grep -c /run/boxctl/views/${R}/ /proc/self/mountinfo`])
      ).stdout.trim(),
      "0",
    );
    assert.equal(
      (await host.exec(["systemctl", "is-enabled", `systemd-nspawn@${R}.service`])).stdout.trim(),
      "disabled",
    );
    assert.equal(
      await host.sh(["cat", `/etc/systemd/nspawn/${R}.nspawn`]),
      "[Network]\nVirtualEthernet=no\n",
      "the user's own settings stay",
    );
    assert.doesNotMatch(ok(await host.boxctl(["list"])).stdout, /^r1 /m);
    assert.ok(await isActive(host, other), "another machine is untouched");
    // The name is free: a new machine, with none of the old one's changes.
    ok(await host.exec(["rm", `/etc/systemd/nspawn/${R}.nspawn`]));
    ok(await host.boxctl(["cutover-instance", R, "foo-0.1"]));
    assert.deepEqual(
      (await machineJson(host, R)).instances.map((i) => i.gen),
      [1],
    );
    ok(await host.boxctl(["poweroff", R]));
    // Killed right after it unmounted and unwired the machine: the next command finishes it.
    const killed = await host.boxctl(["delete-machine", R, "--yes"], {
      env: { BOXCTL_CRASH_AFTER: "unwire" },
    });
    assert.equal(killed.code, 137, killed.stderr);
    assert.equal((await machineJson(host, R)).current, 1, "not forgotten yet");
    const rec = ok(await host.boxctl(["recover", R]));
    assert.match(rec.stderr, /r1: completing the interrupted delete-machine/);
    assert.ok(await gone(["test", "-e", `${STORE}/machines/${R}`]));
    assert.ok(await gone(["test", "-e", `/var/lib/machines/${R}`]));
    assert.ok(
      await gone(["test", "-e", `/etc/systemd/nspawn/${R}.nspawn`]),
      "nothing of the user's in it",
    );
    // A host process in its root: the unmount fails, the error says what to do, and asking again finishes.
    ok(await host.boxctl(["cutover-instance", R, "foo-0.1"]));
    ok(await host.boxctl(["poweroff", R]));
    // A plain process, not a unit: systemd would stop a unit whose working directory it unmounts.
    ok(
      await host.exec([
        "setsid",
        "-f",
        "sh",
        "-c",
        `cd /var/lib/machines/${R} && exec sleep 601 </dev/null >/dev/null 2>&1`,
      ]),
    );
    const busy = await host.boxctl(["delete-machine", R, "--yes", "--json"]);
    assert.equal(busy.code, 1, busy.stderr);
    const failed = JSON.parse(busy.stdout);
    assert.deepEqual([failed.changed, failed.step], [true, "disable"]);
    assert.match(
      failed.error.hint,
      /fuser -vm \/var\/lib\/machines\/r1; then run boxctl delete-machine r1 again/,
    );
    ok(await host.exec(["pkill", "-x", "-f", "sleep 601"]));
    const again = ok(await host.boxctl(["delete-machine", R, "--yes"]));
    assert.match(
      again.stdout,
      /^deleted machine r1 \(boxctl finished the delete-machine that was interrupted\)$/m,
    );
    assert.ok(await gone(["test", "-e", `${STORE}/machines/${R}`]));
    assert.ok(await gone(["test", "-e", `/var/lib/machines/${R}`]));
  });

  it("machinectl remove empties the current instance through the mount; status says so, fallback-instance goes back", async () => {
    const host = getHost();
    const X = "x1";
    ok(await host.boxctl(["cutover-instance", X, "foo-0.1"]));
    ok(await host.boxctl(["cutover-instance", X, "foo-0.2"]));
    ok(await host.boxctl(["poweroff", X]));
    // What README "Known limits" warns of, as this systemd does it.
    const rm = await host.exec(["machinectl", "remove", X]);
    assert.notEqual(rm.code, 0, "machined cannot remove the mount point itself");
    const status = JSON.parse(ok(await host.boxctl(["status", X, "--json"])).stdout);
    assert.equal(status.attention?.reason, "root-emptied", JSON.stringify(status.attention));
    assert.equal(status.attention?.settle, `boxctl fallback-instance ${X}`);
    ok(await host.boxctl(["fallback-instance", X]));
    assert.equal(await release(host, X), "0.1");
    ok(await host.boxctl(["poweroff", X]));
    ok(await host.boxctl(["delete-machine", X, "--yes"]));
  });

  it("an existing container moved to boxctl as README says keeps its settings, and goes back", async (t) => {
    const host = getHost();
    // machinectl rename and the settings' precedence are alike on 252 and 257 (checked on both).
    if (host.suite !== "bookworm") return t.skip("alike on 252 and 257; runs on bookworm");
    const sh = (cmd: string) => host.sh(["sh", "-c", cmd]);
    const [W, N] = ["/var/lib/machines", "/etc/systemd/nspawn"];
    // The container as it was: a tree of its own, and a Bind= in its settings.
    await sh(
      `mkdir -p ${W}/old1 /srv/old1data ${N} && tar -C ${W}/old1 -xpf /srv/images/foo-0.1.tar`,
    );
    await sh(
      `echo kept > /srv/old1data/f && printf '[Files]\\nBind=/srv/old1data:/srv/data\\n' > ${N}/old1.nspawn`,
    );
    // README, "An existing container", as written.
    await sh(
      `tar -C ${W}/old1 --numeric-owner --xattrs --xattrs-include='*' --acls -cpf /srv/old1.tar .`,
    );
    ok(await host.boxctl(["stage-image", "/srv/old1.tar", "--name", "old1-1"]));
    ok(await host.exec(["machinectl", "rename", "old1", "old1-old"]));
    assert.equal(await sh(`ls ${N} | grep old1`), "old1-old.nspawn\n", "the settings went along");
    // Settings copied beside the tree would no longer be read: refused, nothing made.
    await sh(`cp ${N}/old1-old.nspawn ${W}/old1.nspawn`);
    const refused = await host.boxctl(["cutover-instance", "old1", "old1-1"]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /\/var\/lib\/machines\/old1\.nspawn would be ignored/);
    assert.match(refused.stderr, /hint: move it there \(mv \/var\/lib\/machines\/old1\.nspawn /);
    assert.equal((await host.boxctl(["status", "old1"])).code, 1, "no machine was made");
    await sh(`rm ${W}/old1.nspawn && cp ${N}/old1-old.nspawn ${N}/old1.nspawn`);
    ok(await host.boxctl(["cutover-instance", "old1", "old1-1"]));
    assert.equal(ok(await host.boxctl(["shell", "old1", "cat", "/srv/data/f"])).stdout, "kept\n");
    // The way back, as README says.
    ok(await host.boxctl(["poweroff", "old1"]));
    ok(await host.boxctl(["delete-machine", "old1", "--yes"]));
    ok(await host.exec(["machinectl", "rename", "old1-old", "old1"]));
    await sh(`rm ${N}/old1-old.nspawn`);
    assert.equal(await sh(`cat ${N}/old1.nspawn`), "[Files]\nBind=/srv/old1data:/srv/data\n");
    ok(await host.exec(["machinectl", "remove", "old1"]));
    ok(await host.boxctl(["delete-image", "old1-1"]));
    await sh(`rm -f /srv/old1.tar ${N}/old1.nspawn`);
  });
}
