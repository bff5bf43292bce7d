#!/usr/bin/env bash
# Installs everything metalboot needs to build, run and test on Debian, as root:
# system packages (apt-get), node modules (npm ci), the native helper and dist/.
# Idempotent; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runtime: node, a C toolchain for the small native socket helper, iputils-ping
# for the DHCP conflict check, tgt for iSCSI targets, qemu-utils to import
# qcow2 images, lvm2 and thin-provisioning-tools for the lvm backend.
# Tests and benchmarks: the real peers (DHCP clients and servers, TFTP clients,
# a BMC simulator and ipmitool, a userspace iSCSI initiator, btrfs for reflinks,
# QEMU and a Debian kernel for the device-mapper guest).
RUNTIME_PKGS=(nodejs npm build-essential python3 iproute2 iputils-ping ipxe tgt qemu-utils
              lvm2 thin-provisioning-tools)
TEST_PKGS=(kea-admin kea-dhcp4-server busybox udhcpc dnsmasq-base isc-dhcp-relay
           qemu-system-x86 ipxe-qemu ipxe ovmf tcpdump curl atftp tftp-hpa nftables
           openipmi ipmitool libiscsi-bin btrfs-progs nasm socat kmod systemd chromium jq)

want=("${RUNTIME_PKGS[@]}")
if [[ "${1:-}" == "--test" ]]; then want+=("${TEST_PKGS[@]}"); fi

missing=()
for p in "${want[@]}"; do
  # node may come from outside Debian (e.g. a NodeSource build); accept any node >= 20.
  if [[ $p == nodejs || $p == npm ]] && command -v node >/dev/null && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d stops Debian from starting kea/dnsmasq services we only want as binaries.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; rm_policy=1; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [[ ${rm_policy:-0} == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
fi

node -e 'const [maj]=process.versions.node.split(".").map(Number); if (maj < 20) { console.error("metalboot needs Node >= 20, found " + process.version); process.exit(1) }'

# node-gyp must build the native socket helper against local headers (no
# downloads): Debian's nodejs keeps them in libnode-dev, NodeSource's in nodejs.
if [[ ! -f /usr/include/node/node_api.h ]] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnode-dev || true
fi
if [[ -f /usr/include/node/node_api.h ]]; then export npm_config_nodedir=/usr; fi
npm ci --no-audit --no-fund
npm run build
bash scripts/boot-assets.sh
