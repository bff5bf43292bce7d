#!/bin/sh
# The metalboot agent (POSIX sh on busybox, in the agent ramdisk). From the kernel command line:
#   mb.url=<metalboot base URL>  mb.mac=<boot NIC's MAC>  mb.token=<one-time token>
#   mb.lldp=<seconds to listen for LLDP, default 31>
# It brings up the boot NIC (udhcpc), reports its steps, asks metalboot what to do (GET task:
# key=value lines), does it (inspect: the inventory; deploy, capture, erase), reports the result and
# powers off or reboots as the answer says. Every HTTP call is retried with backoff (1, 2, 4 …
# 30 s; 5xx and lost connections only: a 4xx means the token or the operation is no longer
# valid, and the agent stops). The token goes to curl in a header file, never on argv or the
# console.
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# Debian's busybox-static runs its own applets before anything on PATH: the tools that must be
# the real ones (coreutils dd has conv=sparse; util-linux blkdiscard has -z) are named by path.
DD=/usr/bin/dd BLKDISCARD=/usr/bin/blkdiscard
say() { echo "metalboot-agent: $*"; }

URL= MAC= TOKEN= LLDP_WAIT=31
for w in $(cat /proc/cmdline); do
  case $w in
    mb.url=*) URL=${w#mb.url=} ;;
    mb.mac=*) MAC=$(echo "${w#mb.mac=}" | tr 'A-F-' 'a-f:') ;;
    mb.token=*) TOKEN=${w#mb.token=} ;;
    mb.lldp=*) LLDP_WAIT=${w#mb.lldp=} ;;
  esac
done
fatal() { say "FAILED: $*"; echo "METALBOOT-AGENT-FAILED"; sleep 5; sync; poweroff -f; sleep 60; exit 1; }
[ -n "$URL" ] && [ -n "$MAC" ] && [ -n "$TOKEN" ] || fatal "mb.url, mb.mac and mb.token are needed on the kernel command line"
mkdir -p /run/mb
umask 077
printf 'Authorization: Bearer %s\n' "$TOKEN" > /run/mb/auth
TOKEN=
BASE="$URL/agent/v1/$MAC"

# http METHOD PATH [curl args…]: the answer's body on stdout. Retries on 5xx and lost connections.
http() {
  m=$1 p=$2; shift 2
  n=0 delay=1
  while :; do
    code=$(curl -sS -m 60 -X "$m" -H @/run/mb/auth -o /run/mb/body -w '%{http_code}' "$@" "$BASE/$p" 2>/run/mb/err) || code=000
    case $code in
      2??) cat /run/mb/body; return 0 ;;
      4??) say "$m $p refused: HTTP $code $(head -c 200 /run/mb/body)"; return 2 ;;
    esac
    n=$((n + 1))
    [ "$n" -ge 12 ] && { say "$m $p: gave up after $n tries (HTTP $code $(head -c 200 /run/mb/err))"; return 1; }
    say "$m $p: HTTP $code, again in ${delay}s"
    sleep "$delay"
    delay=$((delay * 2)); [ "$delay" -gt 30 ] && delay=30
  done
}
step() { say "step $1"; http POST "step?name=$1" >/dev/null || fatal "cannot report step $1"; }
# fail MESSAGE: the operation fails with this message; then power off.
fail() {
  say "FAILED: $1"
  printf '%s' "$1" | http POST fail -H 'Content-Type: text/plain' --data-binary @- >/dev/null
  finish_as "$(sed -n 's/^then=//p' /run/mb/body 2>/dev/null)"
}
finish_as() {
  sync
  case ${1:-poweroff} in
    reboot) say "rebooting"; reboot -f ;;
    *) say "powering off"; poweroff -f ;;
  esac
  sleep 60
}

# JSON string: quotes and backslashes escaped, control characters dropped, trimmed.
js() { printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^ *//' -e 's/ *$//')"; }
num() { case $1 in ''|*[!0-9]*) echo null ;; *) echo "$1" ;; esac; }

