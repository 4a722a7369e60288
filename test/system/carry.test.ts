// Carrying identity, /etc and named paths across a cutover (issue 19), on
// a real systemd in each test host, with images made here from foo-0.1:
// base-1 and base-2 differ in /etc exactly where the merge cases need it.
// The container plants hostile links; none may lead the carry outside it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { STABLE_SUITES, TestHost } from "../host/host.ts";
import { ok, STORE, upSince } from "./instances-helpers.ts";

const M = "carry1";
const UPPER = (gen: number) => `${STORE}/machines/${M}/instances/${gen}/upper`;
const ROOT = `/var/lib/machines/${M}`;

/** Everything about a tree that a carry must keep: names, types, modes, owners, links, sizes, contents, xattrs, capabilities. */
const MANIFEST = `cd "$1" && find . -printf '%p %y %m %U %G %n %l\\n' | sort &&
  find . -type f -exec sha256sum {} + | sort &&
  find . -type f -exec getfattr -h -d -m - --absolute-names {} + 2>/dev/null | grep -v '^$' | sort`;

/** Names, types, metadata and change times of every entry: any write into the tree changes it. */
const FINGERPRINT = `cd "$1" && find . -printf '%p %y %m %U %G %s %l %T@ %C@\\n' | sort | sha256sum`;

/** base-1 and base-2 from foo-0.1's tarball; base-2 changed two files of base-1's /etc. */
async function makeImages(host: TestHost): Promise<void> {
  const script = `set -e
    d=$(mktemp -d); tar -xpf /srv/images/foo-0.1.tar -C "$d"
    e="$d/etc"
    for f in edit del conflict imgonly; do echo v1 > "$e/carry-$f"; done
    mkdir -m 755 "$e/carry-dir"; echo in > "$e/carry-dir/file"
    ln -s target-a "$e/carry-link"
    mkdir "$e/carry-opq"; echo img > "$e/carry-opq/img"
    tar -cf /tmp/base-1.tar -C "$d" .
    echo v2 > "$e/carry-conflict"; echo v2 > "$e/carry-imgonly"
    tar -cf /tmp/base-2.tar -C "$d" .
    rm -rf "$d"`;
  await host.sh(["sh", "-c", script]);
  for (const img of ["base-1", "base-2"])
    ok(await host.boxctl(["stage-image", `/tmp/${img}.tar`]), img);
}

const inM = async (host: TestHost, script: string) =>
  ok(await host.inMachine(M, ["sh", "-c", script]), script).stdout;

