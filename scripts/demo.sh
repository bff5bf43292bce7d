#!/usr/bin/env bash
# The main job, on one Linux box: installs what is needed and builds, creates the virtual lab
# (scripts/lab: a namespace with a bridge, QEMU machines each behind an ipmi_sim BMC), starts
# metalboot on an embedded default configuration (file storage, level database, DHCP server on
# the lab bridge, tgtd managed), imports the lab's golden disk, enrols two machines (one BIOS,
# one UEFI) with their BMCs, provisions both through the API, powers them on over IPMI and
# shows each one booting its own disk: the boot timeline per machine (power on → DHCP → TFTP →
# script → iSCSI login → marker on serial) and the status page URL.
# Ctrl-C, or --once after both have booted, tears everything down.
# --storage rbd: the disks on a real single-host Ceph cluster (scripts/ceph-lab.sh, in the lab's
# namespace) instead of files: the golden image an RBD image, each machine's disk an RBD clone
# exported by tgtd's rbd backing store (tgt-rbd).
#
# Everything stays inside the namespace "mbdemo"; the status page is forwarded to
# 127.0.0.1:18080 on this host only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ONCE=0 INSTALL=1 STORAGE=file
usage() { echo "usage: scripts/demo.sh [--once] [--no-install] [--storage file|rbd]" >&2; exit 2; }
while (($#)); do
  case $1 in
    --once) ONCE=1 ;;
    --no-install) INSTALL=0 ;;   # already installed and built (development)
    --storage) [[ ${2:-} == file || ${2:-} == rbd ]] || usage; STORAGE=$2; shift ;;
    *) usage ;;
  esac
  shift
done
[[ $(id -u) == 0 ]] || { echo "demo: run as root (it creates a network namespace)" >&2; exit 1; }

if ((INSTALL)); then bash scripts/install-deps.sh --test; fi

export LAB_NS=mbdemo LAB_RUN=/tmp/metalboot-demo LAB_TTL=3600
LAB=$ROOT/scripts/lab
RUN=$LAB_RUN
BMC_PASS=${LAB_BMC_PASS:-mblab-bmc-pw}
CTL=$((20000 + RANDOM % 10000))        # tgtd control port of the demo's own tgtd
declare -A MACS=([vm-bios]=52:54:00:77:00:01 [vm-uefi]=52:54:00:77:00:02)
declare -A FW=([vm-bios]=bios [vm-uefi]=uefi)
declare -A PORT=([vm-bios]=6231 [vm-uefi]=6232)