# ---------------------------------------------------------------- network
iface_of() { for d in /sys/class/net/*; do [ "$(cat "$d/address" 2>/dev/null)" = "$1" ] && { basename "$d"; return 0; }; done; return 1; }
IF=
i=0
while [ $i -lt 30 ]; do IF=$(iface_of "$MAC") && break; i=$((i + 1)); sleep 1; done
[ -n "$IF" ] || fatal "no interface with MAC $MAC"
for d in /sys/class/net/*; do n=$(basename "$d"); [ "$n" = lo ] || ip link set "$n" up; done
ip link set lo up
# LLDP: one capture per NIC from now on, read when the inventory is collected.
for d in /sys/class/net/*; do
  n=$(basename "$d"); [ "$n" = lo ] && continue
  # -Z root: Debian's tcpdump drops to user tcpdump, which this ramdisk does not have.
  timeout "$LLDP_WAIT" tcpdump -Z root -i "$n" -c 1 -s 1518 -xx -nn -l ether proto 0x88cc > "/run/mb/lldp.$n" 2>/dev/null &
done
udhcpc -i "$IF" -n -q -t 10 -T 3 -s /usr/share/udhcpc/default.script >/dev/null 2>&1 || fatal "no DHCP lease on $IF"
say "$IF ($MAC) is $(cat /run/mb-ip 2>/dev/null); metalboot at $URL"
step agent-booted

# ---------------------------------------------------------------- inventory
# lldp_json IFACE: {"chassisId":…,"portId":…,"systemName":…} from the captured LLDPDU, or nothing.
lldp_json() {
  f=/run/mb/lldp.$1
  [ -s "$f" ] || return 0
  awk '
    function hex(h,  i, v) { v = 0; for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
    function str(o, n,  s, i, c) { s = ""; for (i = 0; i < n; i++) { c = b[o + i]; if (c >= 32 && c < 127 && c != 34 && c != 92) s = s sprintf("%c", c) } return s }
    function mac(o,  s, i) { s = ""; for (i = 0; i < 6; i++) s = s (i ? ":" : "") sprintf("%02x", b[o + i]); return s }
    /^[ \t]+0x[0-9a-f]+:/ { for (i = 2; i <= NF; i++) { w = tolower($i); if (w !~ /^[0-9a-f]+$/) break; for (j = 1; j < length(w); j += 2) b[nb++] = hex(substr(w, j, 2)) } }
    END {
      o = 14; out = ""
      while (o + 2 <= nb) {
        t = int(b[o] / 2); l = (b[o] % 2) * 256 + b[o + 1]; v = o + 2
        if (t == 0 || v + l > nb) break
        if (t == 1 || t == 2) {
          sub_ = b[v]; val = ((t == 1 && sub_ == 4) || (t == 2 && sub_ == 3)) && l == 7 ? mac(v + 1) : str(v + 1, l - 1)
          out = out (out ? "," : "") "\"" (t == 1 ? "chassisId" : "portId") "\":\"" val "\""
        } else if (t == 5) out = out (out ? "," : "") "\"systemName\":\"" str(v, l) "\""
        o = v + l
      }
      if (out) printf "{%s}", out
    }' "$f"
}

# memory: the DIMMs SMBIOS lists (what the machine has), else what the kernel sees.
memory_bytes() {
  m=$(dmidecode -t 17 2>/dev/null | awk '/^\tSize: [0-9]+ (MB|GB|TB)/ { m += $2 * ($3 == "MB" ? 1048576 : $3 == "GB" ? 1073741824 : 1099511627776) } END { if (m) printf "%.0f", m }')
  [ -n "$m" ] || m=$(awk '/^MemTotal:/ { printf "%.0f", $2 * 1024 }' /proc/meminfo)
  echo "$m"
}

disk_serial() {
  n=$1
  s=$(lsblk -dno SERIAL "/dev/$n" 2>/dev/null)
  [ -n "$s" ] || s=$(cat "/sys/block/$n/serial" "/sys/block/$n/device/serial" 2>/dev/null | head -n1)
  # SCSI/SATA: the unit serial number VPD page (0x80): 4 header bytes, then the serial.
  [ -n "$s" ] || { [ -r "/sys/block/$n/device/vpd_pg80" ] && s=$(tail -c +5 "/sys/block/$n/device/vpd_pg80" | tr -d '\000'); }
  echo "$s"
}

# The machine's disks: whole disks only (no partitions, loop, ram, optical), name and size.
disks() { lsblk -dbnro NAME,TYPE,SIZE 2>/dev/null | awk '$2 == "disk" && $1 !~ /^(loop|ram|zram)/ { print $1, $3 }'; }

inventory() {
  fw=bios; [ -d /sys/firmware/efi ] && fw=uefi
  threads=$(grep -c '^processor' /proc/cpuinfo)
  cores=$(awk -F': *' '/^physical id/ { p = $2 } /^core id/ { seen[p "/" $2] = 1 } END { n = 0; for (k in seen) n++; print n }' /proc/cpuinfo)
  [ "${cores:-0}" -gt 0 ] || cores=$threads
  model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  printf '{"firmware":"%s","system":{"manufacturer":%s,"product":%s,"serial":%s,"uuid":%s},' "$fw" \
    "$(js "$(dmidecode -s system-manufacturer 2>/dev/null)")" "$(js "$(dmidecode -s system-product-name 2>/dev/null)")" \
    "$(js "$(dmidecode -s system-serial-number 2>/dev/null)")" "$(js "$(dmidecode -s system-uuid 2>/dev/null)")"
  printf '"cpu":{"arch":%s,"model":%s,"cores":%s,"threads":%s},"memoryBytes":%s,"disks":[' \
    "$(js "$(uname -m)")" "$(js "$model")" "$(num "$cores")" "$(num "$threads")" "$(num "$(memory_bytes)")"
  sep=
  disks | while read -r n size; do
    rot=$(cat "/sys/block/$n/queue/rotational" 2>/dev/null)
    # A WWN is an NAA or EUI-64 identifier (lsblk's form: 0x + hex); a t10 vendor id is not one.
    wwn=$( { lsblk -dno WWN "/dev/$n"; cat "/sys/block/$n/wwid" "/sys/block/$n/device/wwid"; } 2>/dev/null \
      | sed -n 's/^\(0x\|naa\.\|eui\.\)\([0-9a-fA-F]*\)$/0x\2/p' | tr 'A-F' 'a-f' | head -n1)
    model=$(lsblk -dno MODEL "/dev/$n" 2>/dev/null); [ -n "$model" ] || model=$(cat "/sys/block/$n/device/model" 2>/dev/null)
    printf '%s{"name":%s,"sizeBytes":%s,"model":%s,"serial":%s,"wwn":%s,"rotational":%s}' "$sep" "$(js "$n")" "$(num "$size")" \
      "$(js "$model")" "$(js "$(disk_serial "$n")")" "$(js "$wwn")" "$([ "$rot" = 1 ] && echo true || echo false)"
    sep=,
  done
  printf '],"nics":['
  sep=
  for d in /sys/class/net/*; do
    n=$(basename "$d")
    [ "$n" = lo ] || [ ! -e "$d/device" ] && continue
    e=$(ethtool "$n" 2>/dev/null)
    speed=$(echo "$e" | sed -n 's/^[[:space:]]*Speed: \([0-9]*\)Mb\/s.*/\1/p')
    link=false; echo "$e" | grep -q 'Link detected: yes' && link=true
    [ -n "$e" ] || { [ "$(cat "$d/carrier" 2>/dev/null)" = 1 ] && link=true; }
    drv=$(ethtool -i "$n" 2>/dev/null | sed -n 's/^driver: //p'); [ -n "$drv" ] || drv=$(basename "$(readlink "$d/device/driver" 2>/dev/null)")
    l=$(lldp_json "$n")
    printf '%s{"mac":%s,"name":%s,"driver":%s,"speedMbps":%s,"link":%s%s}' "$sep" "$(js "$(cat "$d/address")")" "$(js "$n")" "$(js "$drv")" \
      "$(num "$speed")" "$link" "${l:+,\"lldp\":$l}"
    sep=,
  done
  printf ']}'
}

