// archive/tarscan.ts: the streaming tar header checker that stands between
// a hostile archive and tar.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { TarViolation } from "../../../src/archive/tarfields.ts";
import { TarScanner } from "../../../src/archive/tarscan.ts";
import { entry, pax } from "../../lib/tar.ts";

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
