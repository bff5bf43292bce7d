#!/usr/bin/env bash
# The fresh-machine check: does `scripts/install-deps.sh --test` on a new
# Debian 12 bring every tool the tests use? Builds a minimal bookworm root
# (scripts/debian-root.sh: debootstrap from this host's apt mirror), copies
# this checkout in (tracked and untracked-but-not-ignored files: what a clone
# has), runs install-deps.sh --test inside (chroot), then every probe of
# scripts/tools.tsv inside. Fails naming the package of any tool that does
# not work there. The root is removed afterwards (--keep DIR keeps it there).
#
#   scripts/fresh-root-check.sh [--cache DIR] [--keep DIR] [--omit PKG]...
#
# --cache DIR (or env MB_CACHE_DIR): reuse debootstrap's tarball, the .debs
#   apt downloaded and the node runtime's .tgz from DIR (a developer's
#   repeated runs); without it everything is fetched fresh (CI).
# --omit PKG: install-deps leaves PKG out (MB_OMIT_PACKAGES): shows that the
#   check fails, naming PKG, when the install does not bring a needed package.
# Last line: "fresh-root-check: ok (N s)" or "fresh-root-check: FAILED ...".
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cache=${MB_CACHE_DIR:-} keep= omit=()
while (($#)); do
  case $1 in
    --cache) cache=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --omit) omit+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "fresh-root-check: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "fresh-root-check: needs root (debootstrap, chroot)"; echo "fresh-root-check: FAILED (not root)"; exit 1; }
started=$SECONDS
if [[ -n $keep ]]; then root=$keep; else
  work=$(mktemp -d /var/tmp/mb-fresh-root.XXXXXX)
  root=$work/root
  # The root's own mounts live in debian-root.sh's private mount namespace;
  # this only removes the files (--one-file-system: never into a stray mount).
  trap 'rm -rf --one-file-system "$work"' EXIT
fi
fail() { echo "fresh-root-check: FAILED: $* ($((SECONDS - started)) s)"; exit 1; }

bash scripts/debian-root.sh make "$root" ${cache:+--cache "$cache"} || fail "could not build the Debian root"
echo "fresh-root-check: root ready after $((SECONDS - started)) s"

# The checkout as a clone has it (no node_modules, dist/, build/, .runtime/).
dest=$root/root/metalboot
mkdir -p "$dest"
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$repo" ls-files -z --cached --others --exclude-standard | (cd "$repo" && tar --null -T - -cf - 2>/dev/null) | tar -xf - -C "$dest"
else
  tar -C "$repo" --exclude=./node_modules --exclude=./dist --exclude=./build --exclude=./.runtime --exclude=./.tap --exclude='./boot-assets/*.*' -cf - . | tar -xf - -C "$dest"
fi

binds=()
if [[ -n $cache ]]; then
  mkdir -p "$cache/apt-archives/partial" "$cache/node-runtime-root"
  binds+=(--bind "$cache/apt-archives:/var/cache/apt/archives" --bind "$cache/node-runtime-root:/var/cache/metalboot-fresh")
fi
# The one thing taken from the host besides the apt mirror: the CA certificates
# the host trusts for the npm registry, for networks that reach it through a
# TLS-inspecting proxy; a stock root would not reach it otherwise. npm's cafile
# is not enough on its own: under scripts/test.sh the pinned node comes first in
# PATH, and npm run by it no longer reads the system npm's global npmrc (cafile
# null there), so node's NODE_EXTRA_CA_CERTS and the system bundle count too.
env_in=(${cache:+MB_CACHE_DIR=/var/cache/metalboot-fresh})
ca_files=()
for f in "$(npm config get cafile 2>/dev/null || true)" "${NODE_EXTRA_CA_CERTS:-}" /etc/ssl/certs/ca-certificates.crt; do
  [[ -n $f && $f != null && -f $f ]] || continue
  [[ " ${ca_files[*]} " == *" $f "* ]] || ca_files+=("$f")
done
if ((${#ca_files[@]})); then
  mkdir -p "$root/usr/local/share/metalboot-fresh"
  cat "${ca_files[@]}" > "$root/usr/local/share/metalboot-fresh/npm-ca.crt"
  chmod 0644 "$root/usr/local/share/metalboot-fresh/npm-ca.crt"
  env_in+=(npm_config_cafile=/usr/local/share/metalboot-fresh/npm-ca.crt)
fi
inroot() { bash scripts/debian-root.sh run "$root" "${binds[@]}" -- env "${env_in[@]}" "$@"; }

t0=$SECONDS
set +e
inroot env MB_OMIT_PACKAGES="${omit[*]}" bash /root/metalboot/scripts/install-deps.sh --test 2>&1 | sed 's/^/  install-deps: /'
rc=${PIPESTATUS[0]}
set -e
echo "fresh-root-check: install-deps.sh --test exit $rc after $((SECONDS - t0)) s"
set +e
probes=$(inroot bash -c 'cd /root/metalboot && bash scripts/check-tools.sh --scope test' 2>&1)
prc=$?
set -e
printf '%s\n' "$probes" | sed 's/^/  /'
nodejs=$(inroot dpkg-query -W -f='${Version}' nodejs 2>/dev/null || true)
echo "fresh-root-check: Debian nodejs in the root: ${nodejs:-none} (bootstrap only); runtime: $(inroot /root/metalboot/.runtime/node/bin/node --version 2>&1 || true)"
if ((prc != 0)); then fail "$(printf '%s\n' "$probes" | tail -n 1 | sed 's/^check-tools: //')"; fi
((rc == 0)) || fail "install-deps.sh --test exited $rc"
echo "fresh-root-check: ok ($((SECONDS - started)) s)"
