#!/usr/bin/env bash
# Installs everything metalboot needs to build, run and test on Debian/Ubuntu,
# as root: the packages of scripts/tools.tsv (apt-get), the pinned Node.js
# runtime into .runtime/node (scripts/node-runtime.sh), node modules (npm ci)
# and the native helper built against that runtime, dist/ and boot-assets/.
# Then runs every probe of the list (scripts/check-tools.sh) and fails naming
# the package of a tool that does not work. Idempotent; safe to run again.
#
#   scripts/install-deps.sh [--test]     --test: also the tests' real peers
#
# The runtime is the one the .deb ships, so the tests run what users run.
# On a machine with no node at all, Debian's npm (with its nodejs) is only the
# bootstrap that fetches it; the project never runs on that node.
set -euo pipefail
cd "$(dirname "$0")/.."

scope=build
if [[ "${1:-}" == "--test" ]]; then scope=test; fi

# Rows of tools.tsv in scope whose package is not installed and whose tool does
# not already work without it (its path exists and its probe passes).
# MB_OMIT_PACKAGES (space-separated): left out on purpose, only for
# scripts/fresh-root-check.sh --omit (shows the check catching a missing package).
omit=" ${MB_OMIT_PACKAGES:-} "
missing=()
while IFS=$'\t' read -r name rscope pkg path probe; do
  [[ -z $name || $name == \#* || $pkg == - || $omit == *" $pkg "* ]] && continue
  [[ $scope == build && $rscope != build ]] && continue
  [[ " ${missing[*]} " == *" $pkg "* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' && continue
  if [[ $path == - || -e $path ]] && timeout 90 bash -c "$probe" >/dev/null 2>&1; then continue; fi
  missing+=("$pkg")
done < scripts/tools.tsv
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d stops Debian from starting kea/dnsmasq services we only want as binaries.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; rm_policy=1; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [[ ${rm_policy:-0} == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# The pinned runtime, first in PATH from here on; node-gyp builds the native
# helper against its headers (include/node in the same package): no download.
runtime=$(bash scripts/node-runtime.sh)
export PATH=$runtime/bin:$PATH
export npm_config_nodedir=$runtime
npm ci --no-audit --no-fund
npm run build
bash scripts/boot-assets.sh
# The agent ramdisk for inspect/deploy/erase (Debian packages, fetched, never installed; cached).
bash scripts/agent-ramdisk.sh
bash scripts/check-tools.sh --scope "$scope" --quiet
