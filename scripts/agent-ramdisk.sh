#!/usr/bin/env bash
# Builds the agent ramdisk (kernel + initrd) that machines with local disks boot for inspect,
# deploy, capture and erase (src/agent/). Debian packages only: Debian's kernel
# (linux-image-<flavour>, through its meta package), busybox-static, and the few tools the agent
# runs with exactly the shared libraries they need, all fetched with `apt-get download` and
# unpacked with dpkg-deb -x: nothing is installed on the host.
#
#   scripts/agent-ramdisk.sh [--arch x86_64|aarch64] [--out DIR] [--force]
#
# Output (DIR, default agent-assets/<arch>): vmlinuz, initrd.img, MANIFEST (the packages and
# versions, modules, sizes, sha256 of both files). Cached in $MB_AGENT_CACHE (default
# /var/cache/metalboot-agent)/<arch>-<key>, key = sha256 of this script, src/agent/*, the
# module list and every package's version: a second run with nothing changed copies the cached
# build (or does nothing when DIR already holds it); a new Debian kernel or busybox rebuilds.
# Reproducible: every file's mtime is SOURCE_DATE_EPOCH (default: the newest file in the
# unpacked packages, itself fixed by their versions), the cpio archive is written in sorted
# order by a small writer below with inode numbers counted from 1, uid/gid 0, and gzip -n.
#
# Tools (why each): curl (HTTP with Range resume, retries, streaming upload; TLS through its
# libssl), lsblk + blkdiscard (util-linux), dmidecode (SMBIOS), ethtool (NIC driver, speed,
# link), tcpdump (the LLDP reader: one LLDPDU captured raw, its TLVs decoded by the agent in
# awk; lldpd's lldpcli would need its daemon and net-snmp), coreutils dd + sha256sum (dd's
# conv=sparse writes holes after a discard; busybox dd has no sparse mode), busybox for the
# rest (sh, udhcpc, ip, awk, modprobe/insmod, poweroff/reboot).
# Not included: firmware blobs (Debian's non-free firmware-* packages) some NICs need, and a CA
# bundle (metalboot's URL is plain HTTP on the boot network today).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

arch=$(uname -m)
out=
force=0
while (($#)); do
  case $1 in
    --arch) arch=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "agent-ramdisk: unknown argument $1" >&2; exit 2 ;;
  esac
done
# The only per-architecture facts: Debian's names and the serial console's device.
case $arch in
  x86_64)  debarch=amd64 kflavour=amd64 ;;
  aarch64) debarch=arm64 kflavour=arm64 ;;
  *) echo "agent-ramdisk: unsupported architecture $arch (x86_64, aarch64)" >&2; exit 2 ;;
esac
if [[ $debarch != "$(dpkg --print-architecture)" ]] && ! dpkg --print-foreign-architectures | grep -qx "$debarch"; then
  echo "agent-ramdisk: apt cannot fetch $debarch packages here (dpkg --add-architecture $debarch; apt-get update)" >&2; exit 1
fi
out=${out:-$repo/agent-assets/$arch}
cache=${MB_AGENT_CACHE:-/var/cache/metalboot-agent}
debs=$cache/debs

# Userland packages: the tools and every library their binaries need (checked below: a
# NEEDED soname no package here provides fails the build, naming it).
PKGS=(busybox-static curl libcurl4 coreutils util-linux dmidecode ethtool tcpdump
  libc6 zlib1g libbrotli1 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2
  libkeyutils1 libidn2-0 libunistring2 libldap-2.5-0 libsasl2-2 libnghttp2-14 libpsl5 librtmp1
  libgnutls30 libhogweed6 libnettle8 libgmp10 libp11-kit0 libffi8 libtasn1-6 libssh2-1
  libssl3 libzstd1 libpcap0.8 libdbus-1-3 libsystemd0 liblz4-1 liblzma5 libcap2 libgcrypt20
  libgpg-error0 libblkid1 libmount1 libsmartcols1 libudev1 libselinux1 libpcre2-8-0 libmnl0
  libacl1 libattr1 libgcc-s1)
TOOLS=(curl lsblk blkdiscard dmidecode ethtool tcpdump dd sha256sum)
# Drivers: virtual machines' and the common server NICs and storage controllers. Loaded in
# dependency order at boot (insmod of a driver for absent hardware is harmless).
MODULES="virtio_pci virtio_net virtio_blk virtio_scsi sd_mod ahci ata_piix nvme
  megaraid_sas mpt3sas hpsa smartpqi
  e1000 e1000e igb igc ixgbe i40e ice bnxt_en tg3 r8169 mlx4_en mlx5_core vmxnet3 be2net"

