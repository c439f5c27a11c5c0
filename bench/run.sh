#!/usr/bin/env bash
# bench/run.sh — repeatable throughput/latency benchmark of omnirouted.
#
# Starts its own redis-server (unix socket, no persistence) and the daemon
# (an existing build) on a free port, then measures on this machine:
#   a. wrk GET /healthz                    the HTTP ceiling of the daemon
#   b. redis-benchmark EVALSHA ingest.lua  the Redis ceiling for the same work
#      (routing.lua + ingest.lua, the text the build embeds)
#   c. wrk POST /v1/inbound/bench          signed webhooks: the real figure
# and checks that the conversation logs hold exactly one message per 200 and
# the queue's band stream one entry per new conversation.
# See bench/README.md. Knobs (environment):
#   OMNIROUTED   daemon binary            (default <repo>/build/omnirouted)
#   DURATION     per phase, wrk syntax    (default 10s)
#   CONNECTIONS  concurrent connections   (default 32)
#   THREADS      wrk / redis-benchmark threads (default 2)
#   REQUESTS     pre-signed webhooks      (default max(400000, 40000/s * DURATION))
#   GRACE        seconds wrk waits for in-flight webhooks after sending stops (default 3)
#   LOG_LEVEL    daemon log level         (default info)
#   OUT_DIR      where results are kept   (default bench/out/<UTC time>)
#   KEEP_TMP=1   keep the temp dir (requests, sockets, logs)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
PY=/usr/bin/python3
TOOL=("$PY" "$HERE/benchtool.py")

BIN=${OMNIROUTED:-$REPO/build/omnirouted}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
GRACE=${GRACE:-3}
LOG_LEVEL=${LOG_LEVEL:-info}
INGEST_LUA=$REPO/daemon/ingest.lua
ROUTING_LUA=$REPO/daemon/routing.lua   # prepended to ingest.lua by the build
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT_DIR=${OUT_DIR:-$HERE/out/$STAMP}
KEEP_TMP=${KEEP_TMP:-0}
ADAPTER=bench
QUEUE=general           # undeclared: a pull queue
BAND=normal             # the priority every bench message gets
PREFIX="omr:"
BAND_KEY="${PREFIX}queue:$QUEUE:$BAND"   # the band stream of new conversations
CAL_CALLS=20000          # redis-benchmark calibration run (also its warm-up)
CONVERSATIONS=32         # benchtool.py: 8 customers x 4 threads

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: error: $*"; exit 1; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# ---------------------------------------------------------------- checks
for t in wrk redis-server redis-cli redis-benchmark curl; do
    command -v "$t" >/dev/null || die "'$t' not found (apt-get install -y wrk redis-server redis-tools curl)"
done
[[ -x $PY ]] || die "$PY not found"
[[ -x $BIN ]] || die "no omnirouted binary at $BIN
  build it first:  cmake -S $REPO -B $REPO/build && cmake --build $REPO/build -j2
  or point OMNIROUTED=/path/to/omnirouted at an existing build"
[[ -f $INGEST_LUA && -f $ROUTING_LUA ]] || die "no ingest script at $INGEST_LUA (and $ROUTING_LUA)"
is_uint "$CONNECTIONS" && is_uint "$THREADS" && is_uint "$GRACE" \
    || die "CONNECTIONS, THREADS and GRACE must be integers"
(( THREADS >= 1 && CONNECTIONS >= THREADS )) || die "need CONNECTIONS >= THREADS >= 1"
SECS=$("${TOOL[@]}" seconds "$DURATION")
WRK_SECS=$(awk -v s="$SECS" 'BEGIN { x = int(s); if (x < s) x++; if (x < 1) x = 1; print x }')
REQUESTS=${REQUESTS:-$(( WRK_SECS * 40000 > 400000 ? WRK_SECS * 40000 : 400000 ))}
is_uint "$REQUESTS" || die "REQUESTS must be an integer"

