// The pure parts of carrying (src/carry/): the policy as the user writes
// it, the merge's decisions, the ownership shift, the tar command lines;
// and the link-refusing directory walk against planted links in a real
// temporary tree.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { idMapText, shiftId, tarCreateArgv, tarExtractArgv } from "../../src/carry/copy.ts";
import {
  close,
  ensureDirAt,
  lstatAt,
  openPath,
  openTrusted,
  readRegularAt,
} from "../../src/carry/fsafe.ts";
import { decide, sig } from "../../src/carry/merge.ts";
import { checkCarryPath, formatCarry, parseCarry } from "../../src/carry/policy.ts";

describe("carry policy", () => {
  it("parses identity, etc, paths and none, and prints them back", () => {
    assert.deepEqual(parseCarry("identity,etc,/var/lib/app/,/home"), {
      identity: true,
      etc: true,
      paths: ["/var/lib/app", "/home"],
    });
    assert.deepEqual(parseCarry("none"), { identity: false, etc: false, paths: [] });
    assert.equal(formatCarry(parseCarry(" etc , identity ")), "identity,etc");
    assert.equal(formatCarry(parseCarry("none")), "none");
    // A path inside another carried path is carried by it.
    assert.deepEqual(parseCarry("/srv,/srv/data").paths, ["/srv"]);
  });

  it("refuses what cannot be carried, before anything runs", () => {
    assert.throws(() => parseCarry(""), /empty carry SPEC/);
    assert.throws(() => parseCarry("none,etc"), /cannot be combined/);
    assert.throws(() => parseCarry("ident"), /unknown carry part 'ident'/);
    assert.throws(() => checkCarryPath("var/lib"), /not absolute/);
    assert.throws(() => checkCarryPath("/var/../etc"), /'\.\.' component/);
    assert.throws(() => checkCarryPath("/"), /whole container/);
    assert.throws(() => checkCarryPath("/proc/1"), /systemd-nspawn mounts/);
    assert.throws(() => checkCarryPath("/run"), /systemd-nspawn mounts/);
    assert.throws(() => checkCarryPath("/a\nb"), /control character/);
  });
});

describe("the /etc merge's decisions (OSTree's rule)", () => {
  const f = (content: string, mode = 0o644) => sig("f", { mode, uid: 0, gid: 0 }, content);
  const d = (mode = 0o755) => sig("d", { mode, uid: 0, gid: 0 });
  const other = (local: string | null, o: string | null, n: string | null) =>
    decide({ kind: "other", local, oldImage: o, newImage: n });

  it("keeps a local change the new image did not make, and drops a copy-up that changed nothing", () => {
    assert.deepEqual(other(f("local"), f("v1"), f("v1")), { do: "keep", descend: false });
    assert.deepEqual(other(f("v1", 0o600), f("v1"), f("v1")), { do: "keep", descend: false });
    assert.deepEqual(other(f("v1"), f("v1"), f("v2")), { do: "drop" });
    assert.deepEqual(other(f("added"), null, null), { do: "keep", descend: false });
  });

  it("lets the local version win a conflict and keeps the new image's beside it", () => {
    assert.deepEqual(other(f("local"), f("v1"), f("v2")), {
      do: "conflict",
      keepNew: true,
      descend: false,
    });
    // Both made the same change: no conflict.
    assert.deepEqual(other(f("v2"), f("v1"), f("v2")), { do: "keep", descend: false });
    // Both added the path, differently.
    assert.deepEqual(other(f("mine"), null, f("theirs")), {
      do: "conflict",
      keepNew: true,
      descend: false,
    });
    // The new image removed what the container changed: the local version stays, nothing to put beside it.
    assert.deepEqual(other(f("local"), f("v1"), null), {
      do: "conflict",
      keepNew: false,
      descend: false,
    });
  });

  it("treats whiteouts as deletions, and deleting what the image never had as nothing", () => {
    const w = (o: string | null, n: string | null) =>
      decide({ kind: "whiteout", local: null, oldImage: o, newImage: n });
    assert.deepEqual(w(f("v1"), f("v1")), { do: "keep", descend: false });
    assert.deepEqual(w(f("v1"), null), { do: "keep", descend: false });
    assert.deepEqual(w(null, f("v2")), { do: "drop" });
    assert.deepEqual(w(f("v1"), f("v2")), { do: "conflict", keepNew: true, descend: false });
  });

  it("gives an untouched directory the new image's metadata and keeps a changed one", () => {
    const dir = (l: string, o: string | null, n: string | null) =>
      decide({ kind: "dir", local: l, oldImage: o, newImage: n });
    assert.deepEqual(dir(d(), d(), d(0o750)), { do: "adopt-image-meta", descend: true });
    assert.deepEqual(dir(d(0o700), d(), d()), { do: "keep", descend: true });
    assert.deepEqual(dir(d(0o700), d(), d(0o750)), {
      do: "conflict",
      keepNew: false,
      descend: true,
    });
    // A directory the old image did not have is all local.
    assert.deepEqual(dir(d(), null, null), { do: "keep", descend: false });
    assert.deepEqual(decide({ kind: "opaque-dir", local: d(), oldImage: d(), newImage: d() }), {
      do: "keep",
      descend: false,
    });
  });

  it("tells contents, link targets, owners and device numbers apart", () => {
    assert.notEqual(
      sig("l", { mode: 0o777, uid: 0, gid: 0 }, "a"),
      sig("l", { mode: 0o777, uid: 0, gid: 0 }, "b"),
    );
    assert.notEqual(
      sig("f", { mode: 0o644, uid: 0, gid: 0 }),
      sig("f", { mode: 0o644, uid: 1, gid: 0 }),
    );
    assert.notEqual(
      sig("c", { mode: 0o600, uid: 0, gid: 0, rdev: 0 }),
      sig("c", { mode: 0o600, uid: 0, gid: 0, rdev: 259 }),
    );
  });
});

