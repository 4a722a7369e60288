import { printable, UsageError } from "./errors.ts";

/**
 * The safe set for machine and image names: a single path component and a
 * unit-name fragment that needs no escaping.
 */
export const NAME_RULE =
  "1-64 characters from a-z A-Z 0-9 . _ -, starting with a letter or digit, without '..'";
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidName(name: string): boolean {
  return NAME_RE.test(name) && !name.includes("..") && !name.endsWith(".");
}

/**
 * A new machine's name must also be a hostname, as systemd-nspawn and
 * machined take only those (hostname_is_valid: labels of letters, digits
 * and '-', separated by single dots, none starting or ending with '-');
 * without this, '_' passed the safe set and nspawn refused the name once
 * the machine was mounted and recorded ("Invalid machine name").
 */
export const MACHINE_NAME_RULE =
  "1-64 characters: letters, digits and '-', in labels separated by single dots, none starting or ending with '-' (systemd's rule for a hostname)";
const LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;

export function isHostname(name: string): boolean {
  return name.length >= 1 && name.length <= 64 && name.split(".").every((l) => LABEL_RE.test(l));
}

export function checkNewMachineName(name: string): string {
  if (!isHostname(name)) {
    throw new UsageError(
      `invalid machine name '${printable(name)}': systemd-nspawn takes only a hostname`,
      `a machine name is ${MACHINE_NAME_RULE}`,
    );
  }
  return name;
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
