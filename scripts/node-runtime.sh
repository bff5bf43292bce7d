#!/usr/bin/env bash
# Puts the pinned Node.js runtime (packaging/node-runtime) into DIR
# (default .runtime/node in the checkout): fetched from the npm registry with
# `npm pack` (any npm will do: Debian's, as a bootstrap), its sha256 checked
# against the pinned one before anything is unpacked. Does nothing when DIR
# already holds that version. Prints DIR.
#
#   scripts/node-runtime.sh [--dir DIR] [--cache DIR]
#
# --cache (or env MB_CACHE_DIR): keep the .tgz there (under node-runtime/) and
# reuse it when its sha256 still matches.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$PWD/.runtime/node
cache=${MB_CACHE_DIR:-}
while (($#)); do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "node-runtime: unknown argument $1" >&2; exit 2 ;;
  esac
done
pin() { sed -n "s/^$1=//p" packaging/node-runtime; }
pkg=$(pin package) version=$(pin version) sha=$(pin sha256)
[[ -n $pkg && -n $version && ${#sha} == 64 ]] || { echo "node-runtime: packaging/node-runtime lacks package/version/sha256" >&2; exit 1; }

if [[ -x $dir/bin/node && $("$dir/bin/node" --version 2>/dev/null) == "v$version" ]]; then echo "$dir"; exit 0; fi

tgz_dir=${cache:+$cache/node-runtime}
tgz_dir=${tgz_dir:-$PWD/.runtime}
mkdir -p "$tgz_dir"
tgz=$tgz_dir/$pkg-$version.tgz
if [[ ! -f $tgz ]] || ! echo "$sha  $tgz" | sha256sum --check --status; then
  rm -f "$tgz"
  echo "node-runtime: npm pack $pkg@$version" >&2
  # npm also checks the registry's sha512 integrity; ours is the pin.
  (cd "$tgz_dir" && npm pack "$pkg@$version" --loglevel=error --no-audit --no-fund >/dev/null) || { echo "node-runtime: npm pack $pkg@$version failed" >&2; exit 1; }
fi
if ! echo "$sha  $tgz" | sha256sum --check --status; then
  echo "node-runtime: $tgz sha256 $(sha256sum "$tgz" | cut -d' ' -f1), pinned $sha: refusing it" >&2
  rm -f "$tgz"; exit 1
fi
mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "$(dirname "$dir")/.node-runtime.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$tgz" -C "$tmp" --no-same-owner
[[ $("$tmp/package/bin/node" --version) == "v$version" ]] || { echo "node-runtime: unpacked node does not run or is not v$version" >&2; exit 1; }
rm -rf "$dir"; mv "$tmp/package" "$dir"
echo "node-runtime: node v$version ($pkg, sha256 $sha) in $dir" >&2
echo "$dir"
