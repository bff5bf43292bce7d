# bench/lib/boot-metalboot.sh — sourced by bench/boot: metalboot as the boot server.
# metalbootd in the lab namespace: DHCP server on labbr (conflict check off, as dnsmasq runs with
# --no-ping), TFTP, iPXE scripts on 10.77.0.1:8080, the tgtd it manages (portal 10.77.0.1:3260,
# control port CTRL_PORT), file storage in the scratch dir. Machines are enrolled, provisioned
# from the golden image and given their BMCs through the API; each clone is stamped with its
# machine's name; power goes through POST /api/v1/machines/:mac/power.
MB_DIR=$SCRATCH/metalboot
MB_PID=

mb_api() {   # METHOD URL [JSON] -> body; fails on HTTP >= 400
  local args=(curl -sS -m 60 -f -X "$1" -H "Authorization: Bearer $(cat "$MB_DIR/data/api-token")" "http://$SRV:8080$2")
  [[ -n ${3:-} ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  ip netns exec "$LAB_NS" "${args[@]}"
}

metalboot_start() {
  rm -rf "$MB_DIR"; mkdir -p "$MB_DIR/data"
  cat >"$MB_DIR/metalboot.yaml" <<EOF
dataDir: $MB_DIR/data
http: { listen: "$SRV:8080", publicUrl: "http://$SRV:8080" }
dhcp:
  mode: server
  interface: labbr
  conflictCheck: { method: off }
  subnets:
    - cidr: 10.77.0.0/24
      pool: [10.77.0.100, 10.77.0.199]
      leaseTime: 600
${MB_EFI_FILE:+  bootFiles: { efiX64: $MB_EFI_FILE \}}
tftp: { enabled: true, root: $ROOT/boot-assets }
storage: { backend: file, file: { dir: $MB_DIR/volumes } }
iscsi: { portal: "$SRV:3260", manageTgtd: true, controlPort: $CTRL_PORT }
EOF
  setsid ip netns exec "$LAB_NS" timeout -k 5 "$LAB_TTL" node "$ROOT/dist/src/cli/metalbootd.js" --config "$MB_DIR/metalboot.yaml" --log-level info \
    </dev/null >"$MB_DIR/daemon.log" 2>&1 &
  MB_PID=$!
  local k
  for k in $(seq 300); do
    grep -q '"daemon.ready"' "$MB_DIR/daemon.log" 2>/dev/null && break
    kill -0 "$MB_PID" 2>/dev/null || { echo "bench/boot: metalbootd exited:" >&2; tail -5 "$MB_DIR/daemon.log" >&2; return 1; }
    sleep 0.1
  done
  grep -q '"daemon.ready"' "$MB_DIR/daemon.log" || { echo "bench/boot: metalbootd not ready in 30 s" >&2; return 1; }
  ip netns exec "$LAB_NS" curl -sS -m 120 -f -X PUT -H "Authorization: Bearer $(cat "$MB_DIR/data/api-token")" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$SCRATCH/golden.img" -o /dev/null "http://$SRV:8080/api/v1/images/golden"
  local i mac op st
  for i in $(seq "$N"); do
    mac=$(mac_of "$i")
    mb_api PUT "/api/v1/machines/$mac" "{\"name\":\"$(name_of "$i")\",\"firmware\":\"$FW\"}" >/dev/null
    op=$(mb_api POST "/api/v1/machines/$mac/provision" '{"image":"golden"}' | jq -r .operation.id)
    for k in $(seq 300); do
      st=$(mb_api GET "/api/v1/operations/$op" | jq -r .status)
      [[ $st != running ]] && break; sleep 0.1
    done
    [[ $st == succeeded ]] || { echo "bench/boot: provision of $(name_of "$i"): $st" >&2; return 1; }
    "$LAB/stamp-disk" "$MB_DIR/volumes/disks/m-${mac//:/}.raw" "$(name_of "$i")" >/dev/null
    mb_api PUT "/api/v1/machines/$mac" "{\"bmc\":{\"host\":\"127.0.0.1\",\"port\":$(bmc_port_of "$i"),\"user\":\"admin\",\"password\":\"$BMC_PASS\"}}" >/dev/null
  done
}

metalboot_power() { mb_api POST "/api/v1/machines/$(mac_of "$1")/power" "{\"action\":\"$2\"}"; }

metalboot_stop() {
  [[ -n $MB_PID ]] || return 0
  kill -TERM "$MB_PID" 2>/dev/null || true           # timeout passes TERM on to node
  local k; for k in $(seq 100); do kill -0 "$MB_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$MB_PID" 2>/dev/null || true
  MB_PID=
  tgtd_stop "$(cat "$MB_DIR/data/tgtd.pid" 2>/dev/null || true)"   # metalboot leaves its tgtd running on purpose
}
