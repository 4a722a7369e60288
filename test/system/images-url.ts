// stage-image URL, against a small HTTP server run inside the test host on
// its loopback: a good download, its sha256 checked and a second stage a
// no-op, and every way a download fails, each with a clear message and an
// unchanged store. A module of images.test.ts, on its hosts.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { type ImagesCtx, STORE, T } from "./images-helpers.ts";

export const PORT = 8088;
const BASE_URL = `http://127.0.0.1:${PORT}`;

/**
 * /ok/F serves F; /stall/F sends a megabyte of F, then nothing; /cut/F
 * promises all of F and hangs up half-way; anything else is 404. F is
 * looked for in each directory given, in turn.
 */
export const SERVER = `
const http = require("node:http"), fs = require("node:fs");
const dirs = process.argv.slice(2);
http.createServer((req, res) => {
  const [, mode, name] = req.url.split("/");
  const file = name && dirs.map((d) => d + "/" + name).find((f) => fs.existsSync(f));
  if (!file) { res.writeHead(404); res.end("no"); return; }
  const size = fs.statSync(file).size;
  res.writeHead(200, { "Content-Length": size });
  if (mode === "ok") { fs.createReadStream(file).pipe(res); return; }
  const part = mode === "stall" ? 1 << 20 : Math.floor(size / 2);
  fs.createReadStream(file, { end: part - 1 }).on("end", () => {
    if (mode === "cut") res.socket.destroy();
  }).pipe(res, { end: false });
}).listen(${PORT}, "127.0.0.1");
`;

export function urlStaging(ctx: ImagesCtx): void {
  const { stage, sh, listing } = ctx;

  describe("stage-image URL", () => {
    let sha = "";
    before(async () => {
      ctx.put("serve.cjs", Buffer.from(SERVER));
      // The few-MB mini.tar (images.test.ts) where the whole body is read for a
      // failure: a sha256 mismatch, a body cut short.
      await sh(`systemd-run --unit=bx-http --collect node ${T}/serve.cjs /srv/images ${T}`);
      // Ready once it answers (a 404 for /).
      await sh(
        `for i in $(seq 100); do node -e "require('http').get('${BASE_URL}/', r => process.exit(0)).on('error', () => process.exit(1))" && break; sleep 0.1; done`,
      );
      sha = (await sh("sha256sum /srv/images/foo-0.2.tar")).split(" ")[0] ?? "";
    });

    /** A stage that must fail with message, leaving the store and staging/ as they were. */
    async function refused(args: string[], message: RegExp, code = 1): Promise<void> {
      const store = await listing();
      const r = await stage(args);
      assert.equal(r.code, code, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(await listing(), store);
      assert.equal((await sh(`ls -A ${STORE}/staging 2>/dev/null || true`)).trim(), "");
    }

    it("stages from a URL, checks its sha256, and does nothing the second time", async () => {
      const r = await stage([`${BASE_URL}/ok/foo-0.2.tar`, "--name", "url-ok", "--sha256", sha]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^staged url-ok: Debian GNU\/Linux 12/m);
      const meta = JSON.parse(await sh(`cat ${STORE}/images/url-ok/image.json`));
      assert.deepEqual([meta.sha256, meta.source], [sha, `${BASE_URL}/ok/foo-0.2.tar`]);
      const again = await stage([
        `${BASE_URL}/ok/foo-0.2.tar`,
        "--name",
        "url-ok",
        "--sha256",
        sha,
        "--json",
      ]);
      assert.equal(again.code, 0, again.stderr);
      const doc = JSON.parse(again.stdout);
      assert.deepEqual([doc.changed, doc.image.name, doc.error], [false, "url-ok", null]);
    });

    it("wants --sha256 for plain http", () =>
      refused(
        [`${BASE_URL}/ok/foo-0.2.tar`, "--name", "url-nosha"],
        /plain http: .* needs --sha256/,
        2,
      ));

    it("refuses a sha256 mismatch", () =>
      refused(
        [`${BASE_URL}/ok/mini.tar`, "--name", "url-bad", "--sha256", "0".repeat(64)],
        /sha256 mismatch for http:\/\/127\.0\.0\.1:8088\/ok\/mini\.tar/,
      ));

    it("refuses a 404", () =>
      refused([`${BASE_URL}/ok/none.tar`, "--sha256", sha], /the server answered 404/));

    it("refuses a refused connection", () =>
      refused(["http://127.0.0.1:1/x.tar", "--sha256", sha], /the connection was refused/));

    it("gives up on a server that stops sending", () =>
      refused(
        [`${BASE_URL}/stall/foo-0.2.tar`, "--name", "url-stall", "--sha256", sha, "--timeout", "2"],
        /no data for 2 s after \d+ bytes; nothing was staged/,
      ));

    it("refuses a body cut short", () =>
      refused(
        [`${BASE_URL}/cut/mini.tar`, "--name", "url-cut", "--sha256", sha],
        /(connection closed|body ended) after \d+ (of \d+ )?bytes|truncated/,
      ));
  });
}
