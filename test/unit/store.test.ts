// store/machine-id.ts: what an image says about its machine ID, and the
// seed a new instance gets so that each machine boots with its own (files
// stored once across images: store/share.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { machineIdSeed, sharedMachineIds } from "../../src/store/machine-id.ts";

describe("machine IDs", () => {
  const id = "f47d8f433c974b039d6c2f4ebb7657f9";

  it("finds the debootstrap guest's shared dbus id, not its empty /etc/machine-id", () => {
    const shared = sharedMachineIds({
      etcMachineId: "",
      dbusMachineId: { kind: "file", content: `${id}\n` },
    });
    assert.deepEqual(shared, ["/var/lib/dbus/machine-id"]);
    assert.deepEqual(machineIdSeed(shared), [
      { path: "var/lib/dbus/machine-id", kind: "symlink", target: "/etc/machine-id" },
    ]);
  });

  it("finds a filled /etc/machine-id; accepts uninitialized, missing and the dbus symlink", () => {
    assert.deepEqual(sharedMachineIds({ etcMachineId: `${id}\n`, dbusMachineId: null }), [
      "/etc/machine-id",
    ]);
    assert.deepEqual(
      sharedMachineIds({
        etcMachineId: "uninitialized\n",
        dbusMachineId: { kind: "symlink", target: "/etc/machine-id" },
      }),
      [],
    );
    assert.deepEqual(sharedMachineIds({ etcMachineId: null, dbusMachineId: null }), []);
    assert.deepEqual(machineIdSeed(["/etc/machine-id"]), [
      { path: "etc/machine-id", kind: "file", mode: 0o444, content: "" },
    ]);
  });
});
