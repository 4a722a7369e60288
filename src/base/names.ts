import { printable, UsageError } from "./errors.ts";

/**
 * The safe set for machine and image names. It is stricter than systemd's
 * machine names so that a name is always a valid hostname, a single path
 * component and a unit-name fragment that needs no escaping.
 */
export const NAME_RULE =
  "1-64 characters from a-z A-Z 0-9 . _ -, starting with a letter or digit, without '..'";
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidName(name: string): boolean {
  return NAME_RE.test(name) && !name.includes("..") && !name.endsWith(".");
}

export function checkName(kind: "machine" | "image", name: string): string {
  if (!isValidName(name)) {
    throw new UsageError(
      `invalid ${kind} name '${printable(name)}'`,
      `a ${kind} name is ${NAME_RULE}`,
    );
  }
  return name;
}