# ---------------------------------------------------------------- disks
# pick_disk WANT MINBYTES: the disk named or with that serial, else the smallest that holds MINBYTES.
pick_disk() {
  if [ -n "$1" ]; then
    disks | while read -r n size; do
      if [ "$n" = "$1" ] || [ "$(disk_serial "$n")" = "$1" ]; then echo "$n $size"; break; fi
    done
  else
    disks | awk -v min="$2" '$2 >= min' | sort -k2,2n | head -n1
  fi
}

# deploy: stream the image onto the disk (Range resume), flush, read back and check its sha256.
deploy() {
  sel=$(pick_disk "$T_disk" "$T_imageSize")
  [ -n "$sel" ] || { [ -n "$T_disk" ] && fail "disk $T_disk: not found" || fail "image $T_image ($T_imageSize bytes) fits none of the disks: $(disks | tr '\n' ' ')"; return; }
  set -- $sel; dev=/dev/$1 dsize=$2
  [ "$dsize" -ge "$T_imageSize" ] || { fail "image $T_image ($T_imageSize bytes) does not fit disk $1 ($dsize bytes)"; return; }
  step discard
  sparse=
  $BLKDISCARD "$dev" 2>/dev/null && sparse=,sparse
  step write
  off=0 tries=0
  while [ "$off" -lt "$T_imageSize" ]; do
    curl -sS -f -H @/run/mb/auth --speed-limit 1 --speed-time 10 -r "$off-" "$URL$T_imageUrl" 2>/run/mb/curl.err \
      | $DD of="$dev" bs=4M iflag=fullblock oflag=seek_bytes seek="$off" conv=notrunc$sparse 2>/run/mb/dd.err
    got=$(sed -n 's/^\([0-9]*\) bytes.*copied.*/\1/p' /run/mb/dd.err | tail -n1)
    off=$((off + ${got:-0}))
    [ "$off" -ge "$T_imageSize" ] && break
    tries=$((tries + 1))
    [ "$tries" -le 20 ] || { fail "image download stopped at $off of $T_imageSize bytes: $(head -c 200 /run/mb/curl.err)"; return; }
    say "download cut at $off bytes ($(head -c 120 /run/mb/curl.err) $(grep -v 'records\|copied' /run/mb/dd.err | head -c 120)); resuming in ${tries}s"
    http POST "progress?bytes=$off" >/dev/null
    sleep "$tries"
  done
  step flush
  sync; blockdev --flushbufs "$dev"; echo 3 > /proc/sys/vm/drop_caches
  step verify
  sum=$(head -c "$T_imageSize" "$dev" | sha256sum | cut -d' ' -f1)
  if [ "$sum" != "$T_imageSha256" ] && [ -n "$sparse" ]; then
    # The disk did not read back zeros where it was discarded: write every byte, once.
    say "read-back mismatch after a sparse write; writing the zero ranges too"
    curl -sS -f -H @/run/mb/auth "$URL$T_imageUrl" | $DD of="$dev" bs=4M iflag=fullblock conv=notrunc,fsync 2>/dev/null
    sync; blockdev --flushbufs "$dev"; echo 3 > /proc/sys/vm/drop_caches
    sum=$(head -c "$T_imageSize" "$dev" | sha256sum | cut -d' ' -f1)
  fi
  [ "$sum" = "$T_imageSha256" ] || { fail "disk $1 reads back sha256 $sum, the image is $T_imageSha256"; return; }
  printf '{"disk":%s,"bytes":%s,"sha256":"%s","sparse":%s}' "$(js "$1")" "$T_imageSize" "$sum" "$([ -n "$sparse" ] && echo true || echo false)" > /run/mb/result
}