for (const suite of STABLE_SUITES) {
  describe(`carry on ${suite}`, () => {
    let host: TestHost;
    before(async () => {
      host = await TestHost.boot(suite, { store: "tmpfs" });
      await makeImages(host);
    });
    after(() => host?.destroy());

    it("keeps identity, merges /etc, copies a named path exactly, and never follows a planted link", async () => {
      ok(await host.boxctl(["cutover-instance", M, "base-1"]), "first cutover");
      ok(await host.boxctl(["set-carry", M, "identity,etc,/var/lib/app"]), "set-carry");
      // Identity, the /etc cases, and hostile links, made inside the container.
      await inM(
        host,
        `set -e
        echo web1 > /etc/hostname
        # Not the ID nspawn derives for an empty machine-id, which would be the same either way.
        echo 0123456789abcdef0123456789abcdef > /etc/machine-id
        mkdir -p /etc/ssh; head -c 64 /dev/urandom > /etc/ssh/ssh_host_ed25519_key
        chmod 600 /etc/ssh/ssh_host_ed25519_key; echo pub > /etc/ssh/ssh_host_ed25519_key.pub
        echo local > /etc/carry-edit; echo local > /etc/carry-conflict; echo new > /etc/carry-added
        rm /etc/carry-del; chmod 700 /etc/carry-dir; ln -sfn target-b /etc/carry-link
        rm -r /etc/carry-opq; mkdir /etc/carry-opq; echo mine > /etc/carry-opq/mine
        useradd -m -s /bin/sh alice
        ln -s /etc/shadow /etc/evil-abs; ln -s ../../../../../../../etc/shadow /etc/evil-rel
        mkdir -p /var/lib/app/sub; i=0
        while [ $i -lt 1000 ]; do echo $i > /var/lib/app/sub/f$i; i=$((i+1)); done
        ln /var/lib/app/sub/f1 /var/lib/app/hard; mkfifo /var/lib/app/fifo
        ln -s / /var/lib/app/root-abs; ln -s ../../../../../.. /var/lib/app/root-rel
        ln /etc/shadow /etc/evil-hard
        ln -s /etc /var/lib/app/sub/etc-link`,
      );
      // Attributes the guest cannot set (no attr or libcap tools in it), set from the host through its mount.
      await host.sh(["setfattr", "-n", "user.carry", "-v", "yes", `${ROOT}/var/lib/app/sub/f2`]);
      await host.sh(["setcap", "cap_net_bind_service+ep", `${ROOT}/var/lib/app/sub/f3`]);
      await host.sh(["setfacl", "-m", "u:1234:r", `${ROOT}/var/lib/app/sub/f4`]);
      // A file written just before the cutover starts.
      await inM(host, "echo late > /etc/carry-late");
      const id = await inM(host, "cat /etc/machine-id");
      assert.equal(id, "0123456789abcdef0123456789abcdef\n");
      const key = await inM(host, "sha256sum /etc/ssh/ssh_host_ed25519_key");
      const before = await host.sh(["sh", "-c", MANIFEST, "sh", `${ROOT}/var/lib/app`]);
      const hostShadow = await host.sh(["sha256sum", "/etc/shadow"]);

      const res = ok(await host.boxctl(["cutover-instance", M, "base-2", "--json"]), "cutover");
      const doc = JSON.parse(res.stdout);
      assert.deepEqual(doc.carry.etc.conflicts, ["/etc/carry-conflict"]);
      assert.match(res.stderr, /conflict in \/etc\/carry-conflict/);
      assert.deepEqual(doc.carry.paths, ["/var/lib/app"]);
      assert.ok(doc.carry.identity.includes("/etc/ssh/ssh_host_ed25519_key"), doc.carry.identity);

      assert.equal(await inM(host, "cat /etc/machine-id"), id);
      assert.equal(await inM(host, "sha256sum /etc/ssh/ssh_host_ed25519_key"), key);
      assert.equal(await inM(host, "cat /etc/hostname"), "web1\n");
      assert.equal(
        await inM(host, "cat /etc/carry-edit /etc/carry-added /etc/carry-late"),
        "local\nnew\nlate\n",
      );
      assert.equal(await inM(host, "test ! -e /etc/carry-del && echo gone"), "gone\n");
      assert.equal(await inM(host, "stat -c %a /etc/carry-dir"), "700\n");
      assert.equal(await inM(host, "readlink /etc/carry-link"), "target-b\n");
      assert.equal(await inM(host, "cat /etc/carry-imgonly"), "v2\n", "the new image's change");
      assert.equal(
        await inM(host, "cat /etc/carry-conflict /etc/carry-conflict.boxctl-new"),
        "local\nv2\n",
      );
      assert.match(
        await inM(host, "id alice; getent shadow alice | cut -d: -f1"),
        /uid=1000\(alice\)[\s\S]*\nalice\n/,
      );
      // Links are copied as links; the host's files are neither read nor written.
      assert.equal(await host.sh(["readlink", `${UPPER(2)}/etc/evil-abs`]), "/etc/shadow\n");
      assert.equal(
        await host.sh(["readlink", `${UPPER(2)}/var/lib/app/root-rel`]),
        "../../../../../..\n",
      );
      assert.equal(await host.sh(["sha256sum", "/etc/shadow"]), hostShadow);
      const now = await host.sh(["sh", "-c", MANIFEST, "sh", `${ROOT}/var/lib/app`]);
      assert.equal(now, before, "the named path arrives byte-identical, with all metadata");
      assert.match(now, /user\.carry="yes"/);
      assert.match(now, /security\.capability=/);
      assert.match(now, /system\.posix_acl_access=/);
      assert.equal(
        await inM(host, "ls /etc/carry-opq"),
        "mine\n",
        "a replaced directory stays replaced",
      );
      // Owners as the host sees them: the machine's uid range (private users).
      assert.match(now, /\.\/hard f 644 (\d+) \1 2 \n/, "hard links stay linked");
      assert.equal(await inM(host, "stat -c %h /etc/evil-hard"), "2\n");
    });

    it("leaves the old instance untouched, so that fallback returns exactly to it", async () => {
      ok(await host.boxctl(["fallback-instance", M]), "fallback to 1");
      ok(await host.boxctl(["poweroff", M]), "poweroff");
      const print = await host.sh(["sh", "-c", FINGERPRINT, "sh", UPPER(1)]);
      ok(await host.boxctl(["cutover-instance", M, "base-2"]), "cutover from a stopped machine");
      assert.equal(await host.sh(["sh", "-c", FINGERPRINT, "sh", UPPER(1)]), print);
      ok(await host.boxctl(["fallback-instance", M]), "fallback");
      assert.equal(await inM(host, "cat /etc/carry-conflict"), "local\n");
    });

    it("carries what the container wrote up to its stop, after the carry step too", async () => {
      // A service that rewrites /etc/carry-tick every 10 ms until the container stops.
      ok(
        await host.inMachine(M, [
          "systemd-run",
          "--unit=ticker",
          "sh",
          "-c",
          "i=0; while :; do i=$((i+1)); echo $i > /etc/carry-tick.new; mv /etc/carry-tick.new /etc/carry-tick; sleep 0.01; done",
        ]),
      );
      const res = ok(
        await host.boxctl(["cutover-instance", M, "base-2", "--carry", "etc", "--verbose"]),
      );
      assert.match(res.stderr, /changed after the carry step; carrying again/);
      // Instance 1 (current since the fallback) is quiet now: its last value is the one to carry.
      const oldTick = await host.sh(["cat", `${UPPER(1)}/etc/carry-tick`]);
      assert.ok(Number(oldTick) > 1, oldTick);
      assert.equal(await inM(host, "cat /etc/carry-tick"), oldTick);
      ok(await host.boxctl(["fallback-instance", M]), "back to the instance with the changes");
    });

    it("carries nothing with --carry none", async () => {
      const id = await inM(host, "cat /etc/machine-id");
      const res = ok(
        await host.boxctl(["cutover-instance", M, "base-2", "--carry", "none", "--json"]),
      );
      assert.equal(JSON.parse(res.stdout).carry, null);
      assert.notEqual(await inM(host, "cat /etc/machine-id"), id);
      assert.notEqual(await inM(host, "cat /etc/hostname"), "web1\n");
      assert.equal(
        await inM(host, "test ! -e /etc/ssh/ssh_host_ed25519_key && echo none"),
        "none\n",
      );
      ok(await host.boxctl(["fallback-instance", M]), "back to the instance with the changes");
    });

    it("refuses a named path that is a mount point inside the container, before anything stops", async () => {
      // Mounted by the container itself (machinectl bind refuses a container with a user namespace).
      await inM(host, "mkdir -p /var/lib/bound && mount -t tmpfs tmpfs /var/lib/bound");
      const since = await upSince(host, M);
      const res = await host.boxctl([
        "cutover-instance",
        M,
        "base-2",
        "--carry",
        "identity,/var/lib/bound",
      ]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(
        res.stderr,
        /cannot carry \/var\/lib\/bound: \/var\/lib\/bound is a mount point inside carry1/,
      );
      assert.match(res.stderr, /Bind= in \/etc\/systemd\/nspawn\/carry1\.nspawn/);
      assert.equal(await upSince(host, M), since, "the container was never stopped");
    });

    it("refuses a named path under a planted symlink before anything stops", async () => {
      await inM(
        host,
        "mkdir -p /root/secret && echo s > /root/secret/data && rm -rf /srv && ln -s /root /srv",
      );
      await host.sh(["sh", "-c", "mkdir -p /root/secret && echo host > /root/secret/data"]);
      const since = await host.sh([
        "systemctl",
        "show",
        "-P",
        "ActiveEnterTimestampMonotonic",
        `systemd-nspawn@${M}.service`,
      ]);
      const res = await host.boxctl([
        "cutover-instance",
        M,
        "base-2",
        "--carry",
        "identity,/srv/secret",
      ]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(
        res.stderr,
        /cannot carry \/srv\/secret: in the old instance \/srv is a symlink/,
      );
      const after = await host.sh([
        "systemctl",
        "show",
        "-P",
        "ActiveEnterTimestampMonotonic",
        `systemd-nspawn@${M}.service`,
      ]);
      assert.equal(after, since, "the container was never stopped");
      const missing = await host.boxctl([
        "cutover-instance",
        M,
        "base-2",
        "--carry",
        "/var/lib/nothing",
      ]);
      assert.equal(missing.code, 1);
      assert.match(
        missing.stderr,
        /cannot carry \/var\/lib\/nothing: it does not exist in the old instance/,
      );
      assert.equal(
        (await host.exec(["findmnt", `/run/boxctl/carry/${M}`])).code,
        1,
        "no view left mounted",
      );
    });

    it("keeps a read-only container read-only, with its machine ID, as README says (ReadOnly=yes after the first boot)", async (t) => {
      // nspawn's ReadOnly= is alike on 252 and 257; what boxctl adds (its settings lines, the carry) is one code path.
      if (suite !== "bookworm") return t.skip("alike on 252 and 257; runs on bookworm");
      const R = "ro1";
      const inR = (script: string) => host.inMachine(R, ["sh", "-c", script]);
      ok(await host.boxctl(["cutover-instance", R, "base-1"]));
      const id = ok(await inR("cat /etc/machine-id")).stdout;
      await host.sh([
        "sh",
        "-c",
        `printf '[Files]\\nReadOnly=yes\\n' >> /etc/systemd/nspawn/${R}.nspawn`,
      ]);
      // The cutover's new instance: read-only, with the machine ID carried from the first.
      ok(await host.boxctl(["cutover-instance", R, "base-2"]));
      const write = await inR("touch /written");
      assert.notEqual(write.code, 0, "the root is read-only");
      assert.match(write.stderr, /Read-only file system/);
      assert.equal(ok(await inR("cat /etc/machine-id")).stdout, id);
    });
  });
}