describe("ownership shift (private users)", () => {
  const s = { from: 0, to: 655360, count: 65536 };
  it("shifts ids inside the range by the difference of the bases, and no others", () => {
    assert.equal(shiftId(0, s), 655360);
    assert.equal(shiftId(1000, s), 656360);
    assert.equal(shiftId(65535, s), 720895);
    assert.equal(shiftId(65536, s), 65536);
    assert.equal(shiftId(656360, { from: 655360, to: 0, count: 65536 }), 1000);
    assert.equal(shiftId(5, { from: 0, to: 0, count: 65536 }), 5);
  });
  it("writes the shift as tar's owner and group map", () => {
    const text = idMapText({ from: 100, to: 200, count: 3 });
    assert.equal(text, "+100 +200\n+101 +201\n+102 +202\n");
    const argv = tarCreateArgv("/a.tar", ["etc"], "/map");
    assert.ok(argv.includes("--owner-map=/map") && argv.includes("--group-map=/map"));
  });
  it("copies exactly and resolves nothing above fd 3", () => {
    const c = tarCreateArgv("/a.tar", ["etc"]);
    for (const o of [
      "--xattrs",
      "--xattrs-include=*",
      "--acls",
      "--numeric-owner",
      "--directory=/proc/self/fd/3",
    ])
      assert.ok(c.includes(o), o);
    assert.deepEqual(c.slice(-2), ["--", "etc"]);
    assert.ok(!c.includes("--dereference") && !c.includes("-h"));
    const x = tarExtractArgv("/a.tar");
    assert.ok(x.includes("--same-owner") && x.includes("--same-permissions"));
    assert.ok(
      !x.includes("--overwrite"),
      "--overwrite would open an existing symlink without O_EXCL",
    );
  });
});

describe("walking a container's tree without following its links", () => {
  const dir = mkdtempSync(join(tmpdir(), "boxctl-carry-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const secret = join(dir, "host-secret");
  mkdirSync(secret);
  writeFileSync(join(secret, "key"), "host\n");
  const root = join(dir, "root");
  mkdirSync(join(root, "etc/ssh"), { recursive: true });
  writeFileSync(join(root, "etc/ssh/real"), "guest\n");
  symlinkSync(secret, join(root, "abs"));
  symlinkSync("../host-secret", join(root, "rel"));
  symlinkSync(join(secret, "key"), join(root, "etc/key-link"));

  it("opens real directories and refuses planted absolute and relative links at any depth", () => {
    const fd = openTrusted(root);
    const ssh = openPath(fd, ["etc", "ssh"]);
    assert.equal(typeof ssh, "number");
    assert.equal(readRegularAt(ssh as number, "real")?.toString(), "guest\n");
    close(ssh as number);
    assert.deepEqual(openPath(fd, ["abs"]), { at: "abs", why: "not-a-directory" });
    assert.deepEqual(openPath(fd, ["rel", "x"]), { at: "rel", why: "not-a-directory" });
    assert.deepEqual(openPath(fd, ["missing"]), { at: "missing", why: "missing" });
    const etc = openPath(fd, ["etc"]) as number;
    assert.equal(readRegularAt(etc, "key-link"), null, "a link to a host file is not read");
    assert.ok(lstatAt(etc, "key-link")?.isSymbolicLink());
    assert.equal(ensureDirAt(fd, "abs", { uid: 0, gid: 0, mode: 0o755 }), "not-a-directory");
    assert.throws(() => lstatAt(fd, "../host-secret"), /one path component/);
    close(etc);
    close(fd);
  });
});

describe("carry policy against the container's mounts", () => {
  it("refuses a carried path that is, or lies under, a mount point inside the container", async () => {
    const { mountedPath, parseCarry } = await import("../../src/carry/policy.ts");
    const p = parseCarry("identity,/var/lib/app,/srv/data/x");
    assert.equal(mountedPath(p, ["/", "/proc", "/var/lib/other"]), null);
    assert.deepEqual(mountedPath(p, ["/", "/var/lib/app"]), {
      path: "/var/lib/app",
      mount: "/var/lib/app",
    });
    assert.deepEqual(mountedPath(p, ["/srv/data"]), { path: "/srv/data/x", mount: "/srv/data" });
    assert.equal(mountedPath(p, ["/srv/dat"]), null, "a prefix of a name is not a parent");
  });
});
