// app-status and set-services' check: the states a container's systemd
// gives its units, paired with the names asked about, and the table.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../../src/base/errors.ts";
import { renderAppStatus } from "../../../src/cli/render/container.ts";
import type { Runner } from "../../../src/host/runner.ts";
import { buildAppStatus, parseUnits, unitsNotThere } from "../../../src/ops/app-status.ts";

describe("app-status", () => {
  const show = (...units: [string, string, string][]) =>
    units
      .map(([id, load, active]) => `Id=${id}\nLoadState=${load}\nActiveState=${active}\n`)
      .join("\n");
  it("pairs systemctl show's blocks with units, in order", () => {
    const out = show(["nginx.service", "loaded", "active"], ["x.socket", "loaded", "inactive"]);
    const d = buildAppStatus("a", ["nginx", "x.socket"], out);
    assert.equal(d.reachable, true);
    assert.equal(d.allActive, false);
    assert.deepEqual(d.services, [
      { unit: "nginx.service", state: "active", active: true },
      { unit: "x.socket", state: "inactive", active: false },
    ]);
    assert.match(renderAppStatus(d, true), /1 of 2 active in a\./);
    // An alias shows as the unit it names: paired by position, not by Id.
    // A dot in a name is not a suffix: systemctl completes both with .service.
    const alias = buildAppStatus(
      "a",
      ["dbus-org.freedesktop.login1", "my.app"],
      show(["systemd-logind.service", "loaded", "active"], ["my.app.service", "loaded", "active"]),
    );
    assert.deepEqual(
      alias.services.map((s) => [s.unit, s.state]),
      [
        ["dbus-org.freedesktop.login1.service", "active"],
        ["my.app.service", "active"],
      ],
    );
  });
  it("says why a unit is not there, where is-active says inactive", () => {
    const out = show(
      ["typo.service", "not-found", "inactive"],
      ["off.service", "masked", "inactive"],
      ["still.service", "masked", "active"],
      ["bad.service", "bad-setting", "inactive"],
      ["stopped.service", "loaded", "failed"],
    );
    const d = buildAppStatus("a", ["typo", "off", "still", "bad", "stopped"], out);
    assert.deepEqual(
      d.services.map((s) => s.state),
      ["not-found", "masked", "active", "bad-setting", "failed"],
    );
  });
  it("set-services' check: the units a running container has none of, and nothing when it cannot be asked", async () => {
    const asked: string[][] = [];
    const answering = (stdout: string) =>
      ({
        dryRun: false,
        run: async (argv: readonly string[]) => {
          asked.push([...argv]);
          return { code: stdout ? 0 : 1, stdout, stderr: "" };
        },
      }) as unknown as Runner;
    const out = show(
      ["nginx.service", "loaded", "active"],
      ["ngnix.service", "not-found", "inactive"],
    );
    assert.deepEqual(await unitsNotThere(answering(out), "a", ["nginx", "ngnix"]), [
      { unit: "ngnix.service", state: "not-found", active: false },
    ]);
    assert.deepEqual(asked[0], [
      "systemctl",
      "-M",
      "a",
      "show",
      "--property=Id,LoadState,ActiveState",
      "--",
      "nginx",
      "ngnix",
    ]);
    assert.deepEqual(await unitsNotThere(answering(""), "a", ["nginx"]), []);
    assert.deepEqual(await unitsNotThere(answering(out), "a", []), []);
    assert.equal(asked.length, 2, "no systemctl for an empty list");
  });
  it("marks every unit unknown when the container cannot be asked", () => {
    const d = buildAppStatus("a", ["nginx"], "");
    assert.equal(d.reachable, false);
    assert.equal(d.services[0]?.state, "unknown");
  });
  it("accepts unit names and refuses options or junk", () => {
    assert.deepEqual(parseUnits(["a,b.service", "c@1.service"]), ["a", "b.service", "c@1.service"]);
    assert.throws(() => parseUnits(["--all"]), UsageError);
    assert.throws(() => parseUnits(["a;b"]), UsageError);
  });
});
