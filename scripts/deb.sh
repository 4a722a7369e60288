#!/usr/bin/env bash
# npm run deb: builds dist/boxctl_VERSION_all.deb from the bundle, with
# dpkg-deb alone (dpkg is Essential, so this runs on any Debian machine that
# has node and this repository's dev dependencies; no debhelper, no
# dpkg-dev, no source package).
#
#   npm run deb                          the version in package.json, which
#                                        must match debian/changelog's top entry
#   BOXCTL_VERSION=0.1.1 npm run deb     a test build with another version (the
#                                        upgrade test): an UNRELEASED changelog
#                                        entry is generated for it
#   BOXCTL_DEB_DIR=DIR npm run deb       write the .deb to DIR, not dist/
#
# It bundles the sources itself, into a temporary directory: dist/boxctl.mjs
# and dist/boxctl.cjs stay as npm run build left them, so a test build of
# another version does not change the bundle that tests are running.
#
# Reproducible: the same commit gives the same bytes. Every file's mtime is
# SOURCE_DATE_EPOCH (the commit's time unless set), the owner is root:root,
# modes are set explicitly, gzip runs with -n, and dpkg-deb sorts the tar
# members and takes its ar and tar dates from SOURCE_DATE_EPOCH.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022
export LC_ALL=C TZ=UTC

pkgjson_version=$(node -p 'require("./package.json").version')
upstream=${BOXCTL_VERSION:-$pkgjson_version}
[[ $upstream =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || { echo "deb.sh: bad version '$upstream'" >&2; exit 2; }
# The top entry of debian/changelog: "boxctl (0.1.0-1) unstable; urgency=medium".
top=$(sed -n '1s/^boxctl (\([^)]*\)).*/\1/p' debian/changelog)
[[ -n $top ]] || { echo "deb.sh: debian/changelog does not start with a boxctl entry" >&2; exit 1; }

if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || stat -c %Y debian/changelog)
fi
export SOURCE_DATE_EPOCH

describe=$(git describe --always --dirty 2>/dev/null || echo "no git")
outdir=${BOXCTL_DEB_DIR:-dist}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
bundle=$stage/bundle
BOXCTL_VERSION=$upstream BOXCTL_OUTDIR=$bundle node build.mjs
root=$stage/root
changelog=$stage/changelog
maint=$(sed -n 's/^Maintainer: //p' debian/control)

if [[ ${top%-*} == "$upstream" ]]; then
  version=$top
  cp debian/changelog "$changelog"
elif [[ -n ${BOXCTL_VERSION:-} ]]; then
  # A test build: its own entry on top, so the package's changelog and version agree.
  version=$upstream-1
  {
    printf 'boxctl (%s) UNRELEASED; urgency=medium\n\n' "$version"
    printf '  * Test build from git %s (BOXCTL_VERSION=%s); not a release.\n\n' "$describe" "$upstream"
    printf ' -- %s  %s\n\n' "$maint" "$(date -R -d "@$SOURCE_DATE_EPOCH")"
    cat debian/changelog
  } >"$changelog"
else
  echo "deb.sh: package.json says $upstream but debian/changelog's top entry is $top;" >&2
  echo "  add a debian/changelog entry for $upstream-1" >&2
  exit 1
fi

# The program: one file, the bundle built as CommonJS (boxctl.cjs), run
# by Debian's node. Debian 12's node 18 refuses ES module syntax in a file
# whose name does not end in .mjs, and CommonJS starts a little sooner (3% on
# Debian 12's node 18, 8 to 11% on Debian 13's node 20). It is one plain file,
# so it can be copied, and needs no link to a .mjs.
install -d "$root/usr/bin"
install -m 0755 "$bundle/boxctl.cjs" "$root/usr/bin/boxctl"
head -1 "$root/usr/bin/boxctl" | grep -qx '#!/usr/bin/node' ||
  { echo "deb.sh: boxctl.cjs does not start with #!/usr/bin/node" >&2; exit 1; }

# The man page, generated from the verb table (npm run man; a unit test keeps
# docs/boxctl.8 fresh), with the package's version in its footer.
install -d "$root/usr/share/man/man8"
sed "1,3s|\"boxctl $pkgjson_version\"|\"boxctl $upstream\"|" docs/boxctl.8 | gzip -9n >"$root/usr/share/man/man8/boxctl.8.gz"

# Bash completion, loaded on demand by bash-completion. No #! line; the
# script's own "Install:" hint is for the npm path, not for the package.
install -d "$root/usr/share/bash-completion/completions"
env -u BOXCTL_STORE node "$bundle/boxctl.cjs" completion bash | grep -v '^# Install: ' \
  >"$root/usr/share/bash-completion/completions/boxctl"
if grep -q '^#!' "$root/usr/share/bash-completion/completions/boxctl"; then
  echo "deb.sh: the completion script has a #! line" >&2; exit 1
fi

# The Ansible collection boxctl.boxctl, where Debian's ansible finds it
# without configuration (its default collections path); its tests stay out.
coll="$root/usr/share/ansible/collections/ansible_collections/boxctl/boxctl"
install -d "$coll"
(cd ansible && tar -c --exclude=tests --exclude='__pycache__' --exclude='*.pyc' --exclude=.gitignore \
  galaxy.yml meta plugins playbooks README.md) | tar -x -C "$coll"

# The inotify limit that many containers need (debian/sysctl.conf says why).
install -d "$root/usr/lib/sysctl.d"
cp debian/sysctl.conf "$root/usr/lib/sysctl.d/30-boxctl.conf"

install -d "$root/usr/share/doc/boxctl" "$root/usr/share/lintian/overrides"
cp debian/copyright "$root/usr/share/doc/boxctl/copyright"
gzip -9n <"$changelog" >"$root/usr/share/doc/boxctl/changelog.Debian.gz"
cp debian/lintian-overrides "$root/usr/share/lintian/overrides/boxctl"

# Modes and dates, set rather than inherited from the checkout.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f ! -path "$root/usr/bin/boxctl" -exec chmod 0644 {} +

# Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, and
# one per directory and symlink.
size=$(find "$root" -mindepth 1 -printf '%y %s\n' |
  awk '$1 == "f" { t += int(($2 + 1023) / 1024); next } { t += 1 } END { print t }')

install -d "$root/DEBIAN"
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$size/" debian/control >"$root/DEBIAN/control"
install -m 0755 debian/postinst debian/postrm "$root/DEBIAN/"
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$outdir"
out=$outdir/boxctl_${version}_all.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