# capture: the disk streamed into a new image (PUT, chunked); then its own sha256, which metalboot
# compares with what the image store recorded.
capture() {
  sel=$(pick_disk "$T_disk" 0)
  [ -n "$sel" ] || { fail "disk ${T_disk:-(any)}: not found"; return; }
  set -- $sel; dev=/dev/$1
  step upload
  code=$($DD if="$dev" bs=4M 2>/dev/null | curl -sS -m 86400 -X PUT -H @/run/mb/auth -H 'Content-Type: application/octet-stream' -T - \
    -o /run/mb/up -w '%{http_code}' "$URL$T_captureUrl" 2>/run/mb/curl.err) || code=000
  [ "$code" = 201 ] || { fail "upload of $1: HTTP $code $(head -c 200 /run/mb/up) $(head -c 120 /run/mb/curl.err)"; return; }
  step verify
  sum=$(sha256sum "$dev" | cut -d' ' -f1)
  printf '{"disk":%s,"bytes":%s,"sha256":"%s"}' "$(js "$1")" "$2" "$sum" > /run/mb/result
}

# erase: every disk (or those listed) discarded or zeroed; the result says what each got.
erase() {
  step erase
  printf '{"disks":[' > /run/mb/result
  sep=
  disks | while read -r n size; do
    case ",$T_disks," in ,all,|*",$n,"*) ;; *) continue ;; esac
    if [ "$T_method" = zero ]; then $BLKDISCARD -z "/dev/$n" 2>/run/mb/e.err && r=zeroed || r="failed: $(head -c 120 /run/mb/e.err)"
    else $BLKDISCARD "/dev/$n" 2>/run/mb/e.err && r=discarded || r="failed: $(head -c 120 /run/mb/e.err)"; fi
    say "$n: $r"
    printf '%s{"name":%s,"sizeBytes":%s,"result":%s}' "$sep" "$(js "$n")" "$size" "$(js "$r")" >> /run/mb/result
    sep=,
  done
  printf ']}' >> /run/mb/result
}

