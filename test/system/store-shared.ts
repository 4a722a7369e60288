// Identical files stored once across images (issue 15), in store.test.ts's
// host: five versions of foo-0.1 made here, each differing from the last
// by a few files (content, a mode, an xattr, an mtime, a new file), staged
// with boxctl. The store holds about one image plus the differences; after
// a sibling is deleted every version is still exactly its archive and
// boots; a write in one container never reaches another image or container.
import assert from "node:assert/strict";
import { it } from "node:test";
import type { TestHost } from "../host/host.ts";
import { ok, STORE } from "./instances-helpers.ts";

const V = [1, 2, 3, 4, 5];
const img = (v: number) => `sv-${v}`;
const ROOT = (v: number) => `${STORE}/images/${img(v)}/rootfs`;
/** A tmpfs of its own, which keeps every kind of xattr (as the store's does). */
const WORK = "/var/lib/sv-work";

/**
 * What a tree's archive says about each entry but the content (which tar
 * --compare checks): type, mode, owner, size, mtime to the nanosecond, link
 * target, and every xattr (ACLs, capabilities). Link counts are left out on
 * purpose: sharing raises them.
 */
const LISTING = `cd "$1" && find . -printf '%p %y %m %U %G %s %T@ %l\\n' | LC_ALL=C sort &&
  getfattr -R -h -d -m - -e hex . | awk '/^# file: /{f=substr($0,9);next} NF{print f" "$0}' | LC_ALL=C sort`;

/** Version v's tree, from v-1's (each kind of change a sharing must see), its archive and its listing. */
const VERSIONS = `set -e
  d=${WORK}/tree; mkdir -p $d
  t="--numeric-owner --xattrs --xattrs-include=* --acls"
  tar $t -xpf /srv/images/foo-0.1.tar -C $d
  for v in ${V.join(" ")}; do
    echo "version $v" > $d/etc/sv-version
    head -c 2000000 /dev/urandom > $d/usr/share/sv-data-$v
    echo "edit $v" >> $d/etc/issue
    if [ $v = 2 ]; then
      chmod 600 $d/etc/issue.net
      cp -p $d/etc/debian_version $d/etc/debian_version.twin
    fi
    [ $v = 3 ] && setfattr -n user.sv -v three $d/etc/host.conf
    if [ $v = 4 ]; then
      setfacl -m u:1234:r $d/etc/hostname
      touch -d '2001-02-03 04:05:06.789' $d/etc/shells
    fi
    tar $t -C $d -cf ${WORK}/v$v.tar .
    sh -c "$0" listing $d > ${WORK}/listing-$v
  done
  rm -rf $d`;

const duOf = async (host: TestHost, dirs: string[]) => {
  const out = await host.sh(["du", "-s", "-c", "-B1", "-x", ...dirs]);
  return Number(out.trim().split("\n").pop()?.split(/\s/)[0]);
};

