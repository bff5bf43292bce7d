#!/usr/bin/env bash
# A minimal Debian 12 (bookworm) root for the fresh-machine checks, and a way
# to run commands in it.
#
#   scripts/debian-root.sh make DIR [--cache DIR]
#       debootstrap --variant=minbase bookworm into DIR (which must not exist).
#       The mirror is the one this host's apt uses for bookworm, read from
#       /etc/apt/sources.list{,.d/*} (env MB_DEBIAN_MIRROR overrides); DIR's
#       apt sources are that mirror (bookworm, bookworm-updates) and the host's
#       bookworm-security source if it has one: no other repository.
#       --cache DIR (or env MB_CACHE_DIR): keep debootstrap's tarball and the
#       finished root there (debian-root/) and start from them next time;
#       without it, a fresh debootstrap.
#   scripts/debian-root.sh run DIR [--bind HOSTDIR:ROOTDIR]... -- CMD [ARG...]
#       CMD in DIR (chroot) with /proc, /sys, /dev, /dev/pts, /run (tmpfs),
#       the host's resolv.conf and the binds, in a private mount namespace:
#       every mount goes when CMD ends, also on failure or a kill (the
#       namespace dies with its last process); the trap below unmounts anyway.
set -euo pipefail
SUITE=bookworm

die() { echo "debian-root: $*" >&2; exit 1; }

# "URI SUITE" for every deb source of the host, one-line and deb822 formats.
host_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\2 \3/p' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no") { n = split(uris, u, " "); m = split(suites, s, " "); for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j] } types = uris = suites = enabled = "" }
         /^[[:space:]]*$/ { flush(); next }
         /^#/ { next }
         { k = tolower($1); sub(/:$/, "", k); v = $0; sub(/^[^:]*:[[:space:]]*/, "", v)
           if (k == "types") types = v; else if (k == "uris") uris = v; else if (k == "suites") suites = v; else if (k == "enabled") enabled = tolower(v) }
         END { flush() }' "$f"
  done
}
uri_for() { host_sources | awk -v s="$1" '$2 == s { print $1; exit }'; }

make_root() {
  local dir=$1 cache=$2
  [[ ! -e $dir ]] || die "$dir exists"
  command -v debootstrap >/dev/null || die "debootstrap missing (Debian package debootstrap; scripts/install-deps.sh --test)"
  local mirror=${MB_DEBIAN_MIRROR:-$(uri_for "$SUITE")}
  [[ -n $mirror ]] || die "this host's apt has no source for $SUITE: set MB_DEBIAN_MIRROR"
  local security; security=$(uri_for "$SUITE-security")
  local arch; arch=$(dpkg --print-architecture)
  mkdir -p "$(dirname "$dir")"
  if [[ -n $cache && -s $cache/debian-root/$SUITE-minbase-$arch.root.tgz ]]; then
    # The finished root of an earlier run: seconds instead of debootstrap's minutes.
    mkdir -p "$dir"
    tar -xzf "$cache/debian-root/$SUITE-minbase-$arch.root.tgz" -C "$dir" --numeric-owner || die "unpacking the cached root failed"
  elif [[ -n $cache ]]; then
    local tarball=$cache/debian-root/$SUITE-minbase-$arch.tgz
    if [[ ! -s $tarball ]]; then
      mkdir -p "$cache/debian-root"
      local tmp; tmp=$(mktemp -d "$cache/debian-root/.make.XXXXXX")
      debootstrap --variant=minbase --make-tarball="$tarball.part" "$SUITE" "$tmp" "$mirror" >&2 || { rm -rf "$tmp"; die "debootstrap --make-tarball failed"; }
      rm -rf "$tmp"; mv "$tarball.part" "$tarball"
    fi
    debootstrap --variant=minbase --unpack-tarball="$tarball" "$SUITE" "$dir" "$mirror" >&2 || die "debootstrap from $tarball failed"
    tar -czf "$cache/debian-root/$SUITE-minbase-$arch.root.tgz.part" -C "$dir" --numeric-owner . &&
      mv "$cache/debian-root/$SUITE-minbase-$arch.root.tgz.part" "$cache/debian-root/$SUITE-minbase-$arch.root.tgz"
  else
    debootstrap --variant=minbase "$SUITE" "$dir" "$mirror" >&2 || die "debootstrap failed"
  fi
  rm -f "$dir/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" "$SUITE" "$SUITE"
    [[ -z $security ]] || printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$security" "$SUITE"
  } > "$dir/etc/apt/sources.list.d/debian.sources"
  echo "debian-root: $SUITE ($arch, minbase) in $dir" >&2
}

run_root() {
  local dir=$1; shift
  local binds=()
  while (($#)); do
    case $1 in
      --bind) binds+=("$2"); shift 2 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  (($#)) || die "run: no command"
  [[ -x $dir/bin/sh ]] || die "$dir is not a root (no /bin/sh)"
  cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
  # The inner script runs in its own mount namespace (unshare -m, private
  # propagation: nothing mounted here reaches the host, e.g. through the /dev bind).
  MB_ROOT=$dir MB_BINDS=$(printf '%s\n' "${binds[@]}") unshare --mount --propagation private -- bash -euc '
    R=$MB_ROOT
    mounted=()
    cleanup() { local i; for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done; }
    trap cleanup EXIT
    m() { mount "$@"; mounted+=("${@: -1}"); }
    m -t proc proc "$R/proc"
    m -t sysfs sysfs "$R/sys"
    m --rbind /dev "$R/dev"
    m -t tmpfs -o mode=755 run "$R/run"
    mkdir -p "$R/run/lock"
    while IFS= read -r b; do
      [[ -n $b ]] || continue
      mkdir -p "$R${b#*:}"; m --bind "${b%%:*}" "$R${b#*:}"
    done <<< "$MB_BINDS"
    chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
  ' debian-root "$@"
}

cmd=${1:-}; shift || true
case $cmd in
  make)
    dir=${1:-}; [[ -n $dir ]] || die "make DIR"; shift
    cache=${MB_CACHE_DIR:-}
    while (($#)); do case $1 in --cache) cache=$2; shift 2 ;; *) die "unknown argument $1" ;; esac; done
    make_root "$dir" "$cache" ;;
  run)
    dir=${1:-}; [[ -n $dir ]] || die "run DIR -- CMD"; shift
    run_root "$dir" "$@" ;;
  *) sed -n '2,18p' "$0"; exit 2 ;;
esac
