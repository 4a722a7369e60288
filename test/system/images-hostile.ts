// The hostile corpus of images.test.ts: archives that try to write outside
// the image, or are broken, or fill the disk, each refused with the store
// and the host left exactly as they were. A module, not a *.test.ts file,
// so that it runs on images.test.ts's test hosts rather than booting more.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { TestHost } from "../host/host.ts";
import { entry } from "../lib/tar.ts";
import { END, GERMAN, GOOD, type ImagesCtx, STORE, T, UP } from "./images-helpers.ts";

export function hostileCorpus(ctx: ImagesCtx): void {
  const { sh, listing, put } = ctx;
  // The whole corpus runs in a German locale: boxctl reads tar's messages
  // (a full disk), which it must get in English whatever the user's LANG.
  const stage = (args: string[]) => ctx.stage(args, GERMAN);
  // The test file boots the host in a before() that runs ahead of this one.
  let host: TestHost;
  before(() => {
    host = ctx.host;
  });

  describe("the hostile corpus", () => {
    it("runs where the tools speak German (so an English match would fail)", async () => {
      const r = await host.exec(["tar", "-xf", "/nonexistent"], { env: GERMAN });
      assert.match(r.stderr, /nicht gefunden/);
      const u = await host.exec(["umount", "/nonexistent"], { env: GERMAN });
      assert.doesNotMatch(u.stderr, /no mount point specified|not mounted|No such file/);
    });

    const bad = (body: Buffer) => Buffer.concat([GOOD, body, END]);
    const corpus: {
      what: string;
      file: string;
      make: () => unknown;
      extra?: string[];
      message: RegExp;
      /** Also fed on standard input (the streaming path, not the file fast path). */
      stdin?: RegExp;
    }[] = [
      {
        what: "../ entries",
        file: "dotdot.tar",
        make: () => put("dotdot.tar", bad(entry(`${UP}/tmp/evil-dotdot`, "0", "x"))),
        message: /entry '(\.\.\/)+tmp\/evil-dotdot' has a '\.\.' component/,
        stdin: /entry '(\.\.\/)+tmp\/evil-dotdot' has a '\.\.' component/,
      },
      {
        what: "absolute paths",
        file: "abs.tar",
        make: () => put("abs.tar", bad(entry("/tmp/evil-abs", "0", "x"))),
        message: /entry '\/tmp\/evil-abs' has an absolute path/,
        stdin: /entry '\/tmp\/evil-abs' has an absolute path/,
      },
      {
        what: "a write through a symlink",
        file: "sym.tar",
        make: () =>
          put(
            "sym.tar",
            bad(
              Buffer.concat([entry("escape", "2", "", "/tmp"), entry("escape/evil-sym", "0", "x")]),
            ),
          ),
        message: /entry 'escape\/evil-sym' is written through the symlink 'escape'/,
        stdin: /entry 'escape\/evil-sym' is written through the symlink 'escape'/,
      },
      {
        what: "a hardlink outside the archive",
        file: "hard.tar",
        make: () => put("hard.tar", bad(entry("shadow", "1", "", "etc/shadow"))),
        message: /hardlink 'shadow' points to 'etc\/shadow', which is not earlier in the archive/,
        stdin: /hardlink 'shadow' points to 'etc\/shadow', which is not earlier in the archive/,
      },
      {
        what: "a hardlink through a symlink",
        file: "hardsym.tar",
        make: () =>
          put(
            "hardsym.tar",
            bad(
              Buffer.concat([
                entry("hostetc", "2", "", "/etc"),
                entry("pw", "1", "", "hostetc/passwd"),
              ]),
            ),
          ),
        message: /'pw' is a hardlink through the symlink 'hostetc'/,
        stdin: /'pw' is a hardlink through the symlink 'hostetc'/,
      },
      {
        what: "a truncated archive",
        file: "trunc.tar",
        make: () => sh(`head -c 20000000 /srv/images/foo-0.1.tar > ${T}/trunc.tar`),
        message: /trunc\.tar: the archive is truncated inside entry '.+' \(at byte 20000000\)/,
        stdin: /standard input: the archive is truncated inside entry '.+' \(at byte 20000000\)/,
      },
      {
        what: "a corrupt tar header",
        file: "corrupt.tar",
        make: () => {
          const b = bad(entry("etc/motd", "0", "hi"));
          b[GOOD.length + 20] = (b[GOOD.length + 20] ?? 0) ^ 0x55;
          put("corrupt.tar", b);
        },
        message: /corrupt\.tar: corrupt tar header after entry 'etc\/hostname' \(bad checksum/,
        stdin: /standard input: corrupt tar header after entry 'etc\/hostname'/,
      },
      {
        what: "corrupt compressed data",
        file: "corrupt.tar.gz",
        make: () =>
          sh(
            `gzip -c ${T}/mini.tar > ${T}/corrupt.tar.gz && printf 'garbage!garbage!' | dd of=${T}/corrupt.tar.gz bs=1 seek=100000 conv=notrunc 2>/dev/null`,
          ),
        message: /corrupt\.tar\.gz: .*|the gzip data is truncated or corrupt/,
      },
      {
        what: "a compression bomb",
        file: "bomb.tar.zst",
        make: () =>
          sh(
            `cd ${T} && truncate -s 1G zeros && tar -cf - zeros | zstd -1 -q -T2 > bomb.tar.zst && rm zeros`,
          ),
        extra: ["--max-size", "100M"],
        message:
          /bomb\.tar\.zst unpacks to more than 104857600 bytes, the bound for one image \(a compression bomb\?\)/,
      },
      {
        what: "a file that is not an archive",
        file: "notes.tar",
        make: () => put("notes.tar", Buffer.from("just some text, not a tar archive\n".repeat(40))),
        message: /notes\.tar is not a tar archive \(nor a gzip, xz, zstd or bzip2 compressed one\)/,
      },
      {
        what: "an empty file",
        file: "empty.tar",
        make: () => put("empty.tar", Buffer.alloc(0)),
        message: /empty\.tar is empty/,
      },
    ];
    for (const c of corpus) {
      it(`refuses ${c.what}, leaving store and host unchanged`, async () => {
        await c.make();
        const store = await listing();
        const r = await stage([`${T}/${c.file}`, "--name", "hostile", ...(c.extra ?? [])]);
        assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
        assert.match(r.stderr, c.message);
        assert.match(r.stderr, /hint: /);
        assert.equal(await listing(), store);
        assert.equal((await sh(`ls -A ${STORE}/staging`)).trim(), "");
        const evil = await sh(
          "ls -d /tmp/evil* /var/lib/evil* /evil* /etc/evil* 2>/dev/null || true",
        );
        assert.equal(evil.trim(), "");
        if (!c.stdin) return;
        const p = await host.exec(
          ["sh", "-c", `boxctl stage-image - --name hostile < ${T}/${c.file}`],
          { env: GERMAN },
        );
        assert.equal(p.code, 1, p.stderr);
        assert.match(p.stderr, c.stdin);
        assert.equal(await listing(), store);
        assert.equal((await sh(`ls -A ${STORE}/staging`)).trim(), "");
      });
    }

    it("refuses an empty standard input", async () => {
      const r = await host.exec(["sh", "-c", "boxctl stage-image - --name hostile < /dev/null"], {
        env: GERMAN,
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /standard input is empty/);
    });

    it("refuses when the disk fills up, and removes the partial tree", async () => {
      await host.sh(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", STORE]);
      try {
        const r = await stage(["/srv/images/foo-0.1.tar", "--name", "full"]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          r.stderr,
          /no space left on the file system of .* while unpacking; nothing was staged/,
        );
        assert.equal(
          (await sh(`find ${STORE} -mindepth 1 -not -path '${STORE}/staging'`)).trim(),
          "",
        );
        assert.match(await host.sh(["df", "--output=used", STORE]), /\n\s*0\n/);
      } finally {
        await host.sh(["umount", STORE]);
      }
    });
  });
}
