// What status and recover compare with the record, and start and restart
// put back: the files boxctl writes for the current instance. An admin's own lines in NAME.nspawn are theirs;
// a file boxctl writes, changed, is named; settings nspawn no longer reads
// are shown by status. Against the fake host.
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../../src/base/paths.ts";
import { renderStatus } from "../../../src/cli/render/container.ts";
import { attention } from "../../../src/ops/drift.ts";
import { recoverCommand } from "../../../src/ops/guard.ts";
import { restart, start } from "../../../src/ops/lifecycle.ts";
import { gatherStatus } from "../../../src/ops/status.ts";
import { cutover } from "../../../src/ops/switch.ts";
import { mountUnitPath, nspawnGuardPath } from "../../../src/overlay/wiring.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { tempRoot } from "../../lib/fake-store.ts";
import { machineState } from "../../lib/interrupt.ts";

const M = "web1";
const opts = { timeoutMs: 20_000 };

describe("the files boxctl writes for the current instance", () => {
  let h: FakeHost;
  beforeEach(async () => {
    tempRoot(["foo-0.1"]);
    h = new FakeHost();
    await cutover(h, M, "foo-0.1", opts);
  });
  const look = () => attention(h, machineState(M));

  it("leave the admin's own lines in NAME.nspawn alone", () => {
    appendFileSync(paths.nspawnFile(M), "Bind=/srv/data:/mnt/data\n");
    assert.equal(look(), null);
  });

  it("name the file that is not as boxctl writes it, and recover puts it back", async () => {
    const settings = paths.nspawnFile(M);
    const before = readFileSync(settings, "utf8");
    // An edit that moves boxctl's PrivateUsersOwnership= out of its [Files] section.
    writeFileSync(settings, before.replace("[Files]\n", ""));
    const a = look();
    assert.equal(a?.reason, "unit-outdated");
    assert.equal(
      a?.message,
      `the mount unit names the current instance, but ${settings} is not as this boxctl writes it for it (written by another version of boxctl, or edited by hand)`,
    );
    writeFileSync(mountUnitPath(M), `${readFileSync(mountUnitPath(M), "utf8")}# edited\n`);
    const both = look()?.message ?? "";
    assert.ok(both.includes(`, but ${mountUnitPath(M)}, ${settings} are not as`), both);
    await recoverCommand(h, M, {});
    assert.equal(look(), null);
    assert.match(readFileSync(settings, "utf8"), /\[Files\]\nPrivateUsersOwnership=off\n/);
  });

  it("include a drop-in that keeps the container from starting without its NAME.nspawn", async () => {
    const guard = nspawnGuardPath(M);
    assert.equal(dirname(guard), `${paths.unitDir()}/systemd-nspawn@${M}.service.d`);
    const base = machineState(M).uidBase;
    assert.ok(
      readFileSync(guard, "utf8").includes(
        `\n[Service]\nExecStartPre=/bin/sh -c "grep -qxF PrivateUsers=${base}:65536 ${paths.nspawnFile(M)} || {`,
      ),
      readFileSync(guard, "utf8"),
    );
    rmSync(guard);
    assert.equal(
      look()?.message,
      `the mount unit names the current instance, but ${guard} is missing`,
    );
    await recoverCommand(h, M, {});
    assert.equal(look(), null);
  });

  it("are put back by start and restart before nspawn reads them", async () => {
    const settings = paths.nspawnFile(M);
    const want = readFileSync(settings, "utf8");
    const nspawn = `systemd-nspawn@${M}.service`;
    // Lost (a configuration tool that purges files it does not know, say):
    // the stock unit's -U would give the container another range and chown the image.
    for (const verb of ["start", "restart"] as const) {
      if (verb === "start") await h.run(["systemctl", "stop", nspawn]);
      rmSync(settings);
      assert.equal(
        look()?.message,
        `the mount unit names the current instance, but ${settings} is missing`,
      );
      h.calls.length = 0;
      await (verb === "start" ? start : restart)(h, M, opts);
      assert.equal(readFileSync(settings, "utf8"), want, verb);
      assert.equal(look(), null, verb);
      assert.ok(h.commands.includes(`systemctl start ${nspawn}`), h.commands.join("\n"));
    }
  });

  it("show on status the settings nspawn ignores, and nothing once they are merged", async () => {
    const [inRun, besideRoot] = paths.shadowedNspawnFiles(M);
    assert.ok(inRun && besideRoot);
    assert.deepEqual((await gatherStatus(h, M)).ignoredSettings, []);
    writeFileSync(besideRoot, "[Files]\nBind=/srv/data\n");
    const s = await gatherStatus(h, M);
    assert.deepEqual(s.ignoredSettings, [besideRoot]);
    // Not a drift from the record: every verb still works, list shows no "!".
    assert.equal(look(), null);
    const text = renderStatus(s, true);
    assert.ok(
      text.includes(
        `Settings:  ${besideRoot} ignored: systemd-nspawn reads only ${paths.nspawnFile(M)}; merge the lines into it and remove the file`,
      ),
      text,
    );
    appendFileSync(paths.nspawnFile(M), "Bind=/srv/data\n");
    rmSync(besideRoot);
    assert.deepEqual((await gatherStatus(h, M)).ignoredSettings, []);
    assert.ok(!renderStatus(await gatherStatus(h, M), true).includes("Settings:"));
  });
});
