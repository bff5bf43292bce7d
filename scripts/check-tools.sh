#!/usr/bin/env bash
# Runs the probe of every tool in scripts/tools.tsv (from the checkout root)
# and names the Debian package of each one that fails.
#
#   scripts/check-tools.sh [--scope build|test|all] [--quiet]
#
# --scope build: only what building and running needs; test (the default) and
# all: every row. Exit 0 when every probe passed, 1 otherwise; the last line
# says "check-tools: N ok, M missing: pkg1 pkg2".
set -uo pipefail
cd "$(dirname "$0")/.."
scope=test quiet=0
while (($#)); do
  case $1 in
    --scope) scope=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "check-tools: unknown argument $1" >&2; exit 2 ;;
  esac
done
case $scope in build|test|all) ;; *) echo "check-tools: --scope build|test|all" >&2; exit 2 ;; esac

ok=0 bad=() pkgs=()
while IFS=$'\t' read -r name rscope pkg path probe; do
  [[ -z $name || $name == \#* ]] && continue
  [[ $scope == build && $rscope != build ]] && continue
  why=
  if [[ $path != - && ! -e $path ]]; then why="$path missing"
  elif ! out=$(timeout 90 bash -c "$probe" 2>&1); then why="probe failed: $probe${out:+ ($(printf %s "$out" | tail -n 2 | tr '\n' ' '))}"
  fi
  if [[ -z $why ]]; then
    ok=$((ok + 1)); ((quiet)) || echo "ok       $name"
  else
    # A row without a package (the pinned node runtime) is fetched by install-deps.
    [[ $pkg == - ]] && pkg="(scripts/install-deps.sh: $name)"
    bad+=("$name"); [[ " ${pkgs[*]} " == *" $pkg "* ]] || pkgs+=("$pkg")
    echo "MISSING  $name: package $pkg: $why"
  fi
done < scripts/tools.tsv
if ((${#bad[@]})); then
  echo "check-tools: $ok ok, ${#bad[@]} missing: ${pkgs[*]}"
  exit 1
fi
echo "check-tools: $ok ok, 0 missing"
