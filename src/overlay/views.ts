// Private users: an idmapped, read-only view of an image, used
// as the overlay's lower layer, so that a container in its own user
// namespace (PrivateUsers=BASE:65536) sees the image's files as its own
// without one byte of it being chowned or copied up.
//
// overlayfs cannot be idmapped as a whole, but it accepts an idmapped lower
// layer (Linux 5.19+). Debian 13's mount(8) could make the view itself
// (-o X-mount.idmap=0:BASE:65536, util-linux 2.39+); Debian 12's 2.38 cannot,
// and Debian 12 packages no tool that can. So boxctl ships one small perl
// script (perl-base and util-linux are Essential on Debian; node cannot make
// these system calls) and runs it from a oneshot service that the overlay's
// mount unit requires. The same script on both releases: one code path, one
// set of tests, and the same behaviour after a reboot.
//
// Pure functions; the design and its measurements are in
// docs/private-users.md.

import { BoxError } from "../base/errors.ts";
import { BASE_MAX, BASE_MIN, isBase, UID_RANGE } from "../base/uids.ts";
import type { Runner } from "../host/runner.ts";
import { plainPathFor } from "./units.ts";

/**
 * The lowest BASE that no boxctl machine holds and that `inUse` (an NSS
 * lookup of BASE and BASE+65534, say) does not report as taken.
 */
export function allocateBase(
  taken: Iterable<number>,
  inUse: (base: number) => boolean = () => false,
): number {
  const held = new Set(taken);
  for (let b = BASE_MIN; b <= BASE_MAX; b += UID_RANGE) {
    if (!held.has(b) && !inUse(b)) return b;
  }
  throw new Error(`no free uid range left between ${BASE_MIN} and ${BASE_MAX + UID_RANGE - 1}`);
}

/**
 * A BASE for a machine's first private-users instance: the lowest that no
 * boxctl machine holds (taken), that no user or group of the host's name
 * service has, and that claim gets (another command may be picking at the
 * same moment: store/machine.ts, claimBase).
 */
export async function pickBase(
  r: Runner,
  taken: number[],
  claim: (base: number) => boolean = () => true,
): Promise<number> {
  const skip = new Set<number>();
  for (;;) {
    let base: number;
    try {
      base = allocateBase(taken, (b) => skip.has(b));
    } catch (e) {
      throw new BoxError((e as Error).message, "delete machines you no longer need");
    }
    // getent exits 2 for a key it does not know.
    const user = await r.run(["getent", "passwd", String(base)], { check: false });
    const group = await r.run(["getent", "group", String(base)], { check: false });
    if (user.code === 2 && group.code === 2 && claim(base)) return base;
    skip.add(base);
  }
}

/**
 * The view maker: perl SCRIPT SOURCE VIEW BASE COUNT mounts SOURCE at VIEW,
 * read-only, with on-disk uid/gid N shown as BASE+N. The mapping is held by
 * a user namespace that `unshare --user` makes for the time of the call
 * (the mount keeps a reference to it). Syscall numbers 428 (open_tree), 429
 * (move_mount) and 442 (mount_setattr) are the same on every architecture.
 * Non-recursive: an image's rootfs is one directory of one file system.
 */