# ---------------------------------------------------------------- cleanup
TMP=$(mktemp -d /tmp/omr-bench.XXXXXX)
mkdir -p "$OUT_DIR"
# The script text Redis runs, built as scripts/embed.cmake does (LIB=routing.lua).
INGEST_SRC=$TMP/ingest.combined.lua
{ printf 'local R = (function()\n'; cat "$ROUTING_LUA"; printf '\nend)()\n'; cat "$INGEST_LUA"; } >"$INGEST_SRC"
# Run a copy: a rebuild during the run must not swap the binary under it.
cp "$BIN" "$TMP/omnirouted"
redis_pid=""
daemon_pid=""
daemon_rc=""
child_pid=""   # the load generator running now (wrk, redis-benchmark)

stop_pid() {  # pid: SIGTERM, wait up to 15 s, then SIGKILL; sets STOP_RC
    local pid=$1 i
    STOP_RC=""
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for (( i = 0; i < 150; i++ )); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "run.sh: pid $pid did not exit after SIGTERM, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    STOP_RC=0
    wait "$pid" 2>/dev/null || STOP_RC=$?
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    [[ -n $child_pid ]] && kill -0 "$child_pid" 2>/dev/null && kill -KILL "$child_pid" 2>/dev/null
    [[ -n $daemon_pid ]] && stop_pid "$daemon_pid"
    [[ -n $redis_pid ]] && stop_pid "$redis_pid"
    for f in daemon.log redis.log omnirouted.yaml; do
        [[ -f $TMP/$f ]] && cp "$TMP/$f" "$OUT_DIR/$f"
    done
    if (( rc != 0 )) && [[ -s $TMP/daemon.log ]]; then
        say "--- daemon stderr, last 40 lines without the parked-connection warnings ($OUT_DIR/daemon.log):"
        grep -v 'incomplete request' "$TMP/daemon.log" | tail -n 40 >&2
    fi
    if [[ $KEEP_TMP == 1 ]]; then
        say "run.sh: temp dir kept: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'say "run.sh: error: status $? at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
# run_child OUTFILE CMD...: run a load generator in the background and wait
# for it, so that SIGINT/SIGTERM reach the trap at once (bash runs traps
# only after a foreground child exits) and cleanup can kill it.
run_child() {
    local out=$1 st=0
    shift
    "$@" >"$out" 2>&1 &
    child_pid=$!
    wait "$child_pid" || st=$?
    child_pid=""
    return "$st"
}
SOCK=$TMP/redis.sock
rcli() { redis-cli -s "$SOCK" "$@"; }
conv_logs() {  # -> "<messages in all conversation logs> <conversations>"
    rcli --scan --pattern "${PREFIX}conv:*:log" | awk '{ print "XLEN " $0 }' | rcli \
        | awk '{ s += $1; n++ } END { printf "%d %d\n", s, n }'
}

daemon_alive() {
    [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null && return 0
    local st=0
    wait "$daemon_pid" 2>/dev/null || st=$?
    die "the daemon is gone (exit status $st)"
}

cpu_ticks() {  # utime+stime of a pid, in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
CLK_TCK=$(getconf CLK_TCK)
cpu_pct() {  # before after seconds -> percent of one core
    awk -v a="$1" -v b="$2" -v s="$3" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", (b - a) / hz / s * 100 }'
}
now_s() { date +%s.%N; }
sys_snap() {  # "busy total steal" jiffies of the whole machine
    awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t, $9; exit }' /proc/stat
}
sys_pct() {  # "before" "after" -> "busy% steal%" of all cores (100% = one core)
    awk -v a="$1" -v b="$2" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ");
        t = y[2] - x[2]; if (t <= 0) t = 1;
        printf "%.0f %.0f\n", (y[1] - x[1]) / t * 100 * n, (y[3] - x[3]) / t * 100 * n }'
}

kv() {  # kv LINE KEY -> value of "KEY=value" in a BENCH line
    local v
    v=$(awk -v k="$2" '{ for (i = 2; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit } }' <<<"$1")
    [[ -n $v ]] || die "no '$2' in wrk output: $1"
    printf '%s' "$v"
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
rate() { awk -v n="$1" -v us="$2" 'BEGIN { printf "%.0f", (us > 0) ? n / (us / 1e6) : 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

metric() {  # metric NAME LABEL=VALUE... -> sum over matching samples, or NA
    curl -fsS --max-time 5 "http://127.0.0.1:$PORT/metrics" | "${TOOL[@]}" metric "$@"
}

wait_ready() {
    local i code=""
    for (( i = 0; i < 300; i++ )); do
        daemon_alive
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
            "http://127.0.0.1:$PORT/readyz" || true)
        [[ $code == 200 ]] && return 0
        sleep 0.05
    done
    die "daemon not ready after 15 s (last /readyz status: ${code:-none})"
}

# ---------------------------------------------------------------- idle?
# The figures only mean something on an otherwise idle machine: measure the
# background load for one second before and after the run.
bg_load() {
    local a b
    a=$(sys_snap); sleep 1; b=$(sys_snap)
    sys_pct "$a" "$b" | awk '{ print $1 }'
}
BG_BEFORE=$(bg_load)

# ---------------------------------------------------------------- redis
say "== starting redis-server (unix socket $SOCK)"
redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 \
    --save '' --appendonly no --dir "$TMP" --logfile "$TMP/redis.log" \
    --daemonize no >/dev/null 2>&1 &
redis_pid=$!
for (( i = 0; ; i++ )); do
    [[ $(rcli ping 2>/dev/null || true) == PONG ]] && break
    kill -0 "$redis_pid" 2>/dev/null || die "redis-server exited: $(tail -n 5 "$TMP/redis.log" 2>/dev/null)"
    (( i < 200 )) || die "redis-server not answering after 10 s"
    sleep 0.05
done

# ---------------------------------------------------------------- daemon
PORT=$("${TOOL[@]}" freeport)
"${TOOL[@]}" secret "$TMP/$ADAPTER.secret"
CFG=$TMP/omnirouted.yaml
cat >"$CFG" <<EOF
# written by bench/run.sh
log:
  level: $LOG_LEVEL
http:
  listen: "127.0.0.1:$PORT"
  max_body: 1MiB
  idle_timeout: 30s
  max_connections: 4096
  drain_timeout: 10s
redis:
  url: "unix://$SOCK"
  prefix: "$PREFIX"
  command_timeout: 2s
  dedup_ttl: 7d
  queue_maxlen: 100000000     # far above any run: streams are never trimmed
  events_maxlen: 100000
connectors:
  api:
    timestamp_window: 1d      # requests are signed before the run
    adapters:
      - name: $ADAPTER
        secret_file: $ADAPTER.secret
        require_timestamp: true
routing:
  default_queue: $QUEUE
  default_priority: normal
  # The example rules, evaluated for every message; the bench traffic
  # matches none of them, so everything lands in the default queue.
  rules:
    - name: refunds
      keywords: [refund, "money back", "hoàn tiền", "iade", "คืนเงิน"]
      queue: billing
      priority: high
    - name: sms-vip
      channel: [sms]
      sender: ["+4477009*"]
      queue: vip
      priority: urgent
    - name: shop-adapter
      adapter: ["api:shop"]
      queue: shop
EOF
if ! "$BIN" --check-config -c "$CFG" >"$TMP/check.txt" 2>&1; then
    cat "$TMP/check.txt" >&2
    die "the daemon refused the generated config $CFG"
fi
VERSION=$("$BIN" --version 2>&1 | awk 'NR == 1' || true)
BIN_ID="$(sha1sum "$TMP/omnirouted" | cut -c1-12), built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC')"

say "== starting $BIN on 127.0.0.1:$PORT"
"$TMP/omnirouted" -c "$CFG" >"$TMP/daemon.log" 2>&1 &
daemon_pid=$!
wait_ready
LOG_AT_READY=$(wc -l <"$TMP/daemon.log")   # warnings before this (e.g. /readyz 503 while connecting) are not counted

# ---------------------------------------------------------------- requests
say "== generating $REQUESTS signed webhooks"
"${TOOL[@]}" gen --secret-file "$TMP/$ADAPTER.secret" --host "127.0.0.1:$PORT" \
    --adapter "$ADAPTER" --count "$REQUESTS" --threads "$THREADS" --out "$TMP/req" \
    | tee "$OUT_DIR/requests.txt" >&2
BODY_MEAN=$(grep -o 'mean [0-9]*' "$OUT_DIR/requests.txt" | awk '{ print $2 }')

# Smoke test, and the message JSON exactly as the daemon stores it (the
# redis-benchmark phase sends the same payload).
read -r st resp < <("${TOOL[@]}" post-raw 127.0.0.1 "$PORT" "$TMP/req.warmup")
[[ $st == 200 ]] || die "smoke webhook answered $st: $resp"
# It opened a conversation in the pull queue: one entry in its band stream,
# whose `message` field is the message JSON.
MSG_JSON=$(rcli --raw XREVRANGE "$BAND_KEY" + - COUNT 1 \
    | awk 'prev == "message" { print; exit } { prev = $0 }')
[[ -n $MSG_JSON ]] || die "smoke webhook answered 200 but $BAND_KEY has no message"
MSG_LANG=$(rcli --raw HGET "${PREFIX}conv:{$(sed 's/^{"conversation_id":"\([^"]*\)".*/\1/' <<<"$MSG_JSON")}" language)
[[ -n $MSG_LANG ]] || die "no language in the smoke message's conversation"
MSG_ARG=$(sed 's/^{"conversation_id":"[^"]*",/{/' <<<"$MSG_JSON")
[[ $MSG_ARG != *'"conversation_id"'* ]] \
    || MSG_ARG=$("$PY" -c 'import json,sys; m=json.loads(sys.stdin.read()); m.pop("conversation_id",None); print(json.dumps(m,ensure_ascii=False,separators=(",",":")))' <<<"$MSG_JSON")

# ---------------------------------------------------------------- a. /healthz
say "== a. wrk GET /healthz, ${WRK_SECS}s, $CONNECTIONS connections, $THREADS threads"
d0=$(cpu_ticks "$daemon_pid"); s0=$(sys_snap); t0=$(now_s)
run_child "$OUT_DIR/healthz.txt" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WRK_SECS}s" --timeout 10s \
    -s "$HERE/healthz.lua" "http://127.0.0.1:$PORT/healthz" \
    || { cat "$OUT_DIR/healthz.txt" >&2; die "wrk (healthz) failed"; }
t1=$(now_s); d1=$(cpu_ticks "$daemon_pid"); s1=$(sys_snap)
read -r H_CPU_M H_STEAL < <(sys_pct "$s0" "$s1")
daemon_alive
H=$(grep '^BENCH ' "$OUT_DIR/healthz.txt") || { cat "$OUT_DIR/healthz.txt" >&2; die "no BENCH line from wrk"; }
H_RPS=$(rate "$(kv "$H" requests)" "$(kv "$H" elapsed_us)")
H_P50=$(ms "$(kv "$H" p50_us)"); H_P99=$(ms "$(kv "$H" p99_us)")
H_ERR=$(( $(kv "$H" connect_err) + $(kv "$H" read_err) + $(kv "$H" write_err) + $(kv "$H" timeouts) + $(kv "$H" status_err) ))
H_CPU_D=$(cpu_pct "$d0" "$d1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")

# ---------------------------------------------------------------- b. redis
say "== b. redis-benchmark EVALSHA ingest.lua, $CONNECTIONS connections"
rcli FLUSHALL >/dev/null
# The daemon loaded its embedded copy of the script (routing.lua wrapped in
# front of ingest.lua, as scripts/embed.cmake builds it) for the smoke
# webhook: if that SHA is not known to Redis, the build is older than the files.
SHA=$(sha1sum <"$INGEST_SRC" | cut -d' ' -f1)
SCRIPT_MATCH=$(rcli SCRIPT EXISTS "$SHA" | awk 'NR == 1')
[[ $SCRIPT_MATCH == 1 ]] || say "run.sh: warning: the daemon's embedded ingest script differs from $ROUTING_LUA + $INGEST_LUA (stale build?)"
[[ $(rcli -x SCRIPT LOAD <"$INGEST_SRC") == "$SHA" ]] || die "SCRIPT LOAD of $INGEST_SRC failed"
R=__rand_int__
NOW_MS=$(( $(date +%s) * 1000 ))
# Same keys and argument shapes as daemon/ingest.c builds: KEYS dedup,
# thread, events; ARGV 1-16 prefix, conversation id, message id, message
# JSON (the smoke message, byte for byte), channel, provider, customer id,
# name, handle, queue, priority, rule, now, dedup ttl, queue maxlen, events
# maxlen; 17-19 language (as the daemon detected it for the smoke message),
# required skills, vip; 20-23 queue, priority, rule, skills for a returning
# customer (the same: no rule of the bench config asks for `returning`);
# 24-25 SLA policy new/returning ('': the bench config has none), 26
# auto-submitted (0).
# -r $CONVERSATIONS: every __rand_int__ is drawn from 0..31, so the thread key
# names 32 conversations like the webhook traffic (the first call of each
# opens it, in the pull queue $QUEUE: one band-stream entry; the others are
# follow-ups, logged only); the dedup key joins 8 draws (32^8 ~ 1e12 keys),
# so practically every call stores a message, and the candidate conversation
# id 6 (two of the 32 new conversations drawing the same id from 32^2 would
# share one log: a 38% chance per run).
EVAL_CMD=(EVALSHA "$SHA" 3
    "${PREFIX}dedup:api:$ADAPTER:m-$R$R$R$R$R$R$R$R"
    "${PREFIX}thread:sms:00000000000000000000$R"
    "${PREFIX}events"
    "$PREFIX" "01$R$R$R$R$R$R" "01$R$R" "$MSG_ARG" sms "api:$ADAPTER" cust-01 "Ana Souza"
    +447911000001 "$QUEUE" normal "" "$NOW_MS" 604800 100000000 100000
    "$MSG_LANG" "[]" 0 "$QUEUE" normal "" "[]" "" "" 0)
reply=$(rcli "${EVAL_CMD[@]}" 2>&1 | awk 'NR == 1')
[[ $reply == stored ]] || die "EVALSHA of $INGEST_SRC did not store: $reply"
rb() {  # rb N: redis-benchmark -> $TMP/rb.csv, prints its last line
    run_child "$TMP/rb.csv" redis-benchmark -s "$SOCK" -c "$CONNECTIONS" --threads "$THREADS" \
        -n "$1" -r "$CONVERSATIONS" --csv "${EVAL_CMD[@]}" \
        || { cat "$TMP/rb.csv" >&2; die "redis-benchmark failed"; }
}
rb "$CAL_CALLS"
cal=$(tail -n1 "$TMP/rb.csv")
CAL_RPS=$(awk -F, '{ gsub(/"/, ""); print int($(NF-6)) }' <<<"$cal")
(( CAL_RPS > 0 )) || die "redis-benchmark calibration failed: $cal"
RB_N=$(awk -v r="$CAL_RPS" -v s="$SECS" -v m="$CAL_CALLS" 'BEGIN { n = int(r * s); print (n > m) ? n : m }')
rcli FLUSHALL >/dev/null
rcli CONFIG RESETSTAT >/dev/null
r0=$(cpu_ticks "$redis_pid"); s0=$(sys_snap); t0=$(now_s)
rb "$RB_N"
RB=$(tail -n1 "$TMP/rb.csv")
t1=$(now_s); r1=$(cpu_ticks "$redis_pid"); s1=$(sys_snap)
read -r RB_CPU_M RB_STEAL < <(sys_pct "$s0" "$s1")
printf '%s\n' "$RB" >"$OUT_DIR/redis-benchmark.csv"
read -r RB_RPS RB_P50 RB_P99 < <(awk -F, '{ gsub(/"/, ""); printf "%.0f %.2f %.2f\n", $(NF-6), $(NF-3), $(NF-1) }' <<<"$RB")
RB_FAILED=$(rcli INFO commandstats | tr -d '\r' | awk -F'[=,]' '/^cmdstat_evalsha:/ { for (i = 1; i < NF; i++) if ($i == "failed_calls" || $i == "rejected_calls") s += $(i + 1) } END { print s + 0 }')
(( RB_FAILED == 0 )) || die "redis-benchmark: $RB_FAILED EVALSHA calls failed (redis-benchmark counts errors as done)"
# Every call stores one message in its conversation's log; the first call
# of each conversation also adds one entry to the band stream.
read -r RB_LOGS RB_CONVS < <(conv_logs)
RB_XLEN=$(rcli XLEN "$BAND_KEY")
awk -v x="$RB_LOGS" -v n="$RB_N" 'BEGIN { exit !(x >= n * 0.999 && x <= n) }' \
    || die "redis-benchmark ran $RB_N calls but the conversation logs hold $RB_LOGS messages"
(( RB_XLEN == RB_CONVS )) || die "redis-benchmark: $RB_CONVS conversations but $BAND_KEY has $RB_XLEN entries"
RB_CPU_R=$(cpu_pct "$r0" "$r1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")

# ---------------------------------------------------------------- c. ingest
say "== c. wrk POST /v1/inbound/$ADAPTER, ${WRK_SECS}s (+${GRACE}s grace), $CONNECTIONS connections, $THREADS threads"
rcli FLUSHALL >/dev/null
wait_ready
daemon_alive
curl -fsS --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$OUT_DIR/metrics-before-c.txt"
STORED0=$("${TOOL[@]}" metric omr_messages_ingested_total outcome=stored <"$OUT_DIR/metrics-before-c.txt")
rm -f "$TMP"/req.ready.*
run_child "$OUT_DIR/ingest.txt" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$(( WRK_SECS + GRACE ))s" \
    --timeout 10s -s "$HERE/inbound.lua" "http://127.0.0.1:$PORT/" \
    -- "$TMP/req" "$THREADS" "$WRK_SECS" "$daemon_pid" "$redis_pid" \
    || { cat "$OUT_DIR/ingest.txt" >&2; die "wrk (ingest) failed"; }
daemon_alive
I=$(grep '^BENCH ' "$OUT_DIR/ingest.txt") || { cat "$OUT_DIR/ingest.txt" >&2; die "no BENCH line from wrk"; }
I_STATUS=$(grep '^BENCH_STATUS' "$OUT_DIR/ingest.txt" | sed 's/^BENCH_STATUS *//')
I_OK=$(kv "$I" ok); I_NON200=$(kv "$I" non200); I_DUPS=$(kv "$I" dups)
I_SENT=$(kv "$I" sent); I_ANSWERED=$(kv "$I" answered); I_WRAPS=$(kv "$I" wraps)
I_ELAPSED=$(kv "$I" elapsed_us); I_SKEW=$(kv "$I" start_skew_us)
I_RATE=$(rate "$I_OK" "$I_ELAPSED")
I_P50=$(ms "$(kv "$I" p50_us)"); I_P90=$(ms "$(kv "$I" p90_us)"); I_P99=$(ms "$(kv "$I" p99_us)"); I_MAX=$(ms "$(kv "$I" max_us)")
I_SOCKERR=$(( $(kv "$I" connect_err) + $(kv "$I" read_err) + $(kv "$I" write_err) + $(kv "$I" timeouts) ))
# CPU over the sending window only (snapshots taken by inbound.lua).
# other = machine - wrk - daemon - redis: anything else running meanwhile.
read -r I_CPU_M I_STEAL I_CPU_W I_CPU_D I_CPU_R I_CPU_O < <(grep '^BENCH_CPU' "$OUT_DIR/ingest.txt" \
    | awk -v n="$(nproc)" -v hz="$CLK_TCK" '{
        split(substr($2, 7), a, ","); split(substr($3, 6), b, ",");
        s = (b[1] - a[1]) / 1e6; t = b[3] - a[3];
        if (s <= 0 || t <= 0) { print "? ? ? ? ? ?"; exit }
        m = (b[2] - a[2]) / t * 100 * n;
        w = (b[5] - a[5]) / hz / s * 100; d = (b[6] - a[6]) / hz / s * 100; r = (b[7] - a[7]) / hz / s * 100;
        o = m - w - d - r; if (o < 0) o = 0;
        printf "%.0f %.0f %.0f %.0f %.0f %.0f\n", m, (b[4] - a[4]) / t * 100 * n, w, d, r, o }')

# Every 200 stored one message in its conversation's log; each new
# conversation added one entry to the band stream (follow-ups add none).
read -r LOGS LOG_CONVS < <(conv_logs)
XLEN=$(rcli XLEN "$BAND_KEY")
STORED1=$(metric omr_messages_ingested_total outcome=stored)
if [[ $STORED0 != NA && $STORED1 != NA ]]; then
    STORED=$(( STORED1 - STORED0 ))
else
    STORED=NA
fi
CONVS=$(rcli --scan --pattern "${PREFIX}thread:*" | wc -l)
curl -fsS --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$OUT_DIR/metrics-after-c.txt" || true

# Stop the daemon now: SIGTERM must drain and exit 0.
stop_pid "$daemon_pid"
daemon_rc=$STOP_RC
daemon_pid=""

# ---------------------------------------------------------------- summary
BG_AFTER=$(bg_load)
# Phase c parks each connection with an unfinished request head at the end
# (bench/inbound.lua); the daemon logs one warning per parked connection.
RUN_LOG=$(tail -n +"$(( LOG_AT_READY + 1 ))" "$TMP/daemon.log")
PARKED_WARN=$(grep -c 'incomplete request' <<<"$RUN_LOG" || true)
OTHER_WARN=$(grep -E 'level=(warning|error|crit)' <<<"$RUN_LOG" | grep -vc 'incomplete request' || true)
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[[ -n $CPU_MODEL ]] || CPU_MODEL=$(lscpu 2>/dev/null | awk -F': *' '/Model name/ { print $2; exit }')
MEM_GB=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
WRK_V=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }' || true)   # wrk -v exits 1
REDIS_V=$(redis-server --version | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^v=/) print substr($i, 3) }')

FAIL=()
(( I_NON200 == 0 )) || FAIL+=("$I_NON200 non-200 responses ($I_STATUS)")
(( I_SOCKERR == 0 )) || FAIL+=("$I_SOCKERR socket errors/timeouts in the ingest phase")
(( I_SENT == I_ANSWERED )) || FAIL+=("$(( I_SENT - I_ANSWERED )) webhooks unanswered when wrk stopped (raise GRACE): the count check is inconclusive")
(( I_WRAPS == 0 && I_DUPS == 0 )) || FAIL+=("request slices exhausted (wraps=$I_WRAPS, duplicate answers=$I_DUPS): raise REQUESTS")
(( LOGS == I_OK )) || FAIL+=("the conversation logs hold $LOGS messages but wrk got $I_OK x 200")
(( XLEN == CONVS && LOG_CONVS == CONVS )) || FAIL+=("XLEN $BAND_KEY = $XLEN, $LOG_CONVS conversation logs, but $CONVS conversations (want one entry per new conversation)")
[[ $STORED == NA || $STORED == "$LOGS" ]] || FAIL+=("daemon metric stored=$STORED differs from the $LOGS logged messages")
(( H_ERR == 0 )) || FAIL+=("$H_ERR errors in the /healthz phase")
[[ $daemon_rc == 0 ]] || FAIL+=("daemon exit status $daemon_rc after SIGTERM (want 0)")

{
cat <<EOF

== omnirouted benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')
machine : nproc=$(nproc), CPU: $CPU_MODEL, ${MEM_GB} GB RAM, Linux $(uname -r)
software: $VERSION ($BIN, sha1 $BIN_ID), redis $REDIS_V, wrk $WRK_V
load    : ${WRK_SECS}s per phase, $CONNECTIONS connections, $THREADS client threads; load generator,
          daemon and redis share the same $(nproc) cores; redis over a unix socket, no persistence
payload : webhook body ~${BODY_MEAN} B JSON (HMAC-SHA256 + timestamp), stored message ${#MSG_ARG} B,
          $CONVERSATIONS conversations (8 customers x 4 threads), 3 routing rules (none match)

phase                                     rate             p50 ms   p99 ms   cpu (100% = one core)
a. GET /healthz          (HTTP ceiling)   $(printf '%8s req/s   %7s  %7s   daemon %s%%, machine %s%%' "$H_RPS" "$H_P50" "$H_P99" "$H_CPU_D" "$H_CPU_M")
b. EVALSHA ingest.lua    (Redis ceiling)  $(printf '%8s calls/s %7s  %7s   redis %s%%, machine %s%%' "$RB_RPS" "$RB_P50" "$RB_P99" "$RB_CPU_R" "$RB_CPU_M")
c. POST /v1/inbound      (the real one)   $(printf '%8s msg/s   %7s  %7s   daemon %s%%, redis %s%%, machine %s%%' "$I_RATE" "$I_P50" "$I_P99" "$I_CPU_D" "$I_CPU_R" "$I_CPU_M")
   ingest cpu: wrk $I_CPU_W%, other processes $I_CPU_O%
   ingest p90 $I_P90 ms, max $I_MAX ms; $I_OK messages in $(awk -v e="$I_ELAPSED" 'BEGIN { printf "%.2f", e / 1e6 }') s (thread start skew $(ms "$I_SKEW") ms)

          (machine = all processes incl. the load generators, of $(nproc) cores = $(( $(nproc) * 100 ))%; steal a/b/c: $H_STEAL/$RB_STEAL/$I_STEAL%)
          background load (1 s before / after the run): $BG_BEFORE% / $BG_AFTER%
ratios  : ingest / healthz = $(ratio "$I_RATE" "$H_RPS")    ingest / redis ceiling = $(ratio "$I_RATE" "$RB_RPS")

check   : 200 responses            = $I_OK
          messages in conv logs    = $LOGS (in $LOG_CONVS conversations)
          XLEN $BAND_KEY = $XLEN (new conversations: $CONVS)
          daemon stored (metrics)  = $STORED
          non-200 responses        = $I_NON200${I_STATUS:+ ($I_STATUS)}
          socket errors/timeouts   = $I_SOCKERR
          sent / answered          = $I_SENT / $I_ANSWERED
          conversations            = $CONVS (expected $CONVERSATIONS)
          redis-benchmark          = $RB_N calls, $RB_LOGS logged in $RB_CONVS conversations, XLEN $RB_XLEN, failed 0
          daemon runs this script  = $( [[ $SCRIPT_MATCH == 1 ]] && echo "yes (sha $SHA)" || echo "NO: embedded copy differs from daemon/ingest.lua" )
          daemon exit on SIGTERM   = $daemon_rc
          daemon log warnings      = $OTHER_WARN after ready (+ $PARKED_WARN expected "incomplete request": parked connections)
EOF
if (( ${#FAIL[@]} )); then
    echo "result  : FAIL"
    for f in "${FAIL[@]}"; do echo "          - $f"; done
else
    echo "result  : OK (logged messages = 200 count, one band entry per conversation, no errors)"
fi
(( CONVS == CONVERSATIONS )) || echo "warning : $CONVS conversations, expected $CONVERSATIONS (threading?)"
NOT_IDLE=0
(( BG_BEFORE > 15 || BG_AFTER > 15 )) && NOT_IDLE=1
[[ $I_CPU_O =~ ^[0-9]+$ ]] && (( I_CPU_O > 15 )) && NOT_IDLE=1
if (( NOT_IDLE )); then
    echo "warning : the machine was not idle (background ${BG_BEFORE}%/${BG_AFTER}%, other processes during c ${I_CPU_O}%):"
    echo "          the rates are not comparable with runs on an idle machine"
fi
echo "details : $OUT_DIR"
} | tee "$OUT_DIR/summary.txt"

(( ${#FAIL[@]} == 0 )) || exit 1
