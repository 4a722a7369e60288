// archive/, the pure parts of staging: format detection, names, sizes, and
// the tar header checker that stands between a hostile archive and tar.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { decompressor, detect, imageNameFromPath, parseSize } from "../../src/archive/archive.ts";
import { scanFile } from "../../src/archive/prescan.ts";
import {
  checksumOk,
  numeric,
  parsePax,
  pathParts,
  TarViolation,
} from "../../src/archive/tarfields.ts";
import { TarScanner } from "../../src/archive/tarscan.ts";
import { entry, header, pax } from "../lib/tar.ts";

const END = Buffer.alloc(1024);

/** Scans buf in chunks of the given size; returns the scanner or the violation. */
function scan(buf: Buffer, chunk = buf.length): TarScanner | TarViolation {
  const s = new TarScanner();
  try {
    for (let i = 0; i < buf.length; i += chunk) s.push(buf.subarray(i, i + chunk));
    s.finish();
    return s;
  } catch (e) {
    if (e instanceof TarViolation) return e;
    throw e;
  }
}

function refused(buf: Buffer, re: RegExp) {
  for (const chunk of [buf.length, 512, 100, 1]) {
    const r = scan(buf, chunk);
    assert.ok(r instanceof TarViolation, `accepted (chunks of ${chunk})`);
    assert.match(r.message, re);
  }
}

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

describe("TarScanner", () => {
  const os = entry("etc/os-release", "0", 'PRETTY_NAME="Test"\n');

  it("accepts a normal archive in any chunking and sums its file data", () => {
    const tar = Buffer.concat([
      entry("./", "5"),
      entry("etc/", "5"),
      os,
      entry("bin", "2", "", "usr/bin"),
      entry("etc/motd", "2", "", "/usr/share/motd"),
      entry("usr/bin/x", "0", "abcdef".repeat(200)),
      entry("usr/bin/y", "1", "", "usr/bin/x"),
      entry("dev/null", "3"),
      entry("run/fifo", "6"),
      END,
      Buffer.alloc(8192),
    ]);
    for (const chunk of [tar.length, 1 << 20, 512, 1000, 7, 1]) {
      const r = scan(tar, chunk);
      assert.ok(r instanceof TarScanner, String(r));
      assert.equal(r.entries, 9);
      assert.equal(r.dataBytes, 19 + 1200);
      assert.ok(r.ended);
    }
  });

  it("refuses '..' and absolute paths, also from long names and pax", () => {
    refused(Buffer.concat([os, entry("../evil", "0", "x"), END]), /'\.\.\/evil'.*'\.\.'/);
    refused(Buffer.concat([entry("/tmp/evil", "0", "x"), END]), /absolute path '\/tmp\/evil'/);
    const long = `${"a/".repeat(60)}../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../tmp/evil`;
    refused(
      Buffer.concat([entry("././@LongLink", "L", `${long}\0`), entry("short", "0", "x"), END]),
      /'\.\.' component/,
    );
    refused(Buffer.concat([pax({ path: "../pax-evil" }), entry("ok", "0", "x"), END]), /pax-evil/);
  });

  it("refuses writes through an earlier symlink", () => {
    refused(
      Buffer.concat([entry("link", "2", "", "/tmp"), entry("link/evil", "0", "x"), END]),
      /'link\/evil' is written through the symlink 'link'/,
    );
    refused(
      Buffer.concat([entry("a/l", "2", "", "../../.."), entry("a/l/b/c", "5"), END]),
      /through the symlink 'a\/l'/,
    );
    refused(
      Buffer.concat([entry("d", "2", "", "/etc"), entry("d/", "5"), END]),
      /directory 'd\/' would be made through the symlink/,
    );
  });

  it("refuses hardlinks to anything not earlier in the archive", () => {
    refused(
      Buffer.concat([entry("h", "1", "", "etc/shadow"), END]),
      /hardlink 'h' points to 'etc\/shadow', which is not earlier/,
    );
    refused(Buffer.concat([entry("h", "1", "", "/etc/shadow"), END]), /absolute hardlink target/);
    refused(Buffer.concat([os, entry("h", "1", "", "../../etc/shadow"), END]), /'\.\.'/);
    refused(
      Buffer.concat([entry("s", "2", "", "/etc"), entry("h", "1", "", "s/shadow"), END]),
      /'h' is a hardlink through the symlink 's'/,
    );
    assert.ok(
      scan(Buffer.concat([entry("s", "2", "", "/etc"), entry("h", "1", "", "s"), END])) instanceof
        TarScanner,
    );
  });

  it("refuses truncated and corrupt archives", () => {
    const whole = Buffer.concat([os, entry("big", "0", "x".repeat(5000)), END]);
    refused(whole.subarray(0, 2000), /truncated inside entry 'big'/);
    refused(whole.subarray(0, 700), /truncated inside entry 'etc\/os-release'/);
    const bad = Buffer.from(whole);
    bad[1027] = (bad[1027] ?? 0) ^ 0xff;
    refused(bad, /corrupt tar header after entry 'etc\/os-release' \(bad checksum/);
    refused(Buffer.concat([entry("s", "2", "x".repeat(10), "t"), END]), /claims 10 bytes/);
    refused(END, /no entries/);
  });

  it("with digests on, gives each regular file's sha256 by path, in any chunking", () => {
    const sha = (t: string) => createHash("sha256").update(t).digest("hex");
    const x = "abcdef".repeat(200);
    const tar = Buffer.concat([
      entry("./", "5"),
      entry("./usr/bin/x", "0", x),
      entry("usr/bin/y", "1", "", "usr/bin/x"),
      entry("usr/bin/z", "7", "z"),
      entry("bin", "2", "", "usr/bin"),
      entry("empty", "0", ""),
      pax({ "GNU.sparse.major": "1", "GNU.sparse.minor": "0" }),
      entry("sparse", "0", "map and data"),
      entry("dev/null", "3"),
      END,
    ]);
    for (const chunk of [tar.length, 512, 1000, 7, 1]) {
      const s = new TarScanner({ digests: true });
      for (let i = 0; i < tar.length; i += chunk) s.push(tar.subarray(i, i + chunk));
      s.finish();
      assert.deepEqual(
        Object.fromEntries(s.memberDigests() ?? []),
        {
          "usr/bin/x": { sha256: sha(x), size: 1200 },
          "usr/bin/y": { sha256: sha(x), size: 1200 },
          "usr/bin/z": { sha256: sha("z"), size: 1 },
        },
        `chunks of ${chunk}`,
      );
    }
    const plain = scan(tar);
    assert.ok(plain instanceof TarScanner);
    assert.equal(plain.memberDigests(), null, "off by default");
  });

  it("gives no digests for an archive that writes a path twice, or before its end", () => {
    const twice = Buffer.concat([
      entry("a", "0", "1"),
      entry("b", "1", "", "a"),
      entry("a", "0", "2"),
      END,
    ]);
    const s = new TarScanner({ digests: true });
    s.push(twice);
    s.finish();
    assert.equal(s.memberDigests(), null);
    const cut = new TarScanner({ digests: true });
    cut.push(entry("a", "0", "1"));
    assert.equal(cut.memberDigests(), null);
  });

  it("stops at the end-of-archive marker, as tar does", () => {
    const tar = Buffer.concat([os, Buffer.alloc(512), entry("../after-end", "0", "x")]);
    const r = scan(tar);
    assert.ok(r instanceof TarScanner);
    assert.ok(r.ended);
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