export const VIEW_SCRIPT = String.raw`# Written by boxctl: an idmapped, read-only view of an image (see boxctl(8)).
# usage: perl idmap-view.pl SOURCE VIEW BASE COUNT
#        perl idmap-view.pl --umount VIEW    (nothing to do if VIEW is not mounted)
use strict;
use warnings;
sub mounted {
  my ($path) = @_;
  open(my $mi, '<', '/proc/self/mountinfo') or die "idmap-view: /proc/self/mountinfo: $!\n";
  while (<$mi>) {
    my $mp = (split / /)[4];
    $mp =~ s/\\([0-7]{3})/chr(oct($1))/ge;
    return 1 if $mp eq $path;
  }
  return 0;
}
if (@ARGV == 2 && $ARGV[0] eq '--umount') {
  # systemd may be unmounting it at the same time (shutdown): only the result counts.
  system('/bin/umount', '--', $ARGV[1]) if mounted($ARGV[1]);
  exit(mounted($ARGV[1]) ? 1 : 0);
}
my ($src, $dst, $base, $count) = @ARGV;
die "usage: idmap-view.pl SOURCE VIEW BASE COUNT | --umount VIEW\n"
  unless @ARGV == 4 && $base =~ /^[0-9]+$/ && $count =~ /^[0-9]+$/;
for my $p ($src, $dst) { die "idmap-view: '$p' is not an absolute path\n" unless $p =~ m{^/}; }
die "idmap-view: $dst is already a mount point\n" if mounted($dst);
my $path = '';
for my $part (grep { length } split m{/}, $dst) {
  $path .= "/$part";
  next if -d $path;
  # Another machine's view, started beside this one at boot, may make it first.
  mkdir($path, 0700) or -d $path or die "idmap-view: mkdir $path: $!\n";
}
pipe(my $go_r, my $go_w) or die "idmap-view: pipe: $!\n";
pipe(my $ready_r, my $ready_w) or die "idmap-view: pipe: $!\n";
my $pid = fork() // die "idmap-view: fork: $!\n";
if (!$pid) {
  open(STDIN, '<&', $go_r) or die "idmap-view: $!\n";
  open(STDOUT, '>&', $ready_w) or die "idmap-view: $!\n";
  exec('/usr/bin/unshare', '--user', '--', '/bin/sh', '-c', 'echo ready; read x') or die "idmap-view: unshare: $!\n";
}
close $go_r;
close $ready_w;
my $ok = eval {
  sysread($ready_r, my $buf, 6) == 6 or die "idmap-view: unshare --user did not start\n";
  for my $f ('uid_map', 'gid_map') {
    open(my $m, '>', "/proc/$pid/$f") or die "idmap-view: /proc/$pid/$f: $!\n";
    syswrite($m, "0 $base $count\n") or die "idmap-view: writing $f: $!\n";
    close($m) or die "idmap-view: writing $f: $!\n";
  }
  open(my $ns, '<', "/proc/$pid/ns/user") or die "idmap-view: /proc/$pid/ns/user: $!\n";
  # syscall() wants strings it may write to, not constants.
  my ($s, $d, $empty) = ("$src", "$dst", '');
  # open_tree(AT_FDCWD, SOURCE, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
  my $tree = syscall(428, -100, $s, 0x1 | 0x80000);
  die "idmap-view: open_tree $src: $!\n" if $tree < 0;
  # mount_setattr(tree, "", AT_EMPTY_PATH, {MOUNT_ATTR_RDONLY | MOUNT_ATTR_IDMAP, 0, 0, userns}, 32)
  my $attr = pack('QQQQ', 0x1 | 0x100000, 0, 0, fileno($ns));
  # EINVAL: the file system under SOURCE cannot be idmapped (overlayfs; tmpfs before Linux 6.3).
  syscall(442, $tree, $empty, 0x1000, $attr, length $attr) == 0
    or die "idmap-view: mount_setattr (idmap 0:$base:$count) on $src: $!\n"
      . ($!{EINVAL} ? "idmap-view: its file system cannot be idmapped; private users need the store on one that can (ext4, xfs, btrfs; tmpfs from Linux 6.3)\n" : "");
  # move_mount(tree, "", AT_FDCWD, VIEW, MOVE_MOUNT_F_EMPTY_PATH)
  syscall(429, $tree, $empty, -100, $d, 0x4) == 0 or die "idmap-view: move_mount to $dst: $!\n";
  1;
};
my $err = $@;
close $go_w;
waitpid($pid, 0);
die $err unless $ok;
`;

export interface ViewSpec {
  machine: string;
  gen: number;
  image: string;
  /** The image's rootfs, /var/lib/boxctl/images/IMAGE/rootfs. */
  source: string;
  /** Where the view is mounted; see viewPath. */
  view: string;
  base: number;
  /** Where boxctl wrote VIEW_SCRIPT, e.g. /var/lib/boxctl/libexec/idmap-view.pl. */
  script: string;
}

/**
 * Views live on /run (a reboot drops them; the unit makes them again), in
 * a 0700 directory: not in the store, so that a backup or `du` of
 * /var/lib/boxctl does not walk each image once more per instance, and
 * host users cannot reach the shifted setuid programs.
 */
export function viewPath(machine: string, gen: number, runDir = "/run/boxctl"): string {
  return `${runDir}/views/${machine}/${gen}`;
}

/** One unit per instance: a cutover needs the old and the new view at once. */
export function viewUnitName(machine: string, gen: number): string {
  return `boxctl-view-${machine}-${gen}.service`;
}

const plainPath = (p: string) => plainPathFor(p, "for an idmapped view");

export function viewArgv(s: ViewSpec): string[] {
  if (!isBase(s.base)) throw new Error(`uid base ${s.base} is not one of boxctl's`);
  return [
    "/usr/bin/perl",
    plainPath(s.script),
    plainPath(s.source),
    plainPath(s.view),
    String(s.base),
    String(UID_RANGE),
  ];
}

/**
 * The oneshot service that holds the view. DefaultDependencies=no is
 * required, not a nicety: every mount unit is ordered Before=local-fs.target,
 * so a service with default dependencies (After=basic.target) that an overlay
 * mount is ordered after would make an ordering cycle at boot, and systemd
 * would drop a job to break it. Conflicts/Before=umount.target unmount it at
 * shutdown, after the overlay (which is ordered after it) is gone.
 * ExecStop tolerates a view already unmounted: at shutdown systemd's own
 * unit for the mount point (run-boxctl-views-...mount, made from
 * mountinfo) unmounts it in parallel, and a plain umount then failed the
 * service (seen on Debian 13).
 * StopWhenUnneeded=yes: the view lives as long as an overlay mount needs it;
 * stopping (or unmounting) the instance's mount unit unmounts its view too.
 */
export function viewUnitText(s: ViewSpec): string {
  const argv = viewArgv(s);
  return `# Generated by boxctl; cutover-instance and fallback-instance rewrite it.
[Unit]
Description=Image ${s.image} with uids shifted to ${s.base}, for instance ${s.gen} of container ${s.machine} (boxctl)
Documentation=man:boxctl(8)
DefaultDependencies=no
StopWhenUnneeded=yes
After=local-fs-pre.target
Before=umount.target
Conflicts=umount.target
RequiresMountsFor=${plainPath(s.source)} ${plainPath(s.script)}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${argv.join(" ")}
ExecStop=/usr/bin/perl ${plainPath(s.script)} --umount ${plainPath(s.view)}
`;
}
