#!/usr/bin/env bash
# Builds one cached root filesystem for the system tests.
# The cache key is the sha256 of this file plus the target name, so any
# change to the recipe below rebuilds what depends on it.
#
#   recipe.sh host bookworm|trixie|sid DIR   a test host (systemd + node)
#   recipe.sh guest bookworm DIR         a minimal bootable guest tree
set -euo pipefail

kind=$1 suite=$2 dir=$3

common=systemd,systemd-sysv,dbus,util-linux,tar,xz-utils,zstd,bzip2,gzip
case $kind in
  host)  pkgs=$common,systemd-container,nodejs,acl,attr,libcap2-bin,procps,libnss-mymachines,locales,util-linux-locales,libc-l10n,man-db,bash-completion,python3,curl ;;
  guest) pkgs=$common,procps ;;
  *) echo "recipe.sh: unknown kind '$kind'" >&2; exit 2 ;;
esac

debootstrap --variant=minbase --include="$pkgs" "$suite" "$dir" >&2
echo "cache.sh-stage: finishing" >&2

# A German locale with its translations, so that the tests can check that
# boxctl never depends on a tool's English message (it runs them in C).
if [[ $kind == host ]]; then
  sed -i 's/^# *\(de_DE.UTF-8 UTF-8\)/\1/' "$dir/etc/locale.gen"
  chroot "$dir" locale-gen >&2
fi

# Throw-away machines: no root password, so `machinectl login` and the
# console accept root without a prompt for a password.
chroot "$dir" passwd -d root >/dev/null
echo "pts/0" >>"$dir/etc/securetty" 2>/dev/null || true
# The machine-id is left empty so each boot of a copy gets its own.
: >"$dir/etc/machine-id"
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
