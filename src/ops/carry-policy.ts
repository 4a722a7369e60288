// set-carry NAME SPEC: the machine's carry policy, which every cutover
// applies (cutover-instance --carry overrides it once). See src/carry/.
import { checkName } from "../base/names.ts";
import { formatCarry, parseCarry, policyOf } from "../carry/policy.ts";
import type { Runner } from "../host/runner.ts";
import { type CarryPolicy, loadMachine, requireMachine, saveMachine } from "../store/machine.ts";
import { guarded } from "./guard.ts";

export function setCarry(
  r: Runner,
  name: string,
  spec: string,
  opts: { wait?: boolean } = {},
): Promise<{ policy: CarryPolicy; changed: boolean }> {
  checkName("machine", name);
  const policy = parseCarry(spec);
  requireMachine(name);
  return guarded(r, name, "set-carry", opts, async () => {
    // Re-read under the lock: another verb may have changed machine.json meanwhile.
    const m = loadMachine(name) ?? requireMachine(name);
    r.note(`${name}: carry policy ${formatCarry(policy)}`);
    saveMachine(r, { ...m, carry: policy });
    return { policy, changed: formatCarry(policyOf(m.carry)) !== formatCarry(policy) };
  });
}
