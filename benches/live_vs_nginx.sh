#!/usr/bin/env bash
# Live HLS serving speed against nginx, in one run on this machine, and the memory that
# 2,000 parked blocking playlist requests add.
#
#   benches/live_vs_nginx.sh            (needs wrk, nginx, curl, python3; builds release)
#
# bardcast serves a published live segment and the media playlist; nginx (one worker,
# sendfile on, as Debian ships it) serves the same bytes from disk. Three rounds alternate
# between the two; prints each round and the median requests/s and ratio (target ≥ 0.7×
# nginx), then the RSS growth while 2,000 blocking requests wait (target < 50 MB). A round
# with any non-2xx answer stops the run: an error page is not a served segment.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --locked --bin bardcast >/dev/null
ulimit -n 16384

work=$(mktemp -d)
# Below the ephemeral range (32768-60999), which a load run before this one may still hold in TIME-WAIT.
bport=18231
nport=18232
cleanup() { kill "${bpid:-}" 2>/dev/null || true; nginx -p "$work" -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

HOST=127.0.0.1 PORT=$bport DATABASE_PATH="$work/db.sqlite" CACHE_DIR="$work/cache" GM_KEY=bench \
  LOG_LEVEL=warn DEMO=true PLAYER_DIR=player target/release/bardcast >"$work/bardcast.log" 2>&1 &
bpid=$!
base="http://127.0.0.1:$bport"
for _ in $(seq 100); do curl -sf "$base/api/health" >/dev/null && break; sleep 0.1; done
for _ in $(seq 100); do [[ $(curl -s "$base/api/scan/status") == *'"lastFinishedAt":"'* ]] && break; sleep 0.1; done
curl -sf -X POST -H 'authorization: Bearer bench' -H 'content-type: application/json' \
  -d '{"trackId":1}' "$base/api/session/play" >/dev/null
sleep 3
seg=$(curl -s "$base/hls/256k/live.m3u8" | grep '^seg/' | tail -1)
mkdir -p "$work/www/hls/256k/seg"
curl -sf "$base/hls/256k/$seg" -o "$work/www/hls/256k/$seg"
curl -sf "$base/hls/256k/live.m3u8" -o "$work/www/hls/256k/live.m3u8"
# A master started as root hands its workers to `nobody`, who cannot read a mktemp folder.
user_line=
[[ $(id -u) -ne 0 ]] || user_line="user root;"
cat >"$work/nginx.conf" <<CONF
$user_line
worker_processes 1;
error_log $work/nginx-error.log;
pid $work/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  types { audio/mp4 m4s; application/vnd.apple.mpegurl m3u8; }
  server { listen 127.0.0.1:$nport; root $work/www; }
}
CONF
nginx -p "$work" -c "$work/nginx.conf"
sleep 0.5

rate() {
  local out
  out=$(wrk -t2 -c64 -d5s "$1")
  if grep -q 'Non-2xx' <<<"$out"; then echo "non-2xx answers from $1:" >&2; echo "$out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
echo "bardcast pid $bpid, nginx 1 worker (sendfile); wrk -t2 -c64 -d5s, all on this $(nproc)-core machine"
for what in "segment:$seg" "playlist:live.m3u8"; do
  name=${what%%:*}; path=${what#*:}
  echo "$name: $(stat -c %s "$work/www/hls/256k/$path") bytes"
  rounds=()
  for round in 1 2 3; do
    b=$(rate "$base/hls/256k/$path")
    n=$(rate "http://127.0.0.1:$nport/hls/256k/$path")
    rounds+=("$b:$n")
    echo "  round $round: bardcast $b req/s, nginx $n req/s"
  done
  python3 - "$name" "${rounds[@]}" <<'PY'
import statistics, sys
name, rounds = sys.argv[1], [tuple(map(float, r.split(":"))) for r in sys.argv[2:]]
b = statistics.median(r[0] for r in rounds)
n = statistics.median(r[1] for r in rounds)
ratio = statistics.median(r[0] / r[1] for r in rounds)
print(f"{name:9s} median: bardcast {b:7.0f} req/s   nginx {n:7.0f} req/s   ratio {ratio:.2f}x (target >= 0.7)")
PY
done

rss() { awk '/VmRSS/ {print $2}' "/proc/$bpid/status"; }
before=$(rss)
out=$(python3 - "$bport" "$bpid" <<'PY'
import asyncio, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
async def park(msn, results):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET /hls/256k/live.m3u8?_HLS_msn={msn}&_HLS_part=2 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await w.drain()
    line = await r.readline()
    results.append(line.split()[1] if line else b"closed")
    w.close()
async def main():
    msn = int(time.time() * 1000) // 2048 + 2
    results = []
    tasks = [asyncio.create_task(park(msn, results)) for _ in range(2000)]
    await asyncio.sleep(1.5)
    parked = rss()
    await asyncio.gather(*tasks)
    ok = sum(1 for s in results if s == b"200")
    print(f"PARKED_RSS_KB {parked} answered_200 {ok}/2000")
asyncio.run(main())
PY
)
parked=$(awk '{print $2}' <<<"$out")
echo "2000 parked blocking requests: RSS $before kB -> $parked kB, +$(( (parked - before) / 1024 )) MB (target < 50 MB); ${out#* * }"
