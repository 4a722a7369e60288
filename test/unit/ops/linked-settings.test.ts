// A NAME.nspawn kept as a symbolic link to a file elsewhere: boxctl never
// replaces the link, never writes through it, and refuses before any change
// a command that would have to change it, with the lines the linked file
// needs. Against a fake host.
import assert from "node:assert/strict";
import {
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { beforeEach, describe, it } from "node:test";
import type { BoxError } from "../../../src/base/errors.ts";
import { paths } from "../../../src/base/paths.ts";
import { deleteMachine } from "../../../src/ops/delete-machine.ts";
import { recoverCommand } from "../../../src/ops/guard.ts";
import { restart } from "../../../src/ops/lifecycle.ts";
import { cutover, fallback } from "../../../src/ops/switch.ts";
import { loadMachine } from "../../../src/store/machine.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { tempRoot } from "../../lib/fake-store.ts";

const M = "web1";
const opts = { timeoutMs: 20_000 };
const USER_LINES = "[Files]\nBind=/srv/data\n";

describe("a NAME.nspawn that is a symbolic link", () => {
  let h: FakeHost;
  let target: string;
  const link = () => paths.nspawnFile(M);
  const isLink = () => lstatSync(link()).isSymbolicLink();
  beforeEach(() => {
    const root = tempRoot(["foo-0.1", "foo-0.2"]);
    h = new FakeHost();
    target = join(root, "srv/conf/web1.nspawn");
    mkdirSync(join(root, "srv/conf"), { recursive: true });
    writeFileSync(target, USER_LINES);
    mkdirSync(paths.nspawnDir(), { recursive: true });
    symlinkSync(target, link());
  });

  /** The linked file with boxctl's lines for base added, as the hint asks. */
  const withBoxctlLines = (base: number) =>
    `[Exec]\nPrivateUsers=${base}:65536\n\n[Files]\nBind=/srv/data\nPrivateUsersOwnership=off\n`;

  it("refuses a new machine until the linked file has boxctl's lines, then uses the link as it is", async () => {
    let base = 0;
    await assert.rejects(cutover(h, M, "foo-0.1", opts), (e: BoxError) => {
      assert.equal(
        e.message,
        `${link()} is a symbolic link to ${target}; boxctl changes files only under ${dirname(paths.nspawnDir())}, and will not replace the link`,
      );
      const m =
        /^put PrivateUsers=(\d+):65536 \(in \[Exec\]\) and PrivateUsersOwnership=off \(in \[Files\]\) into (\S+) yourself, or replace the link with a copy of the file \(cp --remove-destination \2 (\S+)\); then run the command again$/.exec(
          e.hint ?? "",
        );
      assert.ok(m, e.hint);
      assert.equal(m[2], target);
      assert.equal(m[3], link());
      base = Number(m[1]);
      return true;
    });
    assert.equal(loadMachine(M), null, "no record");
    assert.ok(isLink(), "the link stays");
    assert.equal(readFileSync(target, "utf8"), USER_LINES, "the linked file is not written");
    assert.ok(
      !h.commands.some((c) => c.startsWith("systemctl") || c.startsWith("mount")),
      h.commands.join("\n"),
    );
    // The range the hint names is the one the retry gets: the user's line
    // in the machine's own file does not count as someone else's range.
    writeFileSync(target, withBoxctlLines(base));
    await cutover(h, M, "foo-0.1", opts);
    assert.equal(loadMachine(M)?.uidBase, base);
    assert.ok(isLink(), "the link stays");
    assert.equal(readFileSync(target, "utf8"), withBoxctlLines(base));
    await cutover(h, M, "foo-0.2", opts);
    await fallback(h, M, opts);
    assert.ok(isLink(), "the link stays through cutover and fallback");
    // The linked file gone (its repository moved): without boxctl's lines
    // nspawn would pick another range and chown the image, so restart
    // refuses, before it stops the container.
    renameSync(target, `${target}.moved`);
    h.calls.length = 0;
    await assert.rejects(restart(h, M, opts), (e: BoxError) => {
      assert.match(e.message, /is a symbolic link to .*, which does not exist; /);
      assert.equal(
        e.hint,
        `restore ${target} with PrivateUsers=${loadMachine(M)?.uidBase}:65536 (in [Exec]) and PrivateUsersOwnership=off (in [Files]) in it, or remove the link (rm ${link()}) for boxctl to write the file there; then run the command again`,
      );
      return true;
    });
    assert.ok(!h.commands.some((c) => c.startsWith("systemctl stop")), h.commands.join("\n"));
  });

  it("refuses to put back lines taken out of the linked file, and delete-machine until they are out", async () => {
    writeFileSync(target, withBoxctlLines(1879048192));
    await cutover(h, M, "foo-0.1", opts);
    const base = loadMachine(M)?.uidBase;
    assert.equal(base, 1879048192);
    writeFileSync(target, USER_LINES);
    for (const run of [() => cutover(h, M, "foo-0.2", opts), () => recoverCommand(h, M, {})])
      await assert.rejects(run(), (e: BoxError) => {
        assert.match(e.message, /is a symbolic link to .*will not replace the link$/);
        assert.match(e.hint ?? "", /^put PrivateUsers=1879048192:65536 \(in \[Exec\]\)/);
        return true;
      });
    assert.ok(isLink(), "the link stays");
    assert.equal(readFileSync(target, "utf8"), USER_LINES);

    writeFileSync(target, withBoxctlLines(1879048192));
    await h.run(["systemctl", "stop", `systemd-nspawn@${M}.service`]);
    await assert.rejects(deleteMachine(h, M, { yes: true }), (e: BoxError) => {
      assert.equal(
        e.hint,
        `take boxctl's PrivateUsers= and PrivateUsersOwnership= lines out of ${target}; then run the command again`,
      );
      return true;
    });
    assert.ok(loadMachine(M), "the machine is still there");
    writeFileSync(target, USER_LINES);
    await deleteMachine(h, M, { yes: true });
    assert.equal(loadMachine(M), null);
    assert.ok(isLink(), "the link stays");
    assert.equal(readFileSync(target, "utf8"), USER_LINES);
  });
});