# ---------------------------------------------------------------- the task
http GET task > /run/mb/task || fatal "no task from metalboot"
# key=value lines with values from a strict alphabet (metalboot's agent route): read, never eval'd.
T_kind= T_then=poweroff T_image= T_imageUrl= T_imageSize=0 T_imageSha256= T_disk= T_disks=all T_method=discard T_captureUrl=
while IFS='=' read -r k v; do
  case $k in
    kind) T_kind=$v ;; then) T_then=$v ;; image) T_image=$v ;; imageUrl) T_imageUrl=$v ;; imageSize) T_imageSize=$v ;;
    imageSha256) T_imageSha256=$v ;; disk) T_disk=$v ;; disks) T_disks=$v ;; method) T_method=$v ;; captureUrl) T_captureUrl=$v ;;
  esac
done < /run/mb/task
say "task: $T_kind"
: > /run/mb/result
case $T_kind in
  inspect)
    # The LLDP captures run for LLDP_WAIT seconds from boot: wait for them to end (or capture).
    step inventory
    wait
    inventory > /run/mb/inventory
    http POST inventory -H 'Content-Type: application/json' --data-binary @/run/mb/inventory >/dev/null || fatal "inventory not accepted" ;;
  deploy) deploy ;;
  erase) erase ;;
  capture) capture ;;
  *) fail "unknown task kind '$T_kind'" ;;
esac
[ -s /run/mb/result ] || echo '{}' > /run/mb/result
http POST done -H 'Content-Type: application/json' --data-binary @/run/mb/result > /run/mb/done || fatal "done not accepted"
finish_as "$(sed -n 's/^then=//p' /run/mb/done)"