export function sharedFiles(getHost: () => TestHost, machine: string): void {
  const sh = (script: string) => getHost().sh(["sh", "-c", script], { timeoutMs: 300_000 });
  const ino = async (path: string) => (await sh(`stat -c %i ${path}`)).trim();

  it("five versions differing by a few files take about one image plus the differences", async () => {
    const host = getHost();
    await sh(`mkdir -p ${WORK} && mount -t tmpfs -o size=1500m tmpfs ${WORK}`);
    ok(await host.exec(["sh", "-c", VERSIONS, LISTING], { timeoutMs: 300_000 }), "versions");
    const staged = [];
    for (const v of V) {
      const r = ok(
        await host.boxctl(["stage-image", `${WORK}/v${v}.tar`, "--name", img(v), "--json"]),
      );
      staged.push(JSON.parse(r.stdout).shared);
    }
    // --json says what each stage stored once: the first version shares
    // with foo-0.1 (the same files), the fifth with the four before it.
    for (const [k, s] of staged.entries()) {
      assert.ok(s.linked > 0.9 * s.files, `${img(V[k] as number)}: ${JSON.stringify(s)}`);
      assert.ok(s.bytes > 100e6, `${img(V[k] as number)}: ${JSON.stringify(s)}`);
    }
    const one = await duOf(host, [ROOT(1)]);
    const five = await duOf(
      host,
      V.map((v) => `${STORE}/images/${img(v)}`),
    );
    process.stderr.write(
      `note: five versions take ${five} bytes, one ${one} (${(five / one).toFixed(3)})\n`,
    );
    assert.ok(five < one * 1.3, `five versions ${five} against one ${one}`);
    // What a version holds alone is what it changed: every other file of
    // it (but for names boxctl does not index) is a link into another image.
    const alone = async (v: number) =>
      (
        await sh(
          `cd ${ROOT(v)} && find . -type f -links 1 -size +0 -printf '%P\\n' | LC_ALL=C sort`,
        )
      )
        .split("\n")
        .filter((p) => p && /^[\x20-\x5b\x5d-\x7e]+$/.test(p));
    assert.deepEqual(await alone(5), ["etc/issue", "etc/sv-version", "usr/share/sv-data-5"]);
    // v4's own changes (an ACL, an mtime, its data file) live on in v5.
    assert.deepEqual(await alone(4), ["etc/issue", "etc/sv-version"]);
    // Unchanged: one inode everywhere, also with foo-0.1 (same archive bytes).
    const bash = (v: number) => ino(`${ROOT(v)}/usr/bin/bash`);
    for (const v of V) assert.equal(await bash(v), await bash(1), `usr/bin/bash of ${img(v)}`);
    assert.equal(await ino(`${STORE}/images/foo-0.1/rootfs/usr/bin/bash`), await bash(1));
    // The archive's own hard links (perl, perl5.36.0) stay one file per image, shared as one.
    const perl = await ino(`${ROOT(1)}/usr/bin/perl`);
    for (const v of [1, 5])
      for (const name of ["perl", "perl5.36.0"])
        assert.equal(await ino(`${ROOT(v)}/usr/bin/${name}`), perl, `${img(v)} ${name}`);
    // Each change keeps its own inode: content, mode, xattr, ACL, mtime.
    const differs = async (a: number, b: number, rel: string) =>
      assert.notEqual(await ino(`${ROOT(a)}/${rel}`), await ino(`${ROOT(b)}/${rel}`), rel);
    await differs(1, 2, "etc/issue");
    await differs(1, 2, "etc/issue.net");
    await differs(2, 3, "etc/host.conf");
    await differs(3, 4, "etc/hostname");
    await differs(3, 4, "etc/shells");
    // Two equal files of one image stay two inodes (a write to one must not show in the other).
    assert.notEqual(
      await ino(`${ROOT(3)}/etc/debian_version.twin`),
      await ino(`${ROOT(3)}/etc/debian_version`),
    );
    assert.equal(await ino(`${ROOT(3)}/etc/host.conf`), await ino(`${ROOT(5)}/etc/host.conf`));
  });

  it("after a sibling is deleted, every version is exactly its archive and boots", async () => {
    const host = getHost();
    ok(await host.boxctl(["delete-image", img(3)]));
    for (const v of V.filter((x) => x !== 3)) {
      // Every file's content, mode, owner, size, mtime and link target...
      const cmp = await host.exec([
        "tar",
        "--numeric-owner",
        "-d",
        "-f",
        `${WORK}/v${v}.tar`,
        "-C",
        ROOT(v),
      ]);
      assert.equal(cmp.code, 0, `${img(v)} against its archive: ${cmp.stdout}${cmp.stderr}`);
      // ...and every entry's metadata and xattrs, directories' mtimes too.
      const want = await sh(`cat ${WORK}/listing-${v}`);
      assert.equal(want.includes("user.sv="), v >= 3, `v${v}'s listing has its xattr`);
      const got = ok(await host.exec(["sh", "-c", LISTING, "listing", ROOT(v)])).stdout;
      assert.equal(got, want, `${img(v)} is its archive`);
    }
    for (const v of V.filter((x) => x !== 3)) {
      ok(await host.boxctl(["cutover-instance", machine, img(v)]), `cutover to ${img(v)}`);
      const r = ok(await host.inMachine(machine, ["cat", "/etc/sv-version"]));
      assert.equal(r.stdout, `version ${v}\n`);
    }
  });

  it("a write in one container never shows in another image or container", async () => {
    const host = getHost();
    // machine runs sv-5 now; other1 runs foo-0.1, which shares the file.
    const rel = "usr/share/base-files/motd";
    const shared = `${ROOT(5)}/${rel}`;
    assert.equal(await ino(shared), await ino(`${STORE}/images/foo-0.1/rootfs/${rel}`));
    const before = await sh(`sha256sum < ${shared}`);
    const links = ok(await host.inMachine(machine, ["stat", "-c", "%h", `/${rel}`])).stdout;
    assert.ok(Number(links) > 1, `a container sees the link count (${links.trim()})`);
    ok(await host.inMachine(machine, ["sh", "-c", `echo changed >> /${rel}`]));
    assert.match(ok(await host.inMachine(machine, ["cat", `/${rel}`])).stdout, /changed\n$/);
    for (const dir of [...V.filter((x) => x !== 3).map(ROOT), `${STORE}/images/foo-0.1/rootfs`])
      assert.equal(await sh(`sha256sum < ${dir}/${rel}`), before, dir);
    for (const other of await otherRunning(host, machine)) {
      const r = ok(await host.inMachine(other, ["sha256sum", `/${rel}`]));
      assert.equal(r.stdout.split(" ")[0], before.split(" ")[0], `in ${other}`);
    }
  });
}

/** The other machines running on this host (store.test.ts keeps one on foo-0.1). */
async function otherRunning(host: TestHost, machine: string): Promise<string[]> {
  const out = await host.sh(["machinectl", "list", "--no-legend", "--no-pager"]);
  const names = out
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n && n !== machine);
  assert.ok(names.length > 0, "another container runs");
  return names;
}
