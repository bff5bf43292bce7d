#!/usr/bin/env bash
# debian-download.sh SUITE ARCH PACKAGE CACHEDIR
# Prints the path of Debian's PACKAGE (from SUITE, for architecture ARCH) in
# CACHEDIR, downloading it there first with `apt-get download` when no
# PACKAGE_*_ARCH.deb is cached yet. Nothing is installed.
#
# The download goes through a PRIVATE apt configuration: its own sources list
# (only SUITE, on the Debian archive this machine's apt already uses), its own
# lists and cache, deleted afterwards. No other apt call ever sees SUITE or
# ARCH, so a later `apt-get install` cannot upgrade the system from it. apt
# checks the .deb against SUITE's signed Release/Packages (Debian's keyring).
# With several cached versions, the newest is printed.
set -euo pipefail
[[ $# == 4 ]] || { echo "usage: debian-download.sh SUITE ARCH PACKAGE CACHEDIR" >&2; exit 2; }
suite=$1 arch=$2 pkg=$3 cache=$4
[[ $suite =~ ^[a-z-]+$ && $arch =~ ^[a-z0-9]+$ && $pkg =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || { echo "debian-download: bad argument" >&2; exit 2; }
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mkdir -p "$cache"

newest_cached() {
  local best= f v bv=
  for f in "$cache/${pkg}_"*"_$arch.deb"; do
    [[ -f $f ]] || continue
    v=$(dpkg-deb -f "$f" Version)
    if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$bv"; then best=$f bv=$v; fi
  done
  [[ -n $best ]] && echo "$best"
}

if ! newest_cached; then
  # The archive this machine already uses for Debian (its first main-suite
  # Packages index), so the private list goes through the same mirror/proxy.
  archive() { apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' 2>/dev/null |
              awk '$2 ~ /^[a-z]+$/ && $1 !~ /security/ {print $1; exit}'; }
  uri=$(archive)
  # indextargets lists only what `apt-get update` has fetched (a fresh or cleaned machine has nothing).
  [[ -n $uri ]] || { apt-get update -qq >&2; uri=$(archive); }
  [[ -n $uri ]] || { echo "debian-download: no Debian archive in this machine's apt sources" >&2; exit 1; }
  [[ -s $keyring ]] || { echo "debian-download: $keyring missing (package debian-archive-keyring)" >&2; exit 1; }
  apt_dir=$(mktemp -d /tmp/debian-download.XXXXXX)
  trap 'rm -rf "$apt_dir"' EXIT
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  # Architecture-all packages are listed in every architecture's index: use this machine's.
  apt_arch=$arch; [[ $arch == all ]] && apt_arch=$(dpkg --print-architecture)
  echo "deb [signed-by=$keyring arch=$apt_arch] $uri $suite main" > "$apt_dir/sources.list"
  opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=- -o "Dir::State::Lists=$apt_dir/lists"
        -o "Dir::Cache=$apt_dir/cache" -o "APT::Architecture=$apt_arch" -o "APT::Architectures::=$apt_arch" -o APT::Sandbox::User=root)
  echo "debian-download: $pkg ($suite, $arch) from $uri, private apt configuration" >&2
  apt-get -qq "${opts[@]}" update >&2
  (cd "$cache" && apt-get -qq "${opts[@]}" download "$pkg:$apt_arch/$suite" >&2)
  newest_cached || { echo "debian-download: $pkg not in $cache after the download" >&2; exit 1; }
fi
