// The --json documents of status, list and app-status, as valibot schemas:
// docs/json.md describes them and the tests check real output against them.
// strictObject: a field added without updating these (and the docs) fails the tests.
import * as v from "valibot";
import { CarrySchema, InstanceSchema, OperationSchema } from "../store/machine.ts";

const State = v.picklist(["running", "starting", "stopping", "stopped", "failed", "unknown"]);
const Iso = v.pipe(v.string(), v.isoTimestamp());
/** What is not as the record says, and the command that settles it (ops/drift.ts). */
const Attention = v.nullable(
  v.strictObject({
    reason: v.picklist([
      "in-progress",
      "pending-operation",
      "mount-differs",
      "unit-differs",
      "unit-outdated",
      "root-emptied",
      "image-missing",
    ]),
    message: v.string(),
    settle: v.nullable(v.string()),
  }),
);

export const StatusJson = v.strictObject({
  version: v.literal(1),
  name: v.string(),
  state: State,
  enabled: v.boolean(),
  unit: v.strictObject({
    name: v.string(),
    activeState: v.string(),
    subState: v.string(),
    result: v.string(),
    unitFileState: v.string(),
    since: v.nullable(Iso),
    log: v.nullable(v.array(v.string())),
  }),
  current: v.nullable(InstanceSchema),
  fallback: v.nullable(InstanceSchema),
  fallbackImageMissing: v.boolean(),
  ignoredSettings: v.array(v.string()),
  mount: v.strictObject({
    path: v.string(),
    unit: v.string(),
    mounted: v.boolean(),
    instance: v.nullable(v.number()),
  }),
  changes: v.nullable(v.strictObject({ path: v.string(), bytes: v.nullable(v.number()) })),
  privateUsers: v.nullable(
    v.strictObject({ base: v.number(), size: v.literal(65536), sharedWith: v.array(v.string()) }),
  ),
  nextPrivateUsers: v.boolean(),
  lastOperation: v.nullable(OperationSchema),
  services: v.array(v.string()),
  carry: CarrySchema,
  keep: v.nullable(v.number()),
  attention: Attention,
});

export const ListJson = v.strictObject({
  version: v.literal(1),
  machines: v.array(
    v.strictObject({
      name: v.string(),
      managed: v.boolean(),
      state: State,
      enabled: v.nullable(v.boolean()),
      image: v.nullable(v.string()),
      generation: v.nullable(v.number()),
      fallback: v.nullable(v.strictObject({ generation: v.number(), image: v.string() })),
      class: v.nullable(v.string()),
      service: v.nullable(v.string()),
      error: v.nullable(v.string()),
      attention: Attention,
    }),
  ),
});

export const AppStatusJson = v.strictObject({
  version: v.literal(1),
  name: v.string(),
  reachable: v.boolean(),
  allActive: v.boolean(),
  services: v.array(v.strictObject({ unit: v.string(), state: v.string(), active: v.boolean() })),
});