mkdir -p "$debs"
meta=linux-image-$kflavour
# Versions first (no download): they are part of the cache key.
versions() { apt-cache show --no-all-versions "$@" | awk '/^Package: /{p=$2} /^Version: /{print p "=" $2}'; }
kpkg=$(apt-cache show --no-all-versions "$meta:$debarch" | sed -n 's/^Depends: .*\(linux-image-[0-9][^ ,]*\).*/\1/p' | head -n1)
[[ -n $kpkg ]] || { echo "agent-ramdisk: no kernel package in the Depends of $meta" >&2; exit 1; }
pkgvers=$(versions "$kpkg:$debarch" $(printf "%s:$debarch " "${PKGS[@]}") | LC_ALL=C sort)
[[ $(wc -l <<<"$pkgvers") -eq $((${#PKGS[@]} + 1)) ]] || { echo "agent-ramdisk: apt does not know all of: $kpkg ${PKGS[*]}" >&2; exit 1; }
key=$( { cat "$0"; for f in $(cd src/agent && ls | LC_ALL=C sort); do echo "== $f"; cat "src/agent/$f"; done; echo "$arch $MODULES"; echo "$pkgvers"; } | sha256sum | cut -c1-16)
built=$cache/$arch-$key

install_out() {
  mkdir -p "$out"
  for f in vmlinuz initrd.img MANIFEST; do cmp -s "$built/$f" "$out/$f" || install -m 0644 "$built/$f" "$out/$f"; done
  echo "agent-ramdisk: $out ($(sed -n 's/^# initrd: //p' "$built/MANIFEST"))" >&2
}
if [[ $force == 0 && -f $built/MANIFEST ]]; then install_out; exit 0; fi

# One download per package version; the .deb file name carries it (epoch colon as %3a).
dl() {
  local name=${1%%=*} ver=${1#*=}
  local f="$debs/${name}_${ver//:/%3a}_$debarch.deb"
  [[ -f $f ]] || (cd "$debs" && apt-get -q -o APT::Sandbox::User=root download "$name:$debarch=$ver" >&2)
  [[ -f $f ]] || { echo "agent-ramdisk: $f missing after apt-get download" >&2; exit 1; }
  echo "$f"
}
T=$(mktemp -d "${TMPDIR:-/tmp}/agent-ramdisk.XXXXXX")
trap 'rm -rf "$T"' EXIT
R=$T/root S=$T/stage
mkdir -p "$R" "$T/k"
while read -r pv; do
  f=$(dl "$pv")
  if [[ $pv == "$kpkg="* ]]; then dpkg-deb -x "$f" "$T/k"; else dpkg-deb -x "$f" "$R"; fi
done <<<"$pkgvers"
kver=$(ls "$T/k/lib/modules" | head -n1)
epoch=${SOURCE_DATE_EPOCH:-$(find "$R" "$T/k" -type f -printf '%T@\n' | cut -d. -f1 | sort -n | tail -n1)}

mkdir -p "$S"/{bin,sbin,usr/bin,usr/sbin,usr/lib,usr/lib64,dev,proc,sys,run,tmp,etc,root,mnt,var/run}
ln -s usr/lib "$S/lib"
ln -s usr/lib64 "$S/lib64"
# busybox and its applets in /bin; the real tools in /usr/bin come first in the agent's PATH.
cp "$R/bin/busybox" "$S/bin/busybox"
for a in $("$S/bin/busybox" --list); do [[ $a == busybox ]] || ln -s busybox "$S/bin/$a"; done

# Where a path lands in the stage: /lib and /lib64 are symlinks into /usr (as in a merged-/usr Debian).
staged() { case $1 in /lib/*|/lib64/*) echo "/usr$1" ;; *) echo "$1" ;; esac; }
findlib() { find "$R/lib" "$R/usr/lib" "$R/lib64" -name "$1" \( -type f -o -type l \) 2>/dev/null | LC_ALL=C sort | head -n1; }
needed=()
for tool in "${TOOLS[@]}"; do
  src=$(find "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" -name "$tool" \( -type f -o -type l \) 2>/dev/null | head -n1)
  [[ -n $src ]] || { echo "agent-ramdisk: $tool is in none of the packages" >&2; exit 1; }
  cp -L "$src" "$S/usr/bin/$tool"
  needed+=("$S/usr/bin/$tool")
done
# Shared libraries: the closure of NEEDED entries, each copied once to /usr/lib/<triplet>.
interp=$(readelf -l "$S/usr/bin/curl" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[[ -n $interp ]] || { echo "agent-ramdisk: no program interpreter in curl" >&2; exit 1; }
triplet=$(basename "$(dirname "$(findlib libc.so.6)")")
mkdir -p "$S/usr/lib/$triplet" "$S$(dirname "$(staged "$interp")")"
cp -L "$R$interp" "$S$(staged "$interp")"
declare -A have=()
while ((${#needed[@]})); do
  elf=${needed[-1]}; unset 'needed[-1]'
  for so in $(readelf -d "$elf" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [[ -n ${have[$so]:-} || $so == "$(basename "$interp")" ]] && continue
    src=$(findlib "$so")
    [[ -n $src ]] || { echo "agent-ramdisk: $(basename "$elf") needs $so, which none of the packages provides" >&2; exit 1; }
    cp -L "$src" "$S/usr/lib/$triplet/$so"
    have[$so]=1
    needed+=("$S/usr/lib/$triplet/$so")
  done
done

# Kernel modules and their dependencies, in load order (resolved with the host's kmod).
depmod -b "$T/k" "$kver"
MOD=$T/k/lib/modules/$kver
mkdir -p "$S/lib/modules/$kver"
: > "$S/etc/modules.load"
missing=()
for m in $MODULES; do
  if ! deps=$(modprobe -d "$T/k" -S "$kver" --show-depends "$m" 2>/dev/null); then missing+=("$m"); continue; fi
  awk '$1=="insmod"{print $2}' <<<"$deps" | sed "s|^$MOD/||"
done | awk '!seen[$0]++' > "$T/modules.load"
while read -r rel; do
  mkdir -p "$S/usr/lib/modules/$kver/$(dirname "$rel")"
  cp "$MOD/$rel" "$S/usr/lib/modules/$kver/$rel"
done < "$T/modules.load"
cp "$T/modules.load" "$S/etc/modules.load"

# The agent itself, and what busybox's tools expect to find.
install -m 0755 src/agent/init "$S/init"
install -m 0755 src/agent/agent.sh "$S/usr/bin/mb-agent"
install -m 0755 src/agent/udhcpc.sh "$S/usr/share/udhcpc/default.script" 2>/dev/null || {
  mkdir -p "$S/usr/share/udhcpc"; install -m 0755 src/agent/udhcpc.sh "$S/usr/share/udhcpc/default.script"; }
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$S/etc/passwd"
printf 'root:x:0:\n' > "$S/etc/group"
printf 'hosts: files dns\n' > "$S/etc/nsswitch.conf"
echo "$arch $kver" > "$S/etc/mb-agent-release"

# Reproducible newc archive (the kernel's initramfs format): sorted paths, inode numbers
# counted from 1, uid/gid 0, every mtime = epoch, and /dev/console (the kernel opens it for
# init's stdio before /init can mount devtmpfs) as a node no mknod (and so no root) makes.
/usr/bin/python3 - "$S" "$epoch" > "$T/initrd.cpio" <<'PY'
import os, stat, sys
root, epoch = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
ino = 0
def entry(name, mode, data=b'', nlink=1, rdev=(0, 0)):
    global ino
    ino += 1
    nb = name.encode() + b'\0'
    hdr = '070701' + ''.join('%08X' % v for v in (ino, mode, 0, 0, nlink, epoch, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0))
    out.write(hdr.encode() + nb + b'\0' * ((4 - (110 + len(nb)) % 4) % 4))
    out.write(data + b'\0' * ((4 - len(data) % 4) % 4))
paths = []
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        paths.append(os.path.relpath(os.path.join(d, n), root))
paths.sort()
for p in paths:
    st = os.lstat(os.path.join(root, p))
    perm = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode): entry(p, stat.S_IFDIR | perm, nlink=2)
    elif stat.S_ISLNK(st.st_mode): entry(p, stat.S_IFLNK | 0o777, os.readlink(os.path.join(root, p)).encode())
    elif stat.S_ISREG(st.st_mode):
        with open(os.path.join(root, p), 'rb') as f: entry(p, stat.S_IFREG | perm, f.read())
    else: sys.exit('unexpected file type: ' + p)
entry('dev/console', stat.S_IFCHR | 0o600, rdev=(5, 1))
entry('TRAILER!!!', 0, nlink=1)
PY
gzip -n -9 < "$T/initrd.cpio" > "$T/initrd.img"
cp "$T/k/boot/vmlinuz-$kver" "$T/vmlinuz"
touch -d "@$epoch" "$T/initrd.img" "$T/vmlinuz"

isize=$(stat -c %s "$T/initrd.img")
{
  echo "# metalboot agent ramdisk, built by scripts/agent-ramdisk.sh (key $key); do not edit."
  echo "# arch: $arch (Debian $debarch), kernel $kver"
  echo "# initrd: $((isize / 1024)) KiB compressed, $(( $(stat -c %s "$T/initrd.cpio") / 1024 )) KiB unpacked; vmlinuz $(( $(stat -c %s "$T/vmlinuz") / 1024 )) KiB"
  echo "# SOURCE_DATE_EPOCH: $epoch"
  echo "# corresponding source: apt-get source <package>=<version> for each package below"
  sed 's/^/package /' <<<"$pkgvers"
  sed 's|^|module |' "$T/modules.load"
  for m in "${missing[@]}"; do echo "module-missing $m"; done
  (cd "$T" && sha256sum vmlinuz initrd.img)
} > "$T/MANIFEST"
((${#missing[@]} == 0)) || echo "agent-ramdisk: modules not in kernel $kver: ${missing[*]}" >&2
mkdir -p "$built.tmp"
mv "$T/vmlinuz" "$T/initrd.img" "$T/MANIFEST" "$built.tmp/"
rm -rf "$built" && mv "$built.tmp" "$built"
install_out
