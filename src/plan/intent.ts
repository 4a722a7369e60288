// intent.json: what a mutating operation set out to do and how far it got.
// Written before the first change, updated after every step, removed at
// the end. A leftover one means boxctl was interrupted; ops/recover.ts
// reads it.
import { existsSync, readdirSync } from "node:fs";
import * as v from "valibot";
import { paths } from "../base/paths.ts";
import { readJson, removeFileDurably, writeJsonAtomic } from "../host/files.ts";
import type { Runner } from "../host/runner.ts";

export const INTENT_VERSION = 1;

const Gen = v.nullable(v.pipe(v.number(), v.integer(), v.minValue(1)));

export const IntentSchema = v.object({
  version: v.literal(INTENT_VERSION),
  verb: v.picklist([
    "cutover-instance",
    "fallback-instance",
    "reset",
    "delete-instance",
    "delete-machine",
  ]),
  pid: v.number(),
  started: v.pipe(v.string(), v.isoTimestamp()),
  /** current and fallback before the operation: what a rollback restores. */
  oldCurrent: Gen,
  oldFallback: Gen,
  /**
   * The instance the operation works on: the new current, or the one reset
   * or deleted (delete-machine: its newest, or 1 for a machine without
   * any; its recovery does not read it).
   */
  target: v.pipe(v.number(), v.integer(), v.minValue(1)),
  image: v.optional(v.string()),
  wasRunning: v.boolean(),
  /** The last step that completed. */
  step: v.string(),
});

export type Intent = v.InferOutput<typeof IntentSchema>;

/** A fresh intent for verb on machine m, before its first step. */
export function newIntent(
  verb: Intent["verb"],
  m: { current: number | null; fallback: number | null },
  target: { gen: number; image: string },
  wasRunning: boolean,
): Intent {
  return {
    version: INTENT_VERSION,
    verb,
    pid: process.pid,
    started: new Date().toISOString(),
    oldCurrent: m.current,
    oldFallback: m.fallback,
    target: target.gen,
    image: target.image,
    wasRunning,
    step: "none",
  };
}

export function readIntent(name: string): Intent | null {
  return readJson(paths.intent(name), IntentSchema);
}

/**
 * durable: false still replaces the file atomically (a killed boxctl leaves
 * the old or the new one) but skips the fsyncs; after a power cut recovery
 * may then see an earlier step, which it handles the same way.
 */
export function writeIntent(r: Runner, name: string, intent: Intent, durable = true): void {
  writeJsonAtomic(r, paths.intent(name), intent, { durable, quiet: true });
}

export function clearIntent(r: Runner, name: string): void {
  removeFileDurably(r, paths.intent(name), { quiet: true });
}

/** Machines with an intent.json: an operation running now, or one a crash interrupted. */
export function pendingMachines(): string[] {
  let names: string[];
  try {
    names = readdirSync(paths.machines());
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  return names.filter((n) => existsSync(paths.intent(n))).sort();
}
