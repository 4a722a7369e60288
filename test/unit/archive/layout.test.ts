// Where the OS is in a staged tree (findLayout), and whether the tree can
// boot as a boxctl container (unbootable: nspawn's init paths, resolved
// inside the tree as nspawn would resolve them inside the container). On
// real trees (archive/layout.ts).
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { findLayout, unbootable } from "../../../src/archive/layout.ts";
import { tempDir } from "../../lib/tmp.ts";

/** A tree with the given files (path -> mode) and symlinks (path -> target). */
function tree(files: Record<string, number>, links: Record<string, string> = {}): string {
  const root = tempDir("boxctl-layout-");
  for (const [rel, mode] of Object.entries(files)) {
    mkdirSync(join(root, rel, ".."), { recursive: true });
    writeFileSync(join(root, rel), "");
    chmodSync(join(root, rel), mode);
  }
  for (const [rel, target] of Object.entries(links)) {
    mkdirSync(join(root, rel, ".."), { recursive: true });
    symlinkSync(target, join(root, rel));
  }
  return root;
}

describe("unbootable", () => {
  it("accepts systemd at /usr/lib/systemd/systemd, or at /lib/systemd/systemd in a split /usr", () => {
    assert.equal(
      unbootable(tree({ "etc/os-release": 0o644, "usr/lib/systemd/systemd": 0o755 })),
      null,
    );
    assert.equal(
      unbootable(tree({ "usr/lib/os-release": 0o644, "lib/systemd/systemd": 0o755 })),
      null,
    );
  });

  it("follows symlinks inside the tree, never out of it", () => {
    // Merged /usr, with /lib an absolute link: resolved inside the tree.
    const merged = tree(
      { "etc/os-release": 0o644, "usr/lib/systemd/systemd": 0o755 },
      { lib: "/usr/lib" },
    );
    assert.equal(unbootable(merged), null);
    // A link to the host's systemd resolves to the tree's own path, which is missing.
    const outside = tree(
      { "etc/os-release": 0o644 },
      { "usr/lib/systemd/systemd": "/usr/lib/systemd/systemd" },
    );
    assert.match(unbootable(outside)?.why ?? "", /no systemd/);
  });

  it("refuses a tree without systemd, or with a systemd that is not executable", () => {
    const sysv = tree({ "etc/os-release": 0o644, "sbin/init": 0o755 });
    assert.match(unbootable(sysv)?.why ?? "", /^it has no systemd/);
    assert.match(unbootable(sysv)?.fix ?? "", /systemd-sysv/);
    const plain = tree({ "etc/os-release": 0o644, "usr/lib/systemd/systemd": 0o644 });
    assert.match(unbootable(plain)?.why ?? "", /no systemd/);
  });

  it("refuses a tree that nspawn's -U shifted on disk (its root owned by a uid of a range)", {
    skip: process.getuid?.() !== 0 && "needs root: chowns",
  }, () => {
    const root = tree({ "etc/os-release": 0o644, "usr/lib/systemd/systemd": 0o755 });
    chownSync(root, 160169984, 160169984);
    assert.match(
      unbootable(root)?.why ?? "",
      /^its root directory is owned by uid 160169984, not 0/,
    );
    assert.match(unbootable(root)?.fix ?? "", /--private-users-ownership=chown/);
    // A boxctl machine's root as the host sees it: archive it from inside instead.
    chownSync(root, 0x70010000, 0x70010000);
    assert.match(unbootable(root)?.why ?? "", /a boxctl machine's files as the host sees them/);
    assert.match(
      unbootable(root)?.fix ?? "",
      /^archive the machine from inside instead: boxctl shell NAME -- tar /,
    );
    chownSync(root, 1000, 1000);
    assert.equal(unbootable(root), null, "a uid below 65536 is left alone");
  });

  it("refuses a tree without an os-release first, as nspawn does", () => {
    const root = tree({ "usr/lib/systemd/systemd": 0o755 });
    assert.match(unbootable(root)?.why ?? "", /os-release/);
    rmSync(root, { recursive: true });
  });
});

describe("findLayout", () => {
  it("finds the OS at the top or in one directory, and names a container engine's image", () => {
    assert.deepEqual(findLayout(tree({ "etc/os-release": 0o644 })), { kind: "root" });
    assert.deepEqual(findLayout(tree({ "rootfs/usr/lib/os-release": 0o644 })), {
      kind: "inner",
      dir: "rootfs",
    });
    assert.deepEqual(findLayout(tree({ "data/file": 0o644 })), { kind: "none" });
    assert.deepEqual(findLayout(tree({ "manifest.json": 0o644, "abc/layer.tar": 0o644 })), {
      kind: "none",
      containerImage: "a docker save or podman save archive",
    });
    assert.deepEqual(
      findLayout(tree({ "oci-layout": 0o644, "index.json": 0o644, "blobs/sha256/0": 0o644 })),
      { kind: "none", containerImage: "an OCI image layout" },
    );
    // A root file system that happens to hold a manifest.json at its top is no image archive.
    assert.deepEqual(findLayout(tree({ "manifest.json": 0o644, "usr/bin/x": 0o755 })), {
      kind: "none",
    });
  });
});
