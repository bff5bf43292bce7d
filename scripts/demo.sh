#!/usr/bin/env bash
# The main job, on one Linux box: installs what is needed, builds, creates a
# small virtual lab (a network namespace with a bridge), starts metalboot on
# an embedded default configuration serving DHCP on that bridge, and PXE-boots
# a diskless QEMU machine (SeaBIOS + iPXE ROM) against it. Prints the boot
# timeline and the leases. Ctrl-C (or --once, after one boot) tears it all down.
#
# Everything stays inside the namespace "mbdemo": nothing is sent to any
# network outside this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ONCE=0; [[ "${1:-}" == "--once" ]] && ONCE=1
[[ $(id -u) == 0 ]] || { echo "demo: run as root (it creates a network namespace)" >&2; exit 1; }

bash scripts/install-deps.sh --test

NS=mbdemo BR=mbdemo0 TAP=mbdemotap0 RUN=$(mktemp -d /tmp/mbdemo.XXXXXX)
MAC=52:54:00:99:00:01
cleanup() {
  set +e
  [[ -n "${QEMU_PID:-}" ]] && kill "$QEMU_PID" 2>/dev/null
  [[ -n "${MB_PID:-}" ]] && kill "$MB_PID" 2>/dev/null && wait "$MB_PID" 2>/dev/null
  [[ -n "${RA_PID:-}" ]] && kill "$RA_PID" 2>/dev/null
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  echo "demo: torn down (logs were in $RUN)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ns() { ip netns exec "$NS" "$@"; }
ns ip link set lo up
ns ip link add "$BR" type bridge stp_state 0 forward_delay 0
ns ip addr add 10.99.0.1/24 dev "$BR"
ns ip -6 addr add fd99::1/64 dev "$BR" nodad
ns ip link set "$BR" up
ns ip tuntap add dev "$TAP" mode tap
ns ip link set "$TAP" master "$BR" up

# iPXE waits ~16 s for IPv6 router advertisements when none come: an RA-only
# responder (no DHCP, no DNS) keeps the demo boot fast.
ns timeout -k 5 3600 dnsmasq --no-daemon --conf-file=/dev/null --port=0 --user=root \
  --interface="$BR" --bind-interfaces --enable-ra --dhcp-range=fd99::,ra-only,64 --pid-file= \
  >"$RUN/ra.log" 2>&1 &
RA_PID=$!

# The embedded default configuration.
cat > "$RUN/metalboot.yaml" <<YAML
dataDir: $RUN/data
http: { listen: "10.99.0.1:8080", publicUrl: "http://10.99.0.1:8080" }
dhcp:
  mode: server
  interface: $BR
  subnets:
    - cidr: 10.99.0.0/24
      pool: [10.99.0.100, 10.99.0.200]
      router: 10.99.0.1
      dns: [10.99.0.1]
      leaseTime: 3600
YAML
ns timeout -k 5 3600 node dist/src/cli/metalbootd.js --config "$RUN/metalboot.yaml" --log-level debug >"$RUN/metalboot.log" 2>&1 &
MB_PID=$!
for _ in $(seq 1 100); do grep -q '"event":"daemon.ready"' "$RUN/metalboot.log" && break; sleep 0.1; done
grep -q '"event":"daemon.ready"' "$RUN/metalboot.log" || { cat "$RUN/metalboot.log"; exit 1; }
echo "demo: metalboot serving DHCP on $BR (namespace $NS); API http://10.99.0.1:8080 inside the namespace"

T0=$(date +%s%3N)
ns timeout -k 5 600 qemu-system-x86_64 -name demo-vm1 -accel tcg -m 256 -nodefaults -display none \
  -machine graphics=off -M pc -no-reboot \
  -netdev tap,id=n0,ifname="$TAP",script=no,downscript=no \
  -device virtio-net-pci,disable-legacy=on,romfile=/usr/lib/ipxe/qemu/pxe-virtio.rom,netdev=n0,mac="$MAC",bootindex=1 \
  -uuid "1ab00000-0000-4000-8000-${MAC//:/}" \
  -chardev file,id=ser0,path="$RUN/vm1.serial.log" -serial chardev:ser0 &
QEMU_PID=$!
echo "demo: powered on diskless VM $MAC (SeaBIOS + iPXE)"

since() { # ms from power-on to the first log line with this event for the VM
  node -e '
    const [file, ev, mac, t0] = process.argv.slice(1);
    for (const l of require("fs").readFileSync(file, "utf8").split("\n")) {
      try { const j = JSON.parse(l); if (j.event === ev && j.mac === mac) { console.log(Date.parse(j.time) - Number(t0)); process.exit(0); } } catch {}
    }
    process.exit(1);' "$RUN/metalboot.log" "$1" "$MAC" "$T0"
}
for _ in $(seq 1 900); do since http.boot-script >/dev/null && break; sleep 0.1; done
printf '\nboot timeline for %s (ms after power-on)\n' "$MAC"
for ev in dhcp.offer dhcp.ack http.boot-script; do printf '  %-18s %s\n' "$ev" "$(since $ev || echo -)"; done
printf '\nleases:\n'
ns node dist/src/cli/metalboot.js leases --api http://10.99.0.1:8080
printf '\nVM console:\n'; sleep 1; tr -d '\r' < "$RUN/vm1.serial.log" | grep -a -E 'iPXE|metalboot|http://' | tail -5 || true
if ((ONCE)); then exit 0; fi
echo; echo "demo: running; Ctrl-C to stop"
wait "$MB_PID"
