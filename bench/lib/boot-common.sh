# bench/lib/boot-common.sh — sourced by bench/boot: the lab, the machines, timing.
# Needs: ROOT, SCRATCH, LAB_NS, LAB_RUN, LAB_TTL (exported), N (machines), FW (bios|uefi).
LAB=$ROOT/scripts/lab
SRV=10.77.0.1
MARKER=bench
BMC_PASS=bench-bmc-pw
CTRL_PORT=$(( 23000 + RANDOM % 5000 ))         # tgtd -C: one port, used by one stack at a time

now_ms() { date +%s%3N; }
name_of() { echo "boot-$1"; }
mac_of() { printf '52:54:00:77:50:%02x' "$1"; }
bmc_port_of() { echo $(( 8700 + $1 )); }
# The golden disk's marker ends in "bios" after a BIOS boot, "efi" after its UEFI program ran.
fw_word() { [[ $FW == uefi ]] && echo efi || echo bios; }
uuid_of() { echo "4d424c41-4200-4000-8000-$(mac_of "$1" | tr -d :)"; }

lab_up() {
  "$LAB/lab-net" up >/dev/null
  "$LAB/make-bootdisk" "$SCRATCH/golden.img" "$MARKER" golden >/dev/null
  local i
  for i in $(seq "$N"); do
    LAB_BMC_PASS=$BMC_PASS "$LAB/lab-bmc" start "$(name_of "$i")" "$(mac_of "$i")" "$FW" "$(bmc_port_of "$i")" >/dev/null
  done
}

lab_down() {
  local i
  for i in $(seq "$N"); do "$LAB/lab-bmc" stop "$(name_of "$i")" >/dev/null 2>&1 || true; done
  "$LAB/lab-net" down >/dev/null 2>&1 || true
}

# tgtd on CTRL_PORT: offline, delete targets, exit (it ignores SIGTERM); SIGKILL by pid if given.
tgtd_stop() {
  local pid=${1:-} tid
  if tgtadm -C "$CTRL_PORT" --op show --mode sys >/dev/null 2>&1; then
    tgtadm -C "$CTRL_PORT" --op update --mode sys --name State -v offline >/dev/null 2>&1 || true
    for tid in $(tgtadm -C "$CTRL_PORT" --lld iscsi --op show --mode target 2>/dev/null | sed -n 's/^Target \([0-9]*\):.*/\1/p'); do
      tgtadm -C "$CTRL_PORT" --lld iscsi --op delete --mode target --tid "$tid" --force >/dev/null 2>&1 || true
    done
    tgtadm -C "$CTRL_PORT" --op delete --mode system >/dev/null 2>&1 || true
  fi
  for _ in $(seq 30); do tgtadm -C "$CTRL_PORT" --op show --mode sys >/dev/null 2>&1 || break; sleep 0.1; done
  [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
  rm -f "/var/run/tgtd/socket.$CTRL_PORT" "/var/run/tgtd/socket.$CTRL_PORT.lock"
}

# Is machine i's QEMU running?
vm_alive() { local p; p=$(cat "$LAB_RUN/$(name_of "$1").pid" 2>/dev/null) && [[ -n $p ]] && kill -0 "$p" 2>/dev/null && [[ $(cat "/proc/$p/comm" 2>/dev/null) == qemu-system-x86 ]]; }

wait_vm_off() {   # i: up to 15 s
  local k
  for k in $(seq 150); do vm_alive "$1" || return 0; sleep 0.1; done
  echo "bench/boot: $(name_of "$1") still running after power off" >&2; return 1
}

# Before a power-on: the previous console is gone, so a marker found afterwards is from this boot.
clear_serial() { rm -f "$LAB_RUN/$(name_of "$1").serial.log" "$LAB_RUN/$(name_of "$1").serial.log.1"; }

# wait_marker i t0_ms expected_id timeout_s -> prints ms from t0 to the marker, or FAIL:<reason>
wait_marker() {
  local i=$1 t0=$2 id=$3 end=$(( $(now_ms) + $4 * 1000 )) log
  log=$LAB_RUN/$(name_of "$i").serial.log
  local out
  while :; do
    out=$(grep -aoE "METALBOOT-DISK-OK $MARKER [^ ]+ $(fw_word)|METALBOOT-DISK-ERR|No more network devices|did not boot after" "$log" 2>/dev/null | head -1 || true)
    if [[ $out == "METALBOOT-DISK-OK $MARKER $id $(fw_word)" ]]; then echo $(( $(now_ms) - t0 )); return 0; fi
    [[ -n $out ]] && { echo "FAIL:$out"; return 1; }   # another disk's id, or the boot gave up
    (( $(now_ms) > end )) && { echo "FAIL:timeout"; return 1; }
    sleep 0.05
  done
}

# trial STACK K: power on machines 1..K at once with STACK's power_on, wait for every marker.
# Appends "STACK K i ms" lines to $SCRATCH/results; returns 1 if any machine failed.
trial() {
  local stack=$1 k=$2 i rc=0 pids=()
  for i in $(seq "$k"); do clear_serial "$i"; done
  for i in $(seq "$k"); do
    ( t0=$(now_ms); "${stack}_power" "$i" on >/dev/null; wait_marker "$i" "$t0" "$(name_of "$i")" 300 >"$SCRATCH/t.$i" ) &
    pids+=($!)
  done
  wait "${pids[@]}" || true     # only these: the servers are background jobs of this shell too
  for i in $(seq "$k"); do
    local v; v=$(cat "$SCRATCH/t.$i")
    echo "$stack $k $i $v" >>"$SCRATCH/results"
    [[ $v == FAIL* ]] && { echo "bench/boot: $stack, $k at once: $(name_of "$i") $v" >&2; rc=1; }
  done
  for i in $(seq "$k"); do "${stack}_power" "$i" off >/dev/null 2>&1 || true; done
  for i in $(seq "$k"); do wait_vm_off "$i" || rc=1; done
  return $rc
}

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END { if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2) }'; }
