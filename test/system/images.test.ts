// Stage-image, list-images and delete-image inside real systemd
// test hosts: every archive format, the layouts, an archive that holds
// every kind of file metadata, and a hostile corpus that must leave the
// store and the host exactly as they were. Some groups of tests live in
// images-*.ts modules, registered here in order, so that they share this
// file's test hosts instead of booting their own.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { OS_PRETTY_NAME, STABLE_SUITES, TestHost } from "../host/host.ts";
import { imagesCtx, STORE, T } from "./images-helpers.ts";
import { hostileCorpus } from "./images-hostile.ts";
import { listAndDelete } from "./images-list.ts";
import { stagingRuns } from "./images-run.ts";
import { urlStaging } from "./images-url.ts";

for (const suite of STABLE_SUITES) {
  describe(`images on ${suite}`, () => {
    let host: TestHost;
    const ctx = imagesCtx(() => host);
    const { stage, sh, meta, listing } = ctx;

    before(async () => {
      host = await TestHost.boot(suite);
      // A few-MB OS tree for the slow compressors; foo-0.1 itself for the fast ones.
      await sh(`mkdir -p ${T}/mini/usr/lib && cp -a /etc ${T}/mini/ &&
        cp /usr/lib/os-release ${T}/mini/usr/lib/ && tar -C ${T}/mini -cf ${T}/mini.tar . &&
        cd ${T} && { gzip -1c mini.tar > mini-gz.tar.gz & zstd -1 -q -c /srv/images/foo-0.1.tar > foo-zst.tar.zst &
        xz -0 -c mini.tar > mini-xz.tar.xz & bzip2 -1 -c mini.tar > mini-bz.tar.bz2 & wait; } &&
        zstd -q -c mini.tar > disguised.tar.gz`);
    });
    after(() => host?.destroy());

    it("stages foo-0.1.tar and leaves the file alone", async () => {
      const before = await host.sh(["sha256sum", "/srv/images/foo-0.1.tar"]);
      const r = await stage(["/srv/images/foo-0.1.tar"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /^staged foo-0\.1: Debian GNU\/Linux 12 \(bookworm\), \d+M in [\d.]+s$/m,
      );
      assert.doesNotMatch(r.stderr, /staging foo-0\.1/, "no progress line when piped");
      // The debootstrap guest carries dbus's machine ID, which every machine would share.
      assert.match(
        r.stderr,
        /^boxctl: note: foo-0\.1 carries a machine ID \(\/var\/lib\/dbus\/machine-id\); .* gives each new instance its own$/m,
      );
      const m = await meta("foo-0.1");
      assert.equal(m.version, 1);
      assert.equal(m.name, "foo-0.1");
      assert.equal(m.os, "Debian GNU/Linux 12 (bookworm)");
      assert.equal(m.source, "foo-0.1.tar");
      assert.deepEqual(m.sharedMachineIds, ["/var/lib/dbus/machine-id"]);
      assert.equal(`${m.sha256}  /srv/images/foo-0.1.tar\n`, before);
      assert.ok(m.size > 100e6, String(m.size));
      assert.match(
        await host.sh(["cat", `${STORE}/images/foo-0.1/rootfs/etc/foo-release`]),
        /VERSION=0\.1/,
      );
      assert.equal((await host.sh(["stat", "-c", "%a", `${STORE}/images/foo-0.1`])).trim(), "700");
      assert.equal(await host.sh(["sha256sum", "/srv/images/foo-0.1.tar"]), before);
      assert.equal((await sh(`ls -A ${STORE}/staging`)).trim(), "");
    });

    it("refuses an image name that is already staged", async () => {
      const r = await stage(["/srv/images/foo-0.1.tar"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /image 'foo-0\.1' is already staged/);
      assert.match(
        r.stderr,
        /hint: delete it first \(boxctl delete-image foo-0\.1\), or .* --name/,
      );
      const bad = await stage(["/srv/images/foo-0.1.tar", "--name", "../x"]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /invalid image name '\.\.\/x'/);
    });

    it("stages from standard input with --name, and wants --name there", async () => {
      const r = await sh(`boxctl stage-image - --name from-stdin < ${T}/mini.tar`);
      assert.match(r, /^staged from-stdin: Debian GNU\/Linux/);
      await host.sh(["test", "-f", `${STORE}/images/from-stdin/rootfs/usr/lib/os-release`]);
      assert.equal((await meta("from-stdin")).source, "-");
      const no = await host.exec(["sh", "-c", `boxctl stage-image - < ${T}/mini.tar`]);
      assert.equal(no.code, 2);
      assert.match(no.stderr, /standard input needs --name NAME/);
    });

    it("stages gzip, zstd, xz and bzip2 archives, recognised by content", async () => {
      const os = OS_PRETTY_NAME[suite];
      const cases: [string, string, string][] = [
        ["mini-gz.tar.gz", "mini-gz", os],
        ["foo-zst.tar.zst", "foo-zst", "Debian GNU/Linux 12 (bookworm)"],
        ["mini-xz.tar.xz", "mini-xz", os],
        ["mini-bz.tar.bz2", "mini-bz", os],
        // zstd data under a .tar.gz name: the name is only used for the image name.
        ["disguised.tar.gz", "disguised", os],
      ];
      for (const [file, name, want] of cases) {
        const r = await stage(["-q", `${T}/${file}`]);
        assert.equal(r.code, 0, `${file}: ${r.stderr}`);
        assert.equal(r.stdout, "", "--quiet prints nothing");
        assert.equal((await meta(name)).os, want, file);
      }
      assert.match(
        await host.sh(["cat", `${STORE}/images/foo-zst/rootfs/etc/foo-release`]),
        /VERSION=0\.1/,
      );
    });

    it("checks --sha256 before the image appears", async () => {
      const sum = (await host.sh(["sha256sum", `${T}/mini.tar`])).slice(0, 64);
      const ok = await stage([
        `${T}/mini.tar`,
        "--sha256",
        sum.toUpperCase(),
        "--name",
        "mini-sum",
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((await meta("mini-sum")).sha256, sum);
      const store = await listing();
      const bad = await stage([`${T}/mini.tar`, "--sha256", "0".repeat(64)]);
      assert.equal(bad.code, 1);
      assert.match(
        bad.stderr,
        new RegExp(`sha256 mismatch for ${T}/mini.tar: it is ${sum}, not 0{64}`),
      );
      assert.equal(await listing(), store);
      const junk = await stage([`${T}/mini.tar`, "--sha256", "xyz"]);
      assert.equal(junk.code, 2);
    });

    it("uses a single top-level directory's OS tree from inside it", async () => {
      await sh(
        `mkdir -p ${T}/nest && cp -a ${T}/mini ${T}/nest/rootfs-1 && tar -C ${T}/nest -cf ${T}/nested.tar rootfs-1`,
      );
      const r = await stage([`${T}/nested.tar`]);
      assert.equal(r.code, 0, r.stderr);
      await host.sh(["test", "-e", `${STORE}/images/nested/rootfs/usr/lib/os-release`]);
      assert.notEqual(
        (await host.exec(["test", "-e", `${STORE}/images/nested/rootfs/rootfs-1`])).code,
        0,
      );
    });

    it("refuses an archive without an OS, unless --force", async () => {
      await sh(
        `mkdir -p ${T}/noos/data && echo hi > ${T}/noos/data/file && tar -C ${T}/noos -cf ${T}/noos.tar .`,
      );
      const store = await listing();
      const r = await stage([`${T}/noos.tar`]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /noos\.tar holds no OS: there is no etc\/os-release or usr\/lib\/os-release/,
      );
      assert.match(r.stderr, /hint: .*--force/);
      assert.equal(await listing(), store);
      const f = await stage([`${T}/noos.tar`, "--force"]);
      assert.equal(f.code, 0, f.stderr);
      assert.equal((await meta("noos")).os, null);
      assert.equal(await host.sh(["cat", `${STORE}/images/noos/rootfs/data/file`]), "hi\n");
    });

    it("refuses a docker save or OCI archive, and says how to export a root file system", async () => {
      await sh(`set -e; mkdir -p ${T}/dk/abc ${T}/oci/blobs/sha256
        tar -C ${T}/mini -cf ${T}/dk/abc/layer.tar . && echo '[{"Layers":["abc/layer.tar"]}]' > ${T}/dk/manifest.json
        tar -C ${T}/dk -cf ${T}/docker-save.tar . && cp ${T}/dk/abc/layer.tar ${T}/oci/blobs/sha256/0
        echo '{"imageLayoutVersion":"1.0.0"}' > ${T}/oci/oci-layout && echo '{}' > ${T}/oci/index.json
        tar -C ${T}/oci -cf ${T}/oci.tar .`);
      const store = await listing();
      for (const [file, what] of [
        ["docker-save.tar", "a docker save or podman save archive"],
        ["oci.tar", "an OCI image layout"],
      ]) {
        const r = await stage([`${T}/${file}`]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(
            `${file} is ${what}: a container engine's image in layers, not a root file system; nothing was staged\n  hint: export a container's files as one tar and stage that: docker export`,
          ),
        );
      }
      assert.equal(await listing(), store);
    });

    it("keeps ownership, modes, links, devices, FIFOs, ACLs and xattrs", async () => {
      // security.selinux: set only if the kernel lets this host set it (checked below).
      await sh(`set -e; d=${T}/fid; mkdir -p $d/etc $d/bin $d/dev $d/data
        echo 'PRETTY_NAME="Fidelity"' > $d/etc/os-release
        echo owned > $d/data/owned && chown 1234:5678 $d/data/owned
        cp /bin/true $d/bin/suid && chmod 4755 $d/bin/suid
        echo linked > $d/data/a && ln $d/data/a $d/data/b
        ln -s /etc/passwd $d/data/abs && ln -s ../etc/os-release $d/data/rel
        mknod $d/dev/null c 1 3 && mknod $d/dev/loop9 b 7 9 && mkfifo $d/data/fifo
        echo acl > $d/data/acl && setfacl -m u:1234:rwx $d/data/acl
        echo x > $d/data/xattr && setfattr -n user.boxctl -v hello $d/data/xattr
        cp /bin/true $d/bin/ping && setcap cap_net_raw+ep $d/bin/ping
        echo s > $d/data/selinux
        setfattr -n security.selinux -v system_u:object_r:bin_t:s0 $d/data/selinux 2>/dev/null && touch ${T}/selinux-ok || true
        tar --numeric-owner --xattrs --xattrs-include='*' --acls --selinux -C $d -cf ${T}/fid.tar .`);
      const r = await stage([`${T}/fid.tar`]);
      assert.equal(r.code, 0, r.stderr);
      const root = `${STORE}/images/fid/rootfs`;
      const stat = async (p: string, f: string) =>
        (await host.sh(["stat", "-c", f, `${root}/${p}`])).trim();
      assert.equal(await stat("data/owned", "%u:%g"), "1234:5678");
      assert.equal(await stat("bin/suid", "%a"), "4755");
      assert.equal(await stat("data/a", "%i %h"), await stat("data/b", "%i %h"));
      assert.equal(await stat("data/a", "%h"), "2");
      assert.equal(await stat("data/abs", "%N"), `'${root}/data/abs' -> '/etc/passwd'`);
      assert.equal(await stat("data/rel", "%N"), `'${root}/data/rel' -> '../etc/os-release'`);
      assert.equal(await stat("dev/null", "%F %t:%T"), "character special file 1:3");
      assert.equal(await stat("dev/loop9", "%F %t:%T"), "block special file 7:9");
      assert.equal(await stat("data/fifo", "%F"), "fifo");
      assert.match(await host.sh(["getfacl", "-n", `${root}/data/acl`]), /^user:1234:rwx$/m);
      assert.match(
        await host.sh(["getfattr", "-n", "user.boxctl", `${root}/data/xattr`]),
        /user\.boxctl="hello"/,
      );
      assert.match(await host.sh(["getcap", `${root}/bin/ping`]), /cap_net_raw[=+]ep/);
      if ((await host.exec(["test", "-e", `${T}/selinux-ok`])).code === 0) {
        assert.match(
          await host.sh(["getfattr", "-n", "security.selinux", `${root}/data/selinux`]),
          /system_u:object_r:bin_t:s0/,
        );
      } else {
        process.stderr.write(`note (${suite}): security.selinux cannot be set here; not checked\n`);
      }
    });

    hostileCorpus(ctx);

    stagingRuns(ctx);

    listAndDelete(ctx);

    // boxctl's own HTTP client, the same on every release: one host is enough.
    if (suite === "bookworm") urlStaging(ctx);
  });
}
