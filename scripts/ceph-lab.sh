#!/usr/bin/env bash
# A real single-host Ceph cluster for tests, the demo and developers, from Debian's packages
# (ceph-mon, ceph-mgr, ceph-osd, ceph-common): one mon, one mgr, three BlueStore OSDs whose block
# devices are sparse files, replica 2 (min_size 1, so one OSD may stop), cephx on, memory bounded.
# Everything lives under one directory (conf, keyrings, mon/mgr/osd data, logs, pid files, admin
# sockets) with its own fsid and ports on loopback; `stop` kills what `start` started and removes
# the directory, so nothing is left behind (no loop devices are used).
#
#   scripts/ceph-lab.sh start  [--dir DIR] [--netns NS] [--port P] [--osd-size BYTES]
#   scripts/ceph-lab.sh stop   [--dir DIR]
#   scripts/ceph-lab.sh status [--dir DIR]      (ceph status --format json)
#   scripts/ceph-lab.sh stop-osd N | start-osd N [--dir DIR]
#
# --netns runs every daemon inside that network namespace (its loopback), so a test's daemon and
# tgtd, in the same namespace, reach the cluster at 127.0.0.1 and nothing else can. Clients find
# the cluster through DIR/ceph.conf; the pool `metalboot` and a cephx user `client.metalboot`
# with the least caps RBD needs (profile rbd on that pool) are made at start, its keyring in
# DIR/client.metalboot.keyring (0600), named from the conf, never on a command line.
#
# The cluster's facts were taken from how Ceph's own vstart.sh bootstraps a dev cluster
# (monmaptool + ceph-mon --mkfs, `ceph osd new` with a cephx secret file, ceph-osd --mkfs on a
# bluestore block file); the code is ours.
set -euo pipefail

DIR=/tmp/mb-ceph
NETNS=
PORT=40789
OSD_SIZE=$((64 << 30)) # sparse: only what is written takes space
POOL=metalboot
CLIENT=metalboot
cmd=${1:-}
[ $# -gt 0 ] && shift
arg=
case "$cmd" in stop-osd|start-osd) arg=${1:?osd id}; shift ;; esac
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --netns) NETNS=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --osd-size) OSD_SIZE=$2; shift 2 ;;
    *) echo "ceph-lab: unknown argument $1" >&2; exit 2 ;;
  esac
done
DIR=$(realpath -m "$DIR")
CONF=$DIR/ceph.conf

log() { echo "ceph-lab: $*" >&2; }
# The daemons outlive this script: they must not inherit its open files beyond stdio, above all a
# lock a caller holds (`flock LOCK scripts/ceph-lab.sh start` would stay locked until stop).
close_fds() {
  local fd
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2 && fd != 255)) && eval "exec $fd>&-" 2>/dev/null || true
  done
}
trap 'log "failed at line $LINENO (exit $?); logs in $DIR/log"' ERR
# Runs a daemon or client in the cluster's namespace (if any).
inns() {
  local ns=$NETNS
  [ -z "$ns" ] && [ -f "$DIR/netns" ] && ns=$(cat "$DIR/netns")
  if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}
ceph_() { inns timeout 60 ceph -c "$CONF" --name client.admin "$@"; }

pids_of_cluster() {
  # Our daemons only: those started with this cluster's conf file (pid files may be gone after a crash).
  local p
  for p in /proc/[0-9]*; do
    if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "-c $CONF "; then echo "${p#/proc/}"; fi
  done
}

stop_cluster() {
  [ -d "$DIR" ] || { log "nothing at $DIR"; return 0; }
  local pids i
  pids=$(pids_of_cluster)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 1 100); do
      pids=$(pids_of_cluster)
      [ -z "$pids" ] && break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    for i in $(seq 1 50); do [ -z "$(pids_of_cluster)" ] && break; sleep 0.1; done
  fi
  rm -rf "$DIR"
  log "stopped, $DIR removed"
}

osd_start() { inns ceph-osd -i "$1" -c "$CONF"; }

osd_stop() {
  local f=$DIR/run/osd.$1.pid pid i
  [ -f "$f" ] || { log "osd.$1 is not running"; return 1; }
  pid=$(cat "$f")
  kill -TERM "$pid"
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" || true
  rm -f "$f"
}

write_conf() {
  local fsid=$1
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$PORT,v1:127.0.0.1:$((PORT + 1))]
public_addr = 127.0.0.1
ms_bind_port_min = $((PORT + 2))
ms_bind_port_max = $((PORT + 60))
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
run_dir = $DIR/run
pid_file = $DIR/run/\$name.pid
admin_socket = $DIR/run/\$name.asok
log_file = $DIR/log/\$name.log
crash_dir = $DIR/crash
log_to_stderr = false
err_to_stderr = false
mon_cluster_log_file = $DIR/log/cluster.log
# One host: replicas go to different OSDs, not different hosts.
osd_crush_chooseleaf_type = 0
osd_pool_default_size = 2
osd_pool_default_min_size = 1
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_delete = true
mon_data_avail_warn = 2
mon_data_avail_crit = 1
mon_warn_on_pool_no_redundancy = false
# Few threads and little memory: a shared 2-core test machine.
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
ms_async_op_threads = 2
rbd_cache = false

