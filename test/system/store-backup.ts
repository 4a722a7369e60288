// Part of store.test.ts: README's "Back up and restore", as written: a
// store copied with GNU tar while its machines are stopped, the disk lost
// (every machine deleted, the store emptied), and the copy restored.
import assert from "node:assert/strict";
import { it } from "node:test";
import type { TestHost } from "../host/host.ts";
import { ok, STORE } from "./instances-helpers.ts";

const TAR = `tar --numeric-owner --xattrs --xattrs-include='*' --acls`;

/** Its test, in the caller's describe; m is one of the host's machines, written to before the backup. */
export function backingUp(getHost: () => TestHost, m: string): void {
  it("a store backed up and restored as README says brings every machine back as it was", async () => {
    const host = getHost();
    const sh = (cmd: string) => host.sh(["sh", "-c", cmd]);
    const machines = (await sh(`ls ${STORE}/machines`)).trim().split("\n");
    assert.ok(machines.includes(m), machines.join(" "));
    const settings = `/etc/systemd/nspawn/${m}.nspawn`;
    ok(await host.boxctl(["start", m]));
    ok(await host.boxctl(["shell", m, "--", "sh", "-c", "echo kept > /root/backed-up"]));
    for (const n of machines) ok(await host.boxctl(["poweroff", n]));
    await sh(`printf '[Network]\\nVirtualEthernet=no\\n' >> ${settings}`);
    const records = () =>
      sh(machines.map((n) => `cat ${STORE}/machines/${n}/machine.json`).join(";"));
    const du = () => sh(`du -s -B1 -x ${STORE} | cut -f1`);
    const [before, bytes] = [await records(), await du()];
    // README, as written (the backup on a tmpfs of its own).
    await sh("mkdir -p /backup && mount -t tmpfs -o size=2g tmpfs /backup");
    await sh(`${TAR} -cpf /backup/boxctl-store.tar -C ${STORE} . && cp -p ${settings} /backup/`);
    // The disk is lost: the machines, their units and settings, the store.
    for (const n of machines) ok(await host.boxctl(["delete-machine", n, "--yes"]));
    // delete-machine leaves the admin's own lines; a lost /etc would not.
    await sh(`rm ${settings} && find ${STORE} -mindepth 1 -delete`);
    await sh(
      `${TAR} -xpf /backup/boxctl-store.tar -C ${STORE} && cp -p /backup/${m}.nspawn /etc/systemd/nspawn/`,
    );
    assert.equal(await records(), before, "every record as it was");
    assert.equal(await du(), bytes, "the images' shared files are still shared");
    const flagged = ok(await host.boxctl(["list"])).stdout;
    for (const n of machines)
      assert.match(flagged, new RegExp(`! ${n}: the mount unit the next boot uses names nothing`));
    for (const n of machines) ok(await host.boxctl(["recover", n]));
    ok(await host.boxctl(["start", m]));
    assert.equal(ok(await host.boxctl(["shell", m, "cat", "/root/backed-up"])).stdout, "kept\n");
    const s = JSON.parse(ok(await host.boxctl(["status", m, "--json"])).stdout);
    assert.equal(s.attention, null);
    assert.deepEqual(s.privateUsers.sharedWith, []);
    const restored = await sh(`cat ${settings}`);
    assert.match(restored, /VirtualEthernet=no/);
    assert.match(restored, new RegExp(`PrivateUsers=${s.privateUsers.base}:65536`));
    ok(await host.boxctl(["poweroff", m]));
    await sh("umount /backup");
  });
}
