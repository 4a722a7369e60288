// archive/, the pure parts of staging: format detection, names, sizes, a
// tar header's fields, and the fast path's single read (the streaming header
// checker: archive/tarscan.test.ts).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { decompressor, detect, imageNameFromPath, parseSize } from "../../src/archive/archive.ts";
import { scanFile } from "../../src/archive/prescan.ts";
import { checksumOk, numeric, parsePax, pathParts } from "../../src/archive/tarfields.ts";
import { entry, header, pax } from "../lib/tar.ts";

const END = Buffer.alloc(1024);

describe("archive formats", () => {
  it("recognises compressors by magic bytes, not names", () => {
    assert.equal(detect(Buffer.from([0x1f, 0x8b, 8, 0])), "gzip");
    assert.equal(detect(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0])), "xz");
    assert.equal(detect(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0])), "zstd");
    assert.equal(detect(Buffer.from("BZh91AY")), "bzip2");
    assert.equal(detect(header("etc/")), "tar");
    assert.equal(detect(Buffer.from("hello, this is not an archive".padEnd(600, "x"))), null);
    assert.equal(detect(Buffer.alloc(0)), null);
    assert.deepEqual(decompressor("zstd"), ["zstd", "-dc"]);
    assert.equal(decompressor("tar"), null);
  });

  it("derives the image name from the file name", () => {
    assert.equal(imageNameFromPath("/srv/foo-0.1.tar"), "foo-0.1");
    assert.equal(imageNameFromPath("foo-0.1.tar.gz"), "foo-0.1");
    assert.equal(imageNameFromPath("foo-0.1.TGZ"), "foo-0.1");
    assert.equal(imageNameFromPath("a/b/foo.tar.zst"), "foo");
    assert.equal(imageNameFromPath("foo.tar.bz2"), "foo");
    assert.equal(imageNameFromPath("foo.tar.xz"), "foo");
    assert.equal(imageNameFromPath("rootfs.img"), "rootfs.img");
    assert.equal(imageNameFromPath(".tar"), ".tar");
  });

  it("parses sizes with binary units", () => {
    assert.equal(parseSize("64G"), 64 * 2 ** 30);
    assert.equal(parseSize("100M"), 100 * 2 ** 20);
    assert.equal(parseSize("1.5k"), 1536);
    assert.equal(parseSize("4096"), 4096);
    assert.equal(parseSize("10MiB"), 10 * 2 ** 20);
    assert.equal(parseSize("lots"), null);
    assert.equal(parseSize("-1G"), null);
  });
});

describe("tar header fields", () => {
  it("reads octal and base-256 numbers", () => {
    assert.equal(numeric(Buffer.from("00000001750\0"), 0, 12), 0o1750);
    assert.equal(numeric(Buffer.from("  755 \0"), 0, 7), 0o755);
    const big = Buffer.alloc(12);
    big[0] = 0x80;
    big.writeUIntBE(2 ** 40, 6, 6);
    assert.equal(numeric(big, 0, 12), 2 ** 40);
    assert.ok(Number.isNaN(numeric(Buffer.from("12x4\0"), 0, 5)));
  });

  it("checks the header checksum", () => {
    const h = header("etc/hostname", "0", 5);
    assert.ok(checksumOk(h));
    h[10] = 0x41;
    assert.ok(!checksumOk(h));
  });

  it("splits safe paths and refuses .. and absolute ones", () => {
    assert.deepEqual(pathParts("./etc//os-release", "path", "x"), ["etc", "os-release"]);
    assert.deepEqual(pathParts("usr/bin/", "path", "x"), ["usr", "bin"]);
    assert.deepEqual(pathParts("./", "path", "x"), []);
    assert.throws(() => pathParts("/etc/passwd", "path", "x"), /absolute path/);
    assert.throws(() => pathParts("a/../../etc", "path", "x"), /'\.\.' component/);
    assert.throws(() => pathParts("..", "path", "x"), /'\.\.'/);
    assert.throws(() => pathParts("", "path", "x"), /empty path/);
    assert.deepEqual(pathParts("a/..b/c..", "path", "x"), ["a", "..b", "c.."]);
  });

  it("parses pax records, including multi-byte values", () => {
    const b = pax({ path: "ünïcode/ファイル", "SCHILY.xattr.user.k": "v=1" });
    const recs = parsePax(b.subarray(512, 512 + b.indexOf(0, 512) - 512));
    assert.equal(recs.path, "ünïcode/ファイル");
    assert.equal(recs["SCHILY.xattr.user.k"], "v=1");
  });
});

describe("scanFile (the fast path's check and hash, in one read of the file)", () => {
  const withFile = async (data: Buffer, fn: (fd: number) => Promise<void>) => {
    const dir = mkdtempSync(join(tmpdir(), "boxctl-unit-"));
    const path = join(dir, "a.tar");
    writeFileSync(path, data);
    const fd = openSync(path, "r");
    try {
      await fn(fd);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true });
    }
  };
  const big = "z".repeat(3_000_000);
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

  it("sees every header and hashes every byte, past the end marker", async () => {
    const tar = Buffer.concat([
      entry("a", "0", big),
      entry("b", "0", big),
      entry("c", "2", "", "a"),
      END,
      Buffer.alloc(10_000, 7),
    ]);
    await withFile(tar, async (fd) => {
      const s = await scanFile(fd, tar.length);
      assert.equal(s.scanner.entries, 3);
      assert.equal(s.scanner.dataBytes, 6_000_000);
      assert.equal(s.sha256, sha(tar));
      assert.equal(s.bytes, tar.length);
      assert.equal(s.scanner.memberDigests()?.get("b")?.sha256, sha(Buffer.from(big)));
    });
  });

  /** A big file, then an entry written through a symlink: the check must reach it. */
  const bigThenThroughLink = () =>
    Buffer.concat([entry("a", "0", big), entry("l", "2", "", "/"), entry("l/x", "0", "x"), END]);

  it("steps over file data once hashing is given up, and still sees every header", async () => {
    const tar = bigThenThroughLink();
    let calls = 0;
    await withFile(tar, (fd) =>
      assert.rejects(
        scanFile(fd, tar.length, () => ++calls < 2),
        /'l\/x' is written through/,
      ),
    );
  });

  it("finds a bad entry behind big files, and truncation inside one", async () => {
    const tar = bigThenThroughLink();
    await withFile(tar, (fd) =>
      assert.rejects(scanFile(fd, tar.length), /'l\/x' is written through/),
    );
    await withFile(tar.subarray(0, 2_000_000), (fd) =>
      assert.rejects(scanFile(fd, 2_000_000), /truncated inside entry 'a'/),
    );
  });

  it("stops at once when told to", async () => {
    const tar = Buffer.concat([entry("a", "0", big), END]);
    await withFile(tar, (fd) =>
      assert.rejects(
        scanFile(fd, tar.length, () => {
          throw new Error("interrupted");
        }),
        /interrupted/,
      ),
    );
  });
});
