// intent.json: what a mutating operation set out to do and how far it got.
// Written before the first change, updated after every step, removed at
// the end. A leftover one means boxctl was interrupted; recover.ts reads it.
import { renameSync, writeFileSync } from "node:fs";
import * as v from "valibot";
import { paths } from "../paths.ts";
import { runnerConfig } from "../runner.ts";
import { readJson, removeFileDurably, writeJsonAtomic } from "../state.ts";

export const INTENT_VERSION = 1;

const Gen = v.nullable(v.pipe(v.number(), v.integer(), v.minValue(1)));

export const IntentSchema = v.object({
  version: v.literal(INTENT_VERSION),
  verb: v.picklist(["cutover-instance", "fallback-instance", "reset", "delete-instance"]),
  pid: v.number(),
  started: v.pipe(v.string(), v.isoTimestamp()),
  /** current and fallback before the operation: what a rollback restores. */
  oldCurrent: Gen,
  oldFallback: Gen,
  /** The instance the operation works on: the new current, or the one reset or deleted. */
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
export function writeIntent(name: string, intent: Intent, durable = true): void {
  if (runnerConfig.dryRun) return;
  if (durable) {
    writeJsonAtomic(paths.intent(name), intent);
    return;
  }
  const tmp = `${paths.intent(name)}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(intent, null, 2)}\n`);
  renameSync(tmp, paths.intent(name));
}

export function clearIntent(name: string): void {
  if (runnerConfig.dryRun) return;
  removeFileDurably(paths.intent(name));
}