cleanup() {
  set +e
  trap '' INT TERM
  for vm in "${!MACS[@]}"; do "$LAB/lab-bmc" stop "$vm" >/dev/null 2>&1; done
  [[ -n "${FWD_PID:-}" ]] && kill "$FWD_PID" 2>/dev/null
  # The daemon first: it would start tgtd again when it finds it gone.
  if [[ -n "${MB_PID:-}" ]]; then
    kill "$MB_PID" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$MB_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$MB_PID" 2>/dev/null; wait "$MB_PID" 2>/dev/null
  fi
  # tgtd ignores SIGTERM: take it down through its control socket, then make sure.
  if [[ -S /var/run/tgtd/socket.$CTL ]]; then
    tgtadm -C "$CTL" --op update --mode sys --name State -v offline >/dev/null 2>&1
    for tid in $(tgtadm -C "$CTL" --op show --mode target 2>/dev/null | sed -n 's/^Target \([0-9]*\):.*/\1/p'); do tgtadm -C "$CTL" --op delete --mode target --tid "$tid" --force >/dev/null 2>&1; done
    tgtadm -C "$CTL" --op delete --mode system >/dev/null 2>&1
  fi
  [[ -s $RUN/data/tgtd.pid ]] && kill -9 "$(cat "$RUN/data/tgtd.pid")" 2>/dev/null
  rm -f "/var/run/tgtd/socket.$CTL" "/var/run/tgtd/socket.$CTL.lock"
  # The cluster after tgtd: a tgtd whose rbd LUNs lost their cluster cannot close them.
  [[ $STORAGE == rbd ]] && bash scripts/ceph-lab.sh stop --dir "$RUN/ceph" >/dev/null 2>&1
  "$LAB/lab-net" down "$LAB_NS" >/dev/null 2>&1
  echo "demo: torn down (logs are in $RUN)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$RUN"; mkdir -p "$RUN"
"$LAB/lab-net" up "$LAB_NS" >/dev/null
ns() { ip netns exec "$LAB_NS" "$@"; }
"$LAB/make-bootdisk" "$RUN/golden.img" demo golden >/dev/null

STORAGE_YAML="{ backend: file, file: { dir: $RUN/volumes } }"
if [[ $STORAGE == rbd ]]; then
  echo "demo: starting a single-host Ceph cluster in namespace $LAB_NS"
  bash scripts/ceph-lab.sh start --dir "$RUN/ceph" --netns "$LAB_NS" >/dev/null
  STORAGE_YAML="{ backend: rbd, rbd: { pool: metalboot, cephConf: $RUN/ceph/ceph.conf, user: metalboot, keyring: $RUN/ceph/client.metalboot.keyring } }"
fi

# The embedded default configuration.
cat >"$RUN/metalboot.yaml" <<YAML
dataDir: $RUN/data
http: { listen: "10.77.0.1:8080", publicUrl: "http://10.77.0.1:8080" }
dhcp:
  mode: server
  interface: labbr
  subnets:
    - cidr: 10.77.0.0/24
      pool: [10.77.0.100, 10.77.0.200]
      router: 10.77.0.1
      leaseTime: 3600
tftp: { enabled: true }
storage: $STORAGE_YAML
iscsi: { portal: "10.77.0.1:3260", manageTgtd: true, controlPort: $CTL, checkIntervalMs: 1000 }
machines: { unknown: local }
YAML
# Started directly (not through the ns function): $! must be timeout's pid, which passes SIGTERM
# on to the daemon, not a subshell's.
ip netns exec "$LAB_NS" timeout -k 5 "$LAB_TTL" node dist/src/cli/metalbootd.js --config "$RUN/metalboot.yaml" --log-level info >"$RUN/metalboot.log" 2>&1 &
MB_PID=$!
for _ in $(seq 100); do ns curl -sf -m 1 http://10.77.0.1:8080/healthz >/dev/null 2>&1 && break; sleep 0.2; done
ns curl -sf -m 1 http://10.77.0.1:8080/healthz >/dev/null || { echo "demo: metalboot did not start:" >&2; tail -5 "$RUN/metalboot.log" >&2; exit 1; }
TOKEN=$(cat "$RUN/data/api-token")
api() { # METHOD PATH [JSON]
  ns curl -sS -m 120 -X "$1" -H "Authorization: Bearer $TOKEN" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} "http://10.77.0.1:8080$2"
}
json() { node -e 'const v=JSON.parse(require("fs").readFileSync(0,"utf8"));const p=process.argv[1].split(".");let x=v;for(const k of p)x=x?.[k];console.log(x??"")' "$1"; }

# The status page, forwarded to this host's loopback.
ip netns exec "$LAB_NS" socat UNIX-LISTEN:"$RUN/http.sock",fork,unlink-early TCP:10.77.0.1:8080 &
socat TCP-LISTEN:18080,bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$RUN/http.sock" & FWD_PID=$!

echo "demo: metalboot up in namespace $LAB_NS; importing the lab's golden disk"
ns curl -sS -m 120 -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/octet-stream' \
  --data-binary "@$RUN/golden.img" http://10.77.0.1:8080/api/v1/images/golden >/dev/null

