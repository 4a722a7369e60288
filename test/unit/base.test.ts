// base/: names.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { printable } from "../../src/base/errors.ts";
import { checkName, checkNewMachineName, isHostname, isValidName } from "../../src/base/names.ts";

describe("names", () => {
  it("accepts ordinary machine and image names", () => {
    for (const n of ["system1", "foo-0.1", "web_2", "A.b-c"]) assert.ok(isValidName(n), n);
  });
  it("refuses anything that could escape a path or a unit name", () => {
    for (const n of [
      "",
      ".",
      "..",
      "a/b",
      "../x",
      "-rf",
      "a..b",
      "a b",
      "x".repeat(65),
      "a\nb",
      "a.",
      "é",
    ]) {
      assert.ok(!isValidName(n), JSON.stringify(n));
    }
    assert.throws(() => checkName("image", "../etc"), /invalid image name/);
  });
  it("takes for a new machine only what systemd takes for a hostname", () => {
    for (const n of ["system1", "web-2", "A.b-c", "x".repeat(64), "1a", "a.b.c"])
      assert.ok(isHostname(n), n);
    for (const n of [
      "a.b_c",
      "web_2",
      "-a",
      "a-",
      "a.-b",
      "a-.b",
      "a..b",
      "a.",
      ".a",
      "",
      "x".repeat(65),
    ])
      assert.ok(!isHostname(n), n);
    assert.throws(
      () => checkNewMachineName("a.b_c"),
      /invalid machine name 'a\.b_c': systemd-nspawn takes only a hostname/,
    );
  });
  it("prints control characters escaped", () => {
    assert.equal(printable("a\x1b[31mb"), "a\\x1b[31mb");
  });
});
