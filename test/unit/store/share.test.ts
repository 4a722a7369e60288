// store/share-index.ts and store/share.ts: identical files stored once
// across images, their key and index, and the matching and linking a
// stage does before its image becomes visible.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { paths, relocate } from "../../../src/base/paths.ts";
import type { Runner } from "../../../src/host/runner.ts";
import { shareIdentical } from "../../../src/store/share.ts";
import {
  fileKey,
  forEachIndexed,
  INDEX_FILE,
  indexText,
  parseXattrDump,
  shareableName,
  UNKNOWN_XATTRS,
  xattrDigest,
} from "../../../src/store/share-index.ts";

describe("identical files stored once (share-index, share)", () => {
  const facts = {
    sha256: "a".repeat(64),
    size: 5n,
    mode: 0o100644,
    uid: 0,
    gid: 0,
    mtimeNs: 1_700_000_000_123_456_789n,
    xattrs: "-",
    links: 1,
  };

  it("keys on content and every bit of metadata a hard link shares", () => {
    const k = fileKey(facts);
    assert.equal(k, `${"a".repeat(64)} 5 100644 0 0 1700000000123456789 - 1`);
    for (const other of [
      { sha256: "b".repeat(64) },
      { size: 6n },
      { mode: 0o100600 },
      { uid: 1 },
      { gid: 1 },
      { mtimeNs: facts.mtimeNs + 1n },
      { xattrs: xattrDigest(["user.x=0x31"]) },
      { links: 2 },
    ])
      assert.notEqual(
        fileKey({ ...facts, ...other }),
        k,
        JSON.stringify(other, (_, v) => (typeof v === "bigint" ? String(v) : v)),
      );
  });

  it("indexes only names getfattr never quotes, and no . or .. component", () => {
    for (const ok of ["etc/a b", "usr/lib/x=y", "a/.hidden", "a/...", "~/#%"])
      assert.ok(shareableName(ok), ok);
    for (const no of ["a\\b", "a\nb", "a\tb", "ü", "a//b", "/abs", "a/../b", "./a", "a/", ""])
      assert.ok(!shareableName(no), JSON.stringify(no));
  });

  it("round-trips an index, skipping bad lines, other versions and bad names", () => {
    const k = fileKey(facts);
    const text = indexText([
      { key: k, rel: "etc/a b" },
      { key: k, rel: "usr/x" },
    ]);
    const got: string[][] = [];
    assert.ok(
      forEachIndexed(`${text}short line\n${k} ../escape\n${k} a\\b`, (key, rel) =>
        got.push([key, rel]),
      ),
    );
    assert.deepEqual(got, [
      [k, "etc/a b"],
      [k, "usr/x"],
    ]);
    assert.equal(
      forEachIndexed(text.replace("boxctl-files 2", "boxctl-files 1"), () => assert.fail()),
      false,
    );
  });

  it("reads getfattr's dump: quoted names, attributes in any order, twice the same name", () => {
    const root = "/s/rootfs";
    const dump = [
      `# file: ${root}/a b`,
      "user.x=0x31",
      "system.posix_acl_access=0x02",
      "",
      `# file: ${root}/n\\012l`,
      "user.x=0x31",
      "",
      `# file: ${root}/e\\134f`,
      "user.y=0x32",
      "",
      `# file: ${root}`,
      "user.root=0x31",
      "",
      `# file: ${root}/dup`,
      "user.x=0x31",
      "",
      `# file: ${root}/dup`,
      "",
    ].join("\n");
    const m = parseXattrDump(dump, root);
    assert.equal(m.get("a b"), xattrDigest(["system.posix_acl_access=0x02", "user.x=0x31"]));
    assert.equal(m.get("n\nl"), xattrDigest(["user.x=0x31"]));
    assert.equal(m.get("e\\f"), xattrDigest(["user.y=0x32"]));
    assert.equal(m.get("dup"), UNKNOWN_XATTRS);
    assert.equal(m.has(""), false);
    assert.equal(xattrDigest([]), "-");
  });

  describe("shareIdentical on a real tree", () => {
    let dir: string;
    let dump = "";
    const r = {
      dryRun: false,
      run: async (argv: readonly string[], o: { input?: string } = {}) => {
        if (argv[0] === "getfattr") return { code: 0, stdout: dump, stderr: "" };
        // The directory times go through GNU tar itself.
        if (argv[0] === "tar") {
          const t = spawnSync("tar", argv.slice(1), { input: o.input, encoding: "utf8" });
          assert.equal(t.status, 0, t.stderr);
          return { code: 0, stdout: t.stdout, stderr: t.stderr };
        }
        throw new Error(`unexpected ${argv.join(" ")}`);
      },
    } as unknown as Runner;
    const root = (name: string) => join(paths.image(name), "rootfs");
    const put = (base: string, rel: string, text: string, mode = 0o644, mtime = 1_600_000_000) => {
      mkdirSync(dirname(join(base, rel)), { recursive: true });
      writeFileSync(join(base, rel), text, { mode });
      chmodSync(join(base, rel), mode);
      utimesSync(join(base, rel), mtime, mtime);
    };
    /** Stages NAME from files, as stageFrom would: share, then rename into images/. */
    const stageTree = async (
      name: string,
      files: [string, string, number?, number?][],
      digests?: Map<string, { sha256: string; size: number }>,
    ) => {
      const stageDir = join(dir, "staging", name);
      const rootfs = join(stageDir, "rootfs");
      mkdirSync(rootfs, { recursive: true });
      for (const [rel, text, mode, mtime] of files) put(rootfs, rel, text, mode, mtime);
      // A directory's time the archive set, finer than node can set one.
      execFileSync("touch", ["-m", "-d", "@1500000000.123456789", join(rootfs, "etc")]);
      const res = await shareIdentical(r, { stageDir, rootfs, name, digests, stop: () => false });
      mkdirSync(paths.images(), { recursive: true });
      renameSync(stageDir, paths.image(name));
      return res;
    };
    const ino = (name: string, rel: string) => statSync(join(root(name), rel)).ino;

    before(() => {
      dir = mkdtempSync(join(tmpdir(), "boxctl-share-"));
      relocate(dir);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("links what is identical in every respect, and nothing else", async () => {
      const base: [string, string, number?, number?][] = [
        ["etc/same", "same\n"],
        ["etc/mode", "mode\n"],
        ["etc/mtime", "mtime\n"],
        ["etc/content", "one\n"],
        ["etc/xattr", "x\n"],
        ["etc/twin-a", "twin\n"],
        ["etc/twin-b", "twin\n"],
        ["empty", ""],
      ];
      const a = await stageTree("a", base);
      assert.deepEqual([a.files, a.linked], [7, 0]);
      dump = `# file: ${join(dir, "staging", "b", "rootfs")}/etc/xattr\nuser.x=0x31\n`;
      const b = await stageTree("b", [
        ["etc/same", "same\n"],
        ["etc/mode", "mode\n", 0o600],
        ["etc/mtime", "mtime\n", 0o644, 1_600_000_001],
        ["etc/content", "two\n"],
        ["etc/xattr", "x\n"],
        ["etc/twin-a", "twin\n"],
        ["etc/twin-b", "twin\n"],
        ["empty", ""],
      ]);
      dump = "";
      assert.equal(ino("b", "etc/same"), ino("a", "etc/same"));
      for (const rel of ["etc/mode", "etc/mtime", "etc/content", "etc/xattr", "empty"])
        assert.notEqual(ino("b", rel), ino("a", rel), rel);
      // One name per inode per image: b's twins join a's two inodes, one each.
      const twins = [ino("b", "etc/twin-a"), ino("b", "etc/twin-b")].sort();
      assert.deepEqual(twins, [ino("a", "etc/twin-a"), ino("a", "etc/twin-b")].sort());
      assert.notEqual(twins[0], twins[1]);
      assert.equal(b.linked, 3);
      assert.equal(statSync(join(root("b"), "etc/same")).nlink, 2);
      // The directory's archive mtime survives the links made in it, to the nanosecond.
      assert.equal(
        statSync(join(root("b"), "etc"), { bigint: true }).mtimeNs,
        1_500_000_000_123_456_789n,
      );
      assert.ok(existsSync(join(paths.image("b"), INDEX_FILE)));
      assert.deepEqual(
        readdirSync(join(root("b"), "etc")).filter((n) => n.startsWith(".boxctl")),
        [],
      );
    });

    it("shares an archive's hard-link group only with a group of as many names, all or none", async () => {
      const mk = (name: string, group: string[], single: string) => {
        const stageDir = join(dir, "staging", name);
        const rootfs = join(stageDir, "rootfs");
        put(rootfs, group[0] as string, "group\n");
        for (const g of group.slice(1)) linkSync(join(rootfs, group[0] as string), join(rootfs, g));
        put(rootfs, single, "group\n");
        return { stageDir, rootfs };
      };
      const share = async (name: string, t: { stageDir: string; rootfs: string }) => {
        const res = await shareIdentical(r, { ...t, name, stop: () => false });
        renameSync(t.stageDir, paths.image(name));
        return res;
      };
      const g1 = await share("g1", mk("g1", ["bin/perl", "bin/perl5"], "bin/alone"));
      assert.equal(g1.files, 2); // the group is one entry
      const g2 = await share("g2", mk("g2", ["bin/perl", "bin/perl5"], "bin/alone"));
      assert.equal(g2.linked, 3);
      assert.equal(ino("g2", "bin/perl"), ino("g1", "bin/perl"));
      assert.equal(ino("g2", "bin/perl5"), ino("g1", "bin/perl"));
      assert.equal(ino("g2", "bin/alone"), ino("g1", "bin/alone"));
      assert.equal(statSync(join(root("g2"), "bin/perl")).nlink, 4);
      // A group of three names is not a group of two; a lone file never joins a group.
      const g3 = await share("g3", mk("g3", ["bin/perl", "bin/perl5", "bin/perl6"], "bin/x"));
      assert.equal(g3.linked, 1);
      assert.equal(ino("g3", "bin/x"), ino("g1", "bin/alone"));
      assert.equal(statSync(join(root("g3"), "bin/perl")).nlink, 3);
      assert.notEqual(ino("g3", "bin/perl"), ino("g1", "bin/perl"));
    });

    it("takes a file's sha256 from the stream when its size agrees, else reads the file", async () => {
      const sha = (t: string) => createHash("sha256").update(t).digest("hex");
      // The stream's digest is what is indexed, not a read-back: s1 claims
      // the content of its two files is that of s2's (which is read back).
      await stageTree(
        "s1",
        [
          ["etc/told", "lower\n"],
          ["etc/sized", "lower2\n"],
        ],
        new Map([
          ["etc/told", { sha256: sha("UPPER\n"), size: 6 }],
          ["etc/sized", { sha256: sha("UPPER2\n"), size: 8 }],
        ]),
      );
      await stageTree("s2", [
        ["etc/told", "UPPER\n"],
        ["etc/sized", "UPPER2\n"],
      ]);
      assert.equal(ino("s2", "etc/told"), ino("s1", "etc/told"));
      assert.notEqual(ino("s2", "etc/sized"), ino("s1", "etc/sized"));
    });

    it("never links to a file changed since it was indexed, nor to an image without an index", async () => {
      // a's etc/same changed mode behind the index's back.
      chmodSync(join(root("a"), "etc/same"), 0o640);
      rmSync(join(paths.image("b"), INDEX_FILE));
      const c = await stageTree("c", [["etc/same", "same\n"]]);
      assert.equal(c.linked, 0);
      assert.notEqual(ino("c", "etc/same"), ino("a", "etc/same"));
      // Deleting an image leaves the other's file whole.
      const d = await stageTree("d", [["etc/content", "one\n"]]);
      assert.equal(d.linked, 1);
      rmSync(paths.image("a"), { recursive: true });
      assert.equal(readFileSync(join(root("d"), "etc/content"), "utf8"), "one\n");
    });
  });
});