for vm in vm-bios vm-uefi; do
  mac=${MACS[$vm]}
  api PUT "/api/v1/machines/$mac" "{\"name\":\"$vm\",\"firmware\":\"${FW[$vm]}\"}" >/dev/null
  op=$(api POST "/api/v1/machines/$mac/provision" '{"image":"golden"}' | json operation.id)
  for _ in $(seq 150); do st=$(api GET "/api/v1/operations/$op" | json status); [[ $st != running ]] && break; sleep 0.2; done
  [[ $st == succeeded ]] || { echo "demo: provisioning $vm: $st" >&2; exit 1; }
  # Each clone gets its own id, so the marker on the console says which disk booted.
  if [[ $STORAGE == rbd ]]; then
    # The id block is in the first KiB: stamp a copy of the image's first 4 KiB (the clone's too,
    # before it boots) and write it into the RBD clone through QEMU's rbd driver, as client.admin.
    head -c 4096 "$RUN/golden.img" >"$RUN/$vm.head"
    "$LAB/stamp-disk" "$RUN/$vm.head" "$vm-disk" >/dev/null
    ns qemu-io -f raw -c "write -s $RUN/$vm.head 0 4096" "rbd:metalboot/mbd-m-${mac//:/}:conf=$RUN/ceph/ceph.conf:id=admin" >/dev/null
  else
    "$LAB/stamp-disk" "$RUN/volumes/disks/m-${mac//:/}.raw" "$vm-disk" >/dev/null
  fi
  "$LAB/lab-bmc" start "$vm" "$mac" "${FW[$vm]}" "${PORT[$vm]}" >/dev/null
  api PUT "/api/v1/machines/$mac" "{\"bmc\":{\"host\":\"127.0.0.1\",\"port\":${PORT[$vm]},\"user\":\"admin\",\"password\":\"$BMC_PASS\"}}" >/dev/null
  echo "demo: $vm ($mac, ${FW[$vm]}) provisioned from image golden ($STORAGE)"
done

declare -A T0=()
for vm in vm-bios vm-uefi; do
  T0[$vm]=$(date +%s%3N)
  api POST "/api/v1/machines/${MACS[$vm]}/power" '{"action":"on"}' >/dev/null
  echo "demo: $vm powered on over IPMI"
done

declare -A DONE=()
deadline=$(( $(date +%s) + 240 ))
while (( ${#DONE[@]} < 2 )) && (( $(date +%s) < deadline )); do
  for vm in vm-bios vm-uefi; do
    [[ -n ${DONE[$vm]:-} ]] && continue
    if grep -aq "METALBOOT-DISK-OK" "$RUN/$vm.serial.log" 2>/dev/null; then DONE[$vm]=$(date +%s%3N); fi
  done
  sleep 0.2
done

sleep 2   # tgtd's sessions are looked at once a second: let the iSCSI logins be seen
# The timeline per machine, from metalboot's own log (one JSON line per event) and the serial console.
for vm in vm-bios vm-uefi; do
  mac=${MACS[$vm]}
  echo
  echo "== $vm ($mac, ${FW[$vm]}): boot timeline, ms after IPMI power on"
  node -e '
    const [log, mac, t0, done] = process.argv.slice(1);
    const lines = require("fs").readFileSync(log, "utf8").split("\n").flatMap((l) => { try { const j = JSON.parse(l); j.time = Date.parse(j.time); return [j]; } catch { return []; } });
    const first = (pred) => lines.find((l) => l.time >= +t0 && pred(l));
    const ip = (lines.find((l) => l.event === "dhcp.ack" && l.mac === mac) || {}).ip;
    const steps = [
      ["DHCP ack", (l) => l.event === "dhcp.ack" && l.mac === mac],
      ["TFTP iPXE program", (l) => l.event === "tftp.transfer" && l.client.startsWith(ip + ":")],
      ["iPXE script", (l) => l.event === "http.boot-script" && l.mac === mac],
      // tgtd is polled once a second (iscsi.checkIntervalMs), so the login is seen up to 1 s after it happened.
      ["iSCSI login seen", (l) => l.event === "machines.state" && l.mac === mac && l.to === "active"],
    ];
    for (const [name, pred] of steps) {
      const l = first(pred);
      console.log(`  ${name.padEnd(22)} ${l ? "+" + (l.time - t0) : name.startsWith("TFTP") ? "- (not needed: the NIC ROM is iPXE)" : "-"}`);
    }
    console.log(`  ${"marker on serial".padEnd(22)} ${done ? "+" + (done - t0) : "not seen"}`);
  ' "$RUN/metalboot.log" "$mac" "${T0[$vm]}" "${DONE[$vm]:-}"
  grep -a "METALBOOT-DISK" "$RUN/$vm.serial.log" | tail -1 | sed 's/^/  serial: /'
done
echo
echo "demo: status page: http://127.0.0.1:18080/   (API token: $RUN/data/api-token)"
(( ${#DONE[@]} == 2 )) || { echo "demo: not every machine booted in time; see $RUN" >&2; exit 1; }
if ((ONCE)); then exit 0; fi
echo "demo: Ctrl-C to tear everything down"
while kill -0 "$MB_PID" 2>/dev/null; do sleep 1; done
