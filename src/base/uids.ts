// boxctl's uid ranges for private users: the numbers alone, so that any
// layer can tell a boxctl machine's uids (an archive's check, say) without
// reaching up into overlay/, where the ranges are allocated (views.ts).

/** Every container gets exactly 64K uids (systemd's docs/UIDS-GIDS.md). */
export const UID_RANGE = 0x10000;
/**
 * boxctl's BASEs: 0x70000000 to 0x7FFD0000, the range UIDS-GIDS.md lists as
 * unused between nspawn's own pick range (0x00080000 to 0x6FFFFFFF, which
 * `-U` and `PrivateUsers=pick` draw from) and the foreign UID range
 * (0x7FFE0000 to 0x7FFEFFFF, systemd 258+), and below 2^31 (devpts). nspawn
 * never picks a range here, so no unmanaged container is given a boxctl
 * machine's uids, whether that machine is running or not, unless its
 * NAME.nspawn names them (machinectl clone copies the file: ranges.ts).
 * 4094 BASEs.
 */
export const BASE_MIN = 0x70000000;
export const BASE_MAX = 0x7ffd0000;

export function isBase(n: number): boolean {
  return Number.isInteger(n) && n >= BASE_MIN && n <= BASE_MAX && n % UID_RANGE === 0;
}
