# bench/lib/boot-classic.sh — sourced by bench/boot: the classic stack as the boot server.
# dnsmasq (DHCP + TFTP, --no-ping) hands each machine's iPXE ROM its own script over TFTP, as the
# lab smoke test's stand-in does; tgtd started by hand with the same target per machine that
# metalboot makes (LUN 1 on a clone of the golden image, bound to the initiator name the script
# sets, a CHAP account); power with ipmitool (a process and an RMCP+ session per call, -C 3).
CL_DIR=$SCRATCH/classic
CL_TGTD= CL_DNSMASQ=
CL_IQN=iqn.2026-11.bench.classic

classic_start() {
  rm -rf "$CL_DIR"; mkdir -p "$CL_DIR/tftp" "$CL_DIR/disks"
  # UEFI: OVMF's PXE (arch 7) first gets snponly.efi, the usual dnsmasq + iPXE setup.
  cp "$ROOT/boot-assets/snponly.efi" "$CL_DIR/tftp/"
  setsid ip netns exec "$LAB_NS" timeout -k 5 "$LAB_TTL" tgtd -f -C "$CTRL_PORT" --iscsi "portal=$SRV:3260" </dev/null >"$CL_DIR/tgtd.log" 2>&1 &
  CL_TGTD=$!
  local k i tid secret tgt hosts=()
  for k in $(seq 50); do tgtadm -C "$CTRL_PORT" --op show --mode sys >/dev/null 2>&1 && break; sleep 0.1; done
  T() { tgtadm -C "$CTRL_PORT" --lld iscsi "$@"; }
  for i in $(seq "$N"); do
    tid=$i tgt="$CL_IQN:$(name_of "$i")" secret=$(head -c 15 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
    cp --reflink=auto "$SCRATCH/golden.img" "$CL_DIR/disks/$i.img"
    "$LAB/stamp-disk" "$CL_DIR/disks/$i.img" "$(name_of "$i")" >/dev/null
    T --op new --mode target --tid "$tid" -T "$tgt"
    T --op new --mode logicalunit --tid "$tid" --lun 1 -b "$CL_DIR/disks/$i.img" --bstype rdwr
    T --op bind --mode target --tid "$tid" --initiator-name "$tgt:initiator"
    T --op new --mode account --user "bench$i" --password "$secret"
    T --op bind --mode account --tid "$tid" --user "bench$i"
    cat >"$CL_DIR/tftp/$(name_of "$i").ipxe" <<EOF
#!ipxe
set initiator-iqn $tgt:initiator
set username bench$i
set password $secret
sanboot iscsi:$SRV::3260:1:$tgt
EOF
    hosts+=("--dhcp-host=$(mac_of "$i"),set:m$i" "--dhcp-boot=tag:ipxe,tag:m$i,$(name_of "$i").ipxe,,$SRV")
  done
  setsid ip netns exec "$LAB_NS" timeout -k 5 "$LAB_TTL" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --user=root --group=root \
    --pid-file= --log-facility=- --log-dhcp --interface=labbr --bind-interfaces \
    --dhcp-range=10.77.0.100,10.77.0.199,255.255.255.0,10m --no-ping --dhcp-authoritative --dhcp-leasefile="$CL_DIR/leases" \
    --enable-tftp --tftp-root="$CL_DIR/tftp" --dhcp-userclass=set:ipxe,iPXE --dhcp-option=tag:ipxe,encap:175,176,1b \
    --dhcp-match=set:efi64,option:client-arch,7 --dhcp-match=set:efi64,option:client-arch,9 \
    "--dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi,,$SRV" "${hosts[@]}" \
    </dev/null >"$CL_DIR/dnsmasq.log" 2>&1 &
  CL_DNSMASQ=$!
  for k in $(seq 100); do grep -q 'started, version' "$CL_DIR/dnsmasq.log" 2>/dev/null && return 0; sleep 0.1; done
  echo "bench/boot: dnsmasq did not start:" >&2; tail -5 "$CL_DIR/dnsmasq.log" >&2; return 1
}

classic_power() {
  ip netns exec "$LAB_NS" ipmitool -I lanplus -C 3 -H 127.0.0.1 -p "$(bmc_port_of "$1")" -U admin -P "$BMC_PASS" -N 2 -R 3 chassis power "$2"
}

classic_stop() {
  [[ -n $CL_DNSMASQ ]] && { kill -TERM "$CL_DNSMASQ" 2>/dev/null || true; wait "$CL_DNSMASQ" 2>/dev/null || true; }
  CL_DNSMASQ=
  if [[ -n $CL_TGTD ]]; then
    tgtd_stop
    kill -9 "$CL_TGTD" 2>/dev/null || true; wait "$CL_TGTD" 2>/dev/null || true
    ip netns pids "$LAB_NS" 2>/dev/null | while read -r p; do [[ $(cat "/proc/$p/comm" 2>/dev/null) == tgtd ]] && kill -9 "$p" 2>/dev/null; done || true
  fi
  CL_TGTD=
}