[mon]
mon_data = $DIR/mon.\$id
mon_osd_full_ratio = 0.95

[mgr]
mgr_data = $DIR/mgr.\$id
keyring = $DIR/mgr.\$id/keyring

[osd]
osd_data = $DIR/osd\$id
keyring = $DIR/osd\$id/keyring
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = $OSD_SIZE
bluestore_block_db_create = false
bluestore_block_wal_create = false
bluestore_fsck_on_mkfs = false
bluestore_fsck_on_mount = false
bluestore_fsck_on_umount = false
osd_memory_target = 939524096
bluestore_cache_autotune = false
bluestore_cache_size = 67108864
osd_max_pg_per_osd_hard_ratio = 10

[client.admin]
keyring = $DIR/keyring

[client.$CLIENT]
keyring = $DIR/client.$CLIENT.keyring
EOF
}

start_cluster() {
  if [ -d "$DIR" ] && [ -n "$(pids_of_cluster)" ]; then log "already running at $DIR"; return 0; fi
  rm -rf "$DIR"
  mkdir -p "$DIR"/{run,log,crash}
  chmod 0700 "$DIR"
  [ -n "$NETNS" ] && { echo "$NETNS" >"$DIR/netns"; inns ip link set lo up; }
  local t0 fsid i uuid
  t0=$(date +%s.%N)
  fsid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"

  # mon
  ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/keyring" >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$PORT,v1:127.0.0.1:$((PORT + 1))]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring"
  inns ceph-mon -c "$CONF" -i a
  ceph_ config set mon mon_warn_on_insecure_global_id_reclaim_allowed false >/dev/null

  # mgr
  mkdir -p "$DIR/mgr.x"
  ceph_ auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' -o "$DIR/mgr.x/keyring"
  inns ceph-mgr -c "$CONF" -i x

  # osds: the secret goes to the mon in a file, never on argv
  for i in 0 1 2; do
    mkdir -p "$DIR/osd$i"
    uuid=$(cat /proc/sys/kernel/random/uuid)
    ceph-authtool --create-keyring "$DIR/osd$i/keyring" --gen-key -n "osd.$i" >/dev/null
    printf '{"cephx_secret": "%s"}\n' "$(ceph-authtool -p -n "osd.$i" "$DIR/osd$i/keyring")" >"$DIR/osd$i/new.json"
    ceph_ osd new "$uuid" "$i" -i "$DIR/osd$i/new.json" >/dev/null
    rm -f "$DIR/osd$i/new.json"
    inns ceph-osd -c "$CONF" -i "$i" --mkfs --osd-uuid "$uuid" 2>>"$DIR/log/mkfs.log" >/dev/null
    osd_start "$i"
  done

  # pool + least-privilege client for metalboot
  ceph_ osd pool create "$POOL" 32 32 replicated >/dev/null 2>&1
  ceph_ osd pool set "$POOL" size 2 >/dev/null 2>&1
  ceph_ osd pool set "$POOL" min_size 1 >/dev/null 2>&1
  inns timeout 60 rbd -c "$CONF" --id admin pool init "$POOL"
  ceph_ auth get-or-create "client.$CLIENT" mon 'profile rbd' osd "profile rbd pool=$POOL" mgr "profile rbd pool=$POOL" -o "$DIR/client.$CLIENT.keyring"
  chmod 0600 "$DIR"/*.keyring "$DIR"/*/keyring

  # ready: all OSDs up and the pool's PGs active+clean (bounded)
  local st up=0 clean=0
  for i in $(seq 1 240); do
    st=$(ceph_ status --format json 2>/dev/null || true)
    up=$(echo "$st" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["osdmap"].get("num_up_osds", d["osdmap"].get("osdmap", {}).get("num_up_osds", 0)))' 2>/dev/null || echo 0)
    clean=$(echo "$st" | python3 -c 'import json,sys; d=json.load(sys.stdin); p=d["pgmap"]; s=sum(x["count"] for x in p.get("pgs_by_state", []) if x["state_name"]=="active+clean"); print(1 if p["num_pgs"]>0 and s==p["num_pgs"] else 0)' 2>/dev/null || echo 0)
    [ "$up" = 3 ] && [ "$clean" = 1 ] && break
    sleep 0.5
  done
  if [ "$up" != 3 ] || [ "$clean" != 1 ]; then log "cluster not ready (osds up: $up); see $DIR/log"; exit 1; fi
  log "ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s: conf $CONF, pool $POOL, user client.$CLIENT"
  echo "$CONF"
}

case "$cmd" in start|start-osd) close_fds ;; esac
case "$cmd" in
  start) start_cluster ;;
  stop) stop_cluster ;;
  status) ceph_ status --format json ;;
  stop-osd) osd_stop "$arg" ;;
  start-osd) osd_start "$arg" ;;
  *) echo "usage: $0 start|stop|status|stop-osd N|start-osd N [--dir DIR] [--netns NS] [--port P]" >&2; exit 2 ;;
esac
