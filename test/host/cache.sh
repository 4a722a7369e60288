#!/usr/bin/env bash
# Builds (once) and prints the cached trees the system tests and the demo use:
#   host-bookworm   Debian 12 test host, systemd 252
#   host-trixie     Debian 13 test host, systemd 257
#   host-sid        Debian unstable test host, the newest systemd (262 in
#                   2026-11); booted with the unified cgroup hierarchy
#   guest-bookworm  a minimal bootable guest, plus images/foo-0.1.tar and
#                   images/foo-0.2.tar made from it
#
# The cache lives outside the repository, in $BOXCTL_TEST_CACHE
# (default /var/cache/boxctl-test), one directory per target named by a hash
# of the recipe. A target is built in a .partial directory and renamed into
# place only when complete, so an interrupted build is simply rebuilt.
# Targets of another recipe (another branch's test/host/) are removed once
# they are two days old and no test host is mounted on them.
#
#   cache.sh [TARGET...]      build what is missing (default: the guest and
#                             a host per suite in $BOXCTL_TEST_SUITES, which
#                             defaults to "bookworm trixie sid")
#   cache.sh --path TARGET    print the directory of a built target
#
# A build says on stderr what it is doing, a line per stage and target
# (they run in parallel); a warm cache prints nothing. A failed build's
# log is kept at CACHE/TARGET-HASH.partial.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${BOXCTL_TEST_CACHE:-/var/cache/boxctl-test}
recipe_hash=$(cat "$here/recipe.sh" "$here/cache.sh" | sha256sum | cut -c1-12)

path_of() { echo "$cache/$1-$recipe_hash"; }

if [[ ${1:-} == --path ]]; then
  p=$(path_of "$2")
  [[ -d $p ]] || { echo "cache.sh: $2 is not built; run test/host/cache.sh" >&2; exit 1; }
  echo "$p"; exit 0
fi

need() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
  # The fleet test drives the test hosts with Debian's Ansible (community.docker.nsenter).
  command -v ansible-playbook >/dev/null || missing+=(ansible)
  ((${#missing[@]} == 0)) && return
  [[ $(id -u) == 0 ]] || { echo "cache.sh: needs ${missing[*]}; run as root to install them" >&2; exit 1; }
  echo "cache.sh: installing ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Turns the guest tree into the two image versions the tests stage. They
# differ visibly in /etc/foo-release, which each step of the demo shows.
guest_images() {
  local tree=$1 out=$2 v
  mkdir -p "$out"
  for v in 0.1 0.2; do
    printf 'NAME=foo\nVERSION=%s\n' "$v" >"$tree/etc/foo-release"
    tar --numeric-owner --xattrs --xattrs-include='*' --acls -C "$tree" -cf "$out/foo-$v.tar" .
  done
  rm "$tree/etc/foo-release"
}

# Copies a build's output to its log and says on stderr, once per stage,
# what the build is doing. The stages are debootstrap's own (its "I:" lines)
# and the "cache.sh-stage: ..." lines this script and recipe.sh print.
progress() {
  local target=$1 log=$2 line stage="" next n=0 t0=$SECONDS
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$log"
    case $line in
      "I: Retrieving "*Release*|"I: Retrieving Packages"*|"I: Resolving"*) next="resolving packages" ;;
      "I: Retrieving "*) next="downloading packages"; n=$((n + 1)) ;;
      "I: Extracting "*) next="extracting $n packages" ;;
      "I: Installing core packages"*) next="installing core packages" ;;
      "I: Unpacking required"*) next="unpacking required packages" ;;
      "I: Configuring required"*) next="configuring required packages" ;;
      "I: Unpacking the base"*) next="unpacking the other packages" ;;
      "I: Configuring the base"*) next="configuring the other packages" ;;
      "cache.sh-stage: "*) next=${line#cache.sh-stage: } ;;
      *) continue ;;
    esac
    [[ $next == "$stage" ]] && continue
    stage=$next
    echo "cache.sh: $target: $stage... ($((SECONDS - t0))s)" >&2
  done
}

build() {
  local target=$1 final tmp
  final=$(path_of "$target")
  [[ -d $final ]] && return 0
  tmp="$final.partial"
  rm -rf "$tmp" "$tmp.log"
  mkdir -p "$tmp"
  local start=$SECONDS
  case $target in
    host-bookworm|host-trixie|host-sid) bash "$here/recipe.sh" host "${target#host-}" "$tmp/root" ;;
    guest-bookworm)
      bash "$here/recipe.sh" guest bookworm "$tmp/root" &&
        echo "cache.sh-stage: making images/foo-0.1.tar and foo-0.2.tar" &&
        guest_images "$tmp/root" "$tmp/images" ;;
  esac 2>&1 | progress "$target" "$tmp.log" || {
    echo "cache.sh: $target: FAILED after $((SECONDS - start))s; the log is $tmp.log, it ends:" >&2
    tail -n 5 "$tmp.log" | sed 's/^/    /' >&2
    return 1
  }
  mv "$tmp.log" "$tmp/build.log"
  mv -T "$tmp" "$final"
  touch "$final"
  echo "cache.sh: $target: built in $((SECONDS - start))s -> $final" >&2
}

need
mkdir -p "$cache"
# One builder at a time per cache; a second waits rather than racing.
exec 9>"$cache/.lock"
flock -n 9 || { echo "cache.sh: waiting for another cache.sh to finish building in $cache" >&2; flock 9; }
# Drop what an interrupted run left, and what another recipe built once it
# is two days old and no mount (a test host's overlay) uses it: developers
# whose test/host/ differ may share one cache, and one run must not pull the
# root from under another's hosts.
for d in "$cache"/*; do
  [[ -d $d ]] || continue
  case $d in
    *-"$recipe_hash") continue ;;
    *.partial) ;;
    *)
      grep -qF "$d/" /proc/self/mountinfo && continue
      [[ -n $(find "$d" -maxdepth 0 -mmin -2880) ]] && continue ;;
  esac
  rm -rf "$d"
done
targets=("$@")
if ((${#targets[@]} == 0)); then
  for s in ${BOXCTL_TEST_SUITES:-bookworm trixie sid}; do targets+=("host-$s"); done
  targets+=(guest-bookworm)
fi
missing=()
for t in "${targets[@]}"; do
  case $t in
    host-bookworm|host-trixie|host-sid|guest-bookworm) ;;
    *) echo "cache.sh: unknown target '$t' (known: host-bookworm host-trixie host-sid guest-bookworm)" >&2; exit 2 ;;
  esac
  [[ -d $(path_of "$t") ]] || missing+=("$t")
done
((${#missing[@]} == 0)) && exit 0
echo "cache.sh: building ${missing[*]} in $cache (once; a few minutes, in parallel)" >&2
pids=()
for t in "${targets[@]}"; do build "$t" & pids+=($!); done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
