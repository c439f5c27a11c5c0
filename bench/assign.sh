#!/usr/bin/env bash
# bench/assign.sh — assignment benchmark of omnirouted: how fast new
# conversations reach agents, what assignment costs ingest, how fast agents
# can pull, and whether every conversation went to exactly one agent within
# capacity. See bench/README.md ("Assignment").
#
# Starts its own redis-server (unix socket, no persistence) and, for 1 and
# then 2 daemons sharing it (an existing build, each on its own port), runs
# these phases, each on a flushed Redis with freshly started daemons:
#   pull     N new conversations into a pull queue (no assignment), then
#            CLAIM_CLIENTS clients claim from that backlog (claim only)
#   accept   the same, each claim followed by an accept (the agent tool's loop)
#   push     N new conversations into a push queue (offer_timeout 0) with
#            AGENTS agents online: ingest rate, opened -> assigned latency
#   drain    N new conversations into the push queue with every agent
#            offline, then all come online: how fast dispatch empties a backlog
# and once, with 1 daemon, the ceilings of this machine:
#   healthz  wrk GET /healthz                   (HTTP)
#   redis    redis-benchmark EVALSHA ingest.lua  (new conversations)
#            redis-benchmark EVALSHA claim.lua   (claims from a backlog)
# Knobs (environment):
#   OMNIROUTED     daemon binary                        (default <repo>/build/omnirouted)
#   CONVERSATIONS  new conversations per phase (N)      (default 20000)
#   AGENTS         agents in the config                 (default 20)
#   CAPACITY       per agent and channel (max 1000)     (default 1000)
#   CONNECTIONS    wrk connections, split over daemons  (default 32)
#   THREADS        wrk threads, split over daemons      (default 2)
#   DAEMONS        daemon counts to run                 (default "1 2")
#   CLAIM_CLIENTS  concurrent claiming clients          (default 8)
#   CLAIM_SECONDS  longest claim phase                  (default 10)
#   PHASES         which phases                         (default "pull accept push drain ceiling")
#   LOG_LEVEL      daemon log level                     (default info)
#   OUT_DIR        where results are kept               (default bench/out/assign-<UTC time>)
#   KEEP_TMP=1     keep the temp dir
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
PY=/usr/bin/python3
TOOL=("$PY" "$HERE/benchtool.py")
ATOOL=("$PY" "$HERE/assigntool.py")

BIN=${OMNIROUTED:-$REPO/build/omnirouted}
N=${CONVERSATIONS:-20000}
AGENTS=${AGENTS:-20}
CAPACITY=${CAPACITY:-1000}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
DAEMONS=${DAEMONS:-"1 2"}
CLAIM_CLIENTS=${CLAIM_CLIENTS:-8}
CLAIM_SECONDS=${CLAIM_SECONDS:-10}
PHASES=${PHASES:-"pull accept push drain ceiling"}
LOG_LEVEL=${LOG_LEVEL:-info}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT_DIR=${OUT_DIR:-$HERE/out/assign-$STAMP}
KEEP_TMP=${KEEP_TMP:-0}
PREFIX="omr:"
PULLQ=pullq
PUSHQ=pushq
CEIL_SECS=5              # healthz and redis-benchmark phases

say() { printf '%s\n' "$*" >&2; }
die() { say "assign.sh: error: $*"; exit 1; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
has_phase() { [[ " $PHASES " == *" $1 "* ]]; }

# ---------------------------------------------------------------- checks
for t in wrk redis-server redis-cli redis-benchmark curl; do
    command -v "$t" >/dev/null || die "'$t' not found (apt-get install -y wrk redis-server redis-tools curl)"
done
[[ -x $PY ]] || die "$PY not found"
"$PY" -c 'import redis' 2>/dev/null || die "python3-redis is missing (apt-get install -y python3-redis)"
[[ -x $BIN ]] || die "no omnirouted binary at $BIN (cmake -S $REPO -B $REPO/build && cmake --build $REPO/build -j2)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
for v in N AGENTS CAPACITY CONNECTIONS THREADS CLAIM_CLIENTS CLAIM_SECONDS; do
    is_uint "${!v}" || die "$v must be an integer"
done
(( AGENTS >= 1 && AGENTS <= 999 )) || die "AGENTS must be 1..999"
(( CAPACITY >= 1 && CAPACITY <= 1000 )) || die "CAPACITY must be 1..1000 (the config's limit)"
for d in $DAEMONS; do
    [[ $d == 1 || $d == 2 ]] || die "DAEMONS may hold 1 and 2"
    (( THREADS % d == 0 && CONNECTIONS % d == 0 && CONNECTIONS >= THREADS )) \
        || die "THREADS and CONNECTIONS must split evenly over $d daemons"
done

# ---------------------------------------------------------------- cleanup
TMP=$(mktemp -d /tmp/omr-assign.XXXXXX)
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
cd "$TMP"   # every path below is absolute; nothing lands in the work tree
redis_pid=""
DPIDS=()        # running daemons
WRK_PIDS=()     # running load generators
SOCK=$TMP/redis.sock
rcli() { redis-cli -s "$SOCK" "$@"; }

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
            say "assign.sh: pid $pid did not exit after SIGTERM, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    STOP_RC=0
    wait "$pid" 2>/dev/null || STOP_RC=$?
}

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    set +e
    for p in "${WRK_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${DPIDS[@]}"; do stop_pid "$p"; done
    [[ -n $redis_pid ]] && stop_pid "$redis_pid"
    cp "$TMP"/*.yaml "$TMP"/redis.log "$OUT_DIR"/ 2>/dev/null
    if (( rc != 0 )); then
        for p in "$TMP"/daemon-*.log; do
            [[ -s $p ]] || continue
            say "--- $(basename "$p"), last 30 lines without parked-connection warnings:"
            grep -v 'incomplete request' "$p" | tail -n 30 >&2
        done
    fi
    cp "$TMP"/daemon-*.log "$OUT_DIR"/ 2>/dev/null
    if [[ $KEEP_TMP == 1 ]]; then say "assign.sh: temp dir kept: $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'say "assign.sh: error: status $? at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers
CLK_TCK=$(getconf CLK_TCK)
now_s() { date +%s.%N; }
ticks() {  # utime+stime of a pid (0 when gone)
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
sys_snap() {  # "busy total steal irq+softirq" jiffies of the whole machine
    awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t, $9, $7 + $8; exit }' /proc/stat
}
# cpu_begin / cpu_end [LOADGEN_TICKS]: CPU of redis, the daemons, the load
# generator and the whole machine over a window, as % of one core -> CPU_R
# CPU_D (daemons summed) CPU_L CPU_M, CPU_I (interrupts: mostly the loopback
# network stack, charged to no process) and CPU_O = the rest: other
# processes on the machine (someone else's tests...), which skew every figure.
cpu_begin() {
    local p
    : >"$TMP/lg.ticks"
    C_T0=$(now_s); C_S0=$(sys_snap); C_R0=$(ticks "$redis_pid"); C_D0=0
    for p in "${DPIDS[@]}"; do C_D0=$(( C_D0 + $(ticks "$p") )); done
}
cpu_end() {
    local p t1 s1 r1 d1=0 lg
    lg=$(( ${1:-0} + $(awk '{ s += $1 } END { print s + 0 }' "$TMP/lg.ticks") ))
    t1=$(now_s); s1=$(sys_snap); r1=$(ticks "$redis_pid")
    for p in "${DPIDS[@]}"; do d1=$(( d1 + $(ticks "$p") )); done
    read -r CPU_R CPU_D CPU_L CPU_M CPU_O CPU_I < <(awk -v t0="$C_T0" -v t1="$t1" -v r0="$C_R0" -v r1="$r1" \
        -v d0="$C_D0" -v d1="$d1" -v s0="$C_S0" -v s1="$s1" -v lg="$lg" -v hz="$CLK_TCK" -v n="$(nproc)" 'BEGIN {
        w = t1 - t0; if (w <= 0) w = 1e-9; split(s0, a, " "); split(s1, b, " ");
        tt = b[2] - a[2]; if (tt <= 0) tt = 1;
        r = (r1 - r0) / hz / w * 100; d = (d1 - d0) / hz / w * 100; l = lg / hz / w * 100;
        m = (b[1] - a[1]) / tt * 100 * n; i = (b[4] - a[4]) / tt * 100 * n;
        o = m - r - d - l - i; if (o < 0) o = 0;
        printf "%.0f %.0f %.0f %.0f %.0f %.0f\n", r, d, l, m, o, i }')
    (( CPU_O > MAX_OTHER )) && MAX_OTHER=$CPU_O
    (( CPU_O > 15 )) && BUSY_PHASES+=("$PH_NAME($CPU_O%)")
    return 0
}
MAX_OTHER=0
BUSY_PHASES=()
# lg CMD...: run a load generator or helper in the foreground (stdout passes
# through) and count its CPU as the load generator's (bash `times`).
lg() {
    local rc=0
    ( "$@"; rc=$?; times >"$TMP/lg.times"; exit "$rc" ) || rc=$?
    awk -v hz="$CLK_TCK" 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] }
        printf "%.0f\n", s * hz }' "$TMP/lg.times" >>"$TMP/lg.ticks"
    return "$rc"
}
bg_load() {  # busy % of all cores (100% = one core) over 1 s
    local a b
    a=$(sys_snap); sleep 1; b=$(sys_snap)
    awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ");
        t = y[2] - x[2]; if (t <= 0) t = 1; printf "%.0f\n", (y[1] - x[1]) / t * 100 * n }'
}
kv() {  # kv LINE KEY -> value of "KEY=value"
    local v
    v=$(awk -v k="$2" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit } }' <<<"$1")
    [[ -n $v ]] || die "no '$2' in: $1"
    printf '%s' "$v"
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
# Redis time per EVALSHA (scripts' own commands included) and the commands
# inside the scripts that took the most time, since the last CONFIG RESETSTAT.
redis_stats() {  # OUTFILE -> RS_CALLS RS_USEC_PER_CALL RS_BUSY_USEC, RS_TOP
    rcli INFO commandstats | tr -d '\r' >"$1"
    read -r RS_CALLS RS_UPC RS_USEC < <(awk -F'[:=,]' '/^cmdstat_evalsha:/ { print $3, $7, $5 }' "$1")
    RS_CALLS=${RS_CALLS:-0}; RS_UPC=${RS_UPC:-0}; RS_USEC=${RS_USEC:-0}
    RS_TOP=$(awk -F'[:=,]' '/^cmdstat_/ && $1 !~ /evalsha|^cmdstat_eval$/ { sub(/^cmdstat_/, "", $1); print $5, $1, $7 }' "$1" \
        | sort -rn | head -n 3 | awk '{ printf "%s%s %.0f ms (%.1f us/call)", (NR > 1 ? ", " : ""), $2, $1 / 1000, $3 }')
}

# ---------------------------------------------------------------- setup
BG_BEFORE=$(bg_load)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
cp "$BIN" "$TMP/omnirouted"   # a rebuild during the run must not swap it
for a in pull push; do "${TOOL[@]}" secret "$TMP/$a.secret"; done
"$PY" -c 'import secrets; print(secrets.token_hex(24))' >"$TMP/api.token"
chmod 600 "$TMP/api.token"
# The script texts Redis runs, built as scripts/embed.cmake does.
combine() { { printf 'local R = (function()\n'; cat "$REPO/daemon/routing.lua"; printf '\nend)()\n'; cat "$REPO/daemon/$1.lua"; } >"$TMP/$1.combined.lua"; }
combine ingest
combine claim
AGENT_IDS=()
for (( i = 1; i <= AGENTS; i++ )); do AGENT_IDS+=("$(printf 'ag%03d' "$i")"); done
PORTS=("$("${TOOL[@]}" freeport)")
while :; do p=$("${TOOL[@]}" freeport); [[ $p != "${PORTS[0]}" ]] && { PORTS+=("$p"); break; }; done

write_config() {  # PORT FILE
    {
    cat <<EOF
# written by bench/assign.sh
log:
  level: $LOG_LEVEL
http:
  listen: "127.0.0.1:$1"
  max_body: 1MiB
  idle_timeout: 120s
  max_connections: 4096
  drain_timeout: 10s
redis:
  url: "unix://$SOCK"
  prefix: "$PREFIX"
  command_timeout: 5s
  dedup_ttl: 7d
  queue_maxlen: 100000000     # never trimmed during a run
  events_maxlen: 100000000    # every event of a phase is read back
connectors:
  api:
    timestamp_window: 1d      # requests are signed before the run
    adapters:
      - {name: pull, secret_file: pull.secret, require_timestamp: true}
      - {name: push, secret_file: push.secret, require_timestamp: true}
api:
  tokens:
    - {name: bench, token_file: api.token}
routing:
  default_queue: $PULLQ
  queues:
    $PULLQ: {mode: pull}
    $PUSHQ: {mode: push, strategy: least_busy, offer_timeout: 0}
  rules:
    - {name: push, adapter: ["api:push"], queue: $PUSHQ}
agents:
  heartbeat_timeout: 10m
  list:
EOF
    local a
    for a in "${AGENT_IDS[@]}"; do
        printf '    - {id: %s, capacity: {sms: %d, chat: %d, "*": %d}, queues: [%s, %s]}\n' \
            "$a" "$CAPACITY" "$CAPACITY" "$CAPACITY" "$PULLQ" "$PUSHQ"
    done
    } >"$2"
}
for i in 0 1; do write_config "${PORTS[$i]}" "$TMP/omnirouted-$i.yaml"; done
"$TMP/omnirouted" --check-config -c "$TMP/omnirouted-0.yaml" >"$TMP/check.txt" 2>&1 \
    || { cat "$TMP/check.txt" >&2; die "the daemon refused the generated config"; }
VERSION=$("$TMP/omnirouted" --version 2>&1 | awk 'NR == 1' || true)
BIN_ID="$(sha1sum "$TMP/omnirouted" | cut -c1-12), built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC')"

say "== starting redis-server (unix socket $SOCK)"
redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 \
    --save '' --appendonly no --dir "$TMP" --logfile "$TMP/redis.log" \
    --daemonize no >/dev/null 2>&1 &
redis_pid=$!
for (( i = 0; ; i++ )); do
    [[ $(rcli ping 2>/dev/null || true) == PONG ]] && break
    kill -0 "$redis_pid" 2>/dev/null || die "redis-server exited"
    (( i < 200 )) || die "redis-server not answering after 10 s"
    sleep 0.05
done

say "== generating 2 x $N signed webhooks (every one a new conversation)"
for a in pull push; do
    "${TOOL[@]}" gen --secret-file "$TMP/$a.secret" --host "127.0.0.1:${PORTS[0]}" \
        --adapter "$a" --count "$N" --threads "$THREADS" --out "$TMP/$a" --new 1 \
        | tee "$OUT_DIR/requests-$a.txt" >&2
done

FAIL=()
fail() { FAIL+=("$*"); say "assign.sh: CHECK FAILED: $*"; }
LOGNO=0

wait_ready() {  # port pid
    local i code=""
    for (( i = 0; i < 300; i++ )); do
        kill -0 "$2" 2>/dev/null || die "daemon on port $1 exited: $(tail -n 5 "$TMP"/daemon-*.log)"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1/readyz" || true)
        [[ $code == 200 ]] && return 0
        sleep 0.05
    done
    die "daemon on port $1 not ready after 15 s (last /readyz status: ${code:-none})"
}
# start_daemons D: a flushed Redis, then D fresh daemons (they publish the
# queues and the config's agents when they connect).
start_daemons() {
    local d=$1 i
    rcli FLUSHALL >/dev/null
    DPIDS=()
    for (( i = 0; i < d; i++ )); do
        LOGNO=$(( LOGNO + 1 ))
        "$TMP/omnirouted" -c "$TMP/omnirouted-$i.yaml" >"$TMP/daemon-$LOGNO-$i.log" 2>&1 &
        DPIDS+=($!)
    done
    for (( i = 0; i < d; i++ )); do wait_ready "${PORTS[$i]}" "${DPIDS[$i]}"; done
    # Both daemons published (config agents, queue settings).
    for (( i = 0; i < 100; i++ )); do
        [[ $(rcli SCARD "${PREFIX}agents") == "$AGENTS" ]] && break
        sleep 0.05
    done
    [[ $(rcli SCARD "${PREFIX}agents") == "$AGENTS" ]] || die "the daemons did not publish $AGENTS agents"
}
stop_daemons() {  # -> fails the run unless every daemon exits 0 on SIGTERM
    local p
    for p in "${DPIDS[@]}"; do
        stop_pid "$p"
        [[ $STOP_RC == 0 ]] || fail "$PH_NAME: daemon exit status $STOP_RC after SIGTERM (want 0)"
    done
    DPIDS=()
}
ports_csv() { local IFS=,; echo "${PORTS[*]:0:$1}"; }

# ingest SET D -> ING_* : all N webhooks of SET (pull|push), split over D
# daemons (one wrk each, THREADS/D threads, CONNECTIONS/D connections, all
# starting together); wrk is stopped once every webhook is answered.
ingest() {
    local set=$1 d=$2 i p line ok=0 non200=0 sent=0 answered=0 el=0 p50=0 p99=0 mx=0 err=0 wraps=0
    local tpd=$(( THREADS / d )) cpd=$(( CONNECTIONS / d ))
    rm -f "$TMP/$set".ready.* "$TMP/$set".done.*
    WRK_PIDS=()
    cpu_begin
    for (( i = 0; i < d; i++ )); do
        OMR_BENCH_ONCE=1 OMR_BENCH_BASE=$(( i * tpd )) OMR_BENCH_TOTAL=$THREADS \
            wrk -t"$tpd" -c"$cpd" -d600s --timeout 10s -s "$HERE/inbound.lua" \
            "http://127.0.0.1:${PORTS[$i]}/" -- "$TMP/$set" "$THREADS" 3600 \
            >"$TMP/wrk-$set-$i.txt" 2>&1 &
        WRK_PIDS+=($!)
    done
    for (( i = 0; i < 30000; i++ )); do   # up to 10 minutes
        local all=1
        for (( p = 0; p < THREADS; p++ )); do [[ -f $TMP/$set.done.$p ]] || { all=0; break; }; done
        (( all )) && break
        for p in "${WRK_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || die "wrk exited early: $(cat "$TMP"/wrk-"$set"-*.txt)"; done
        sleep 0.02
    done
    local lg=0
    for p in "${WRK_PIDS[@]}"; do lg=$(( lg + $(ticks "$p") )); done
    cpu_end "$lg"
    for p in "${WRK_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${WRK_PIDS[@]}"; do wait "$p" || true; done
    WRK_PIDS=()
    for (( i = 0; i < d; i++ )); do
        cat "$TMP/wrk-$set-$i.txt" >>"$OUT_DIR/$PH_NAME.wrk.txt"
        line=$(grep '^BENCH ' "$TMP/wrk-$set-$i.txt") || die "no BENCH line from wrk: $(cat "$TMP/wrk-$set-$i.txt")"
        ok=$(( ok + $(kv "$line" ok) )); non200=$(( non200 + $(kv "$line" non200) ))
        sent=$(( sent + $(kv "$line" sent) )); answered=$(( answered + $(kv "$line" answered) ))
        wraps=$(( wraps + $(kv "$line" wraps) ))
        err=$(( err + $(kv "$line" connect_err) + $(kv "$line" read_err) + $(kv "$line" write_err) + $(kv "$line" timeouts) ))
        (( $(kv "$line" elapsed_us) > el )) && el=$(kv "$line" elapsed_us)
        # with 2 wrk processes: the higher of their percentiles
        (( $(kv "$line" p50_us) > p50 )) && p50=$(kv "$line" p50_us)
        (( $(kv "$line" p99_us) > p99 )) && p99=$(kv "$line" p99_us)
        (( $(kv "$line" max_us) > mx )) && mx=$(kv "$line" max_us)
    done
    ING_OK=$ok; ING_RATE=$(awk -v n="$ok" -v us="$el" 'BEGIN { printf "%.0f", (us > 0) ? n / (us / 1e6) : 0 }')
    ING_P50=$(ms "$p50"); ING_P99=$(ms "$p99"); ING_MAX=$(ms "$mx")
    ING_CPU="redis $CPU_R%, daemons $CPU_D%, wrk $CPU_L%, machine $CPU_M% (irq $CPU_I%, other $CPU_O%)"
    (( ok == N && sent == N && answered == N && non200 == 0 && err == 0 && wraps == 0 )) \
        || fail "$PH_NAME ingest: $ok x 200 of $N (sent $sent, answered $answered, non-200 $non200, socket errors $err, wraps $wraps)"
}

# claims D ACCEPT -> CL_*: CLAIM_CLIENTS clients claim (and accept) from the pull backlog
claims() {
    local d=$1 acc=$2 line lat
    rcli CONFIG RESETSTAT >/dev/null
    rcli SLOWLOG RESET >/dev/null
    ( sleep 1; timeout 5 redis-cli -s "$SOCK" --latency --raw -i 3 ) >"$TMP/latency.txt" 2>/dev/null &
    lat=$!
    cpu_begin
    line=$(lg "${ATOOL[@]}" claims --ports "$(ports_csv "$d")" --token-file "$TMP/api.token" \
        --clients "$CLAIM_CLIENTS" --seconds "$CLAIM_SECONDS" --accept "$acc" \
        --ids-out "$TMP/claims-$PH_NAME.txt" "${AGENT_IDS[@]}" | tee "$OUT_DIR/$PH_NAME.claims.txt" | grep '^CLAIMS ')
    cpu_end
    wait "$lat" || true
    CL_LAT=$(awk '{ printf "ping min/avg/max %s/%s/%s ms", $1, $3, $2 }' "$TMP/latency.txt" 2>/dev/null || echo "ping: n/a")
    redis_stats "$OUT_DIR/$PH_NAME.commandstats.txt"
    rcli SLOWLOG GET 5 >"$OUT_DIR/$PH_NAME.slowlog.txt" || true
    CL_OK=$(kv "$line" ok); CL_RATE=$(kv "$line" rate); CL_Q=$(kv "$line" quarter_rates)
    CL_P50=$(ms "$(kv "$line" p50_us)"); CL_P99=$(ms "$(kv "$line" p99_us)"); CL_MAX=$(ms "$(kv "$line" max_us)")
    CL_AP50=$(ms "$(kv "$line" accept_p50_us)"); CL_AP99=$(ms "$(kv "$line" accept_p99_us)")
    CL_CPU="redis $CPU_R%, daemons $CPU_D%, clients $CPU_L%, machine $CPU_M% (irq $CPU_I%, other $CPU_O%)"
    CL_REDIS="$RS_UPC us/script call, redis busy $(awk -v u="$RS_USEC" -v e="$(kv "$line" elapsed_us)" 'BEGIN { printf "%.0f", (e > 0) ? u / e * 100 : 0 }')% in scripts; top: $RS_TOP"
    (( $(kv "$line" errors) == 0 && $(kv "$line" dup_ids) == 0 )) \
        || fail "$PH_NAME claims: $(kv "$line" errors) errors, $(kv "$line" dup_ids) duplicate conversations ($(grep '^CLAIMS_CODES' "$OUT_DIR/$PH_NAME.claims.txt" || true))"
}

analyze() {  # QUEUE VIA [--claims FILE] -> AN (ASSIGN line)
    local out
    out=$("${ATOOL[@]}" analyze --sock "$SOCK" --prefix "$PREFIX" --queue "$1" --via "$2" --n "$N" \
        --capacity "$CAPACITY" --json "$OUT_DIR/$PH_NAME.assign.json" "${@:3}" "${AGENT_IDS[@]}")
    printf '%s\n' "$out" >"$OUT_DIR/$PH_NAME.assign.txt"
    AN=$(grep '^ASSIGN ' <<<"$out")
    while IFS= read -r l; do
        [[ -n $l ]] && fail "$PH_NAME: ${l#ASSIGN_FAIL }"
    done < <(grep '^ASSIGN_FAIL ' <<<"$out" || true)
}

check_pull_ingest() {  # one band-stream entry and one logged message per new conversation
    local x
    x=$(rcli XLEN "${PREFIX}queue:$PULLQ:normal")
    (( x == N )) || fail "$PH_NAME: XLEN ${PREFIX}queue:$PULLQ:normal = $x, want $N (one per new conversation)"
}

declare -A R   # results: R[<phase>.<daemons>.<what>]

# ---------------------------------------------------------------- phases
for D in $DAEMONS; do
    if has_phase pull || has_phase accept; then
        for mode in pull accept; do
            has_phase "$mode" || continue
            PH_NAME="$mode-d$D"
            say "== $PH_NAME: $N new conversations into pull queue $PULLQ, $D daemon(s)"
            start_daemons "$D"
            rcli CONFIG RESETSTAT >/dev/null
            ingest pull "$D"
            redis_stats "$OUT_DIR/$PH_NAME.ingest.commandstats.txt"
            R[$mode.$D.ing]=$ING_RATE; R[$mode.$D.ing_p50]=$ING_P50; R[$mode.$D.ing_p99]=$ING_P99
            R[$mode.$D.ing_cpu]=$ING_CPU; R[$mode.$D.ing_upc]=$RS_UPC
            check_pull_ingest
            acc=0; [[ $mode == accept ]] && acc=1
            say "== $PH_NAME: $CLAIM_CLIENTS clients claim$( ((acc)) && echo ' + accept') for up to ${CLAIM_SECONDS}s"
            claims "$D" "$acc"
            R[$mode.$D.cl]=$CL_RATE; R[$mode.$D.cl_n]=$CL_OK; R[$mode.$D.cl_p50]=$CL_P50
            R[$mode.$D.cl_p99]=$CL_P99; R[$mode.$D.cl_max]=$CL_MAX; R[$mode.$D.cl_q]=$CL_Q
            R[$mode.$D.cl_cpu]=$CL_CPU; R[$mode.$D.cl_redis]=$CL_REDIS; R[$mode.$D.cl_lat]=$CL_LAT
            R[$mode.$D.acc_p50]=$CL_AP50; R[$mode.$D.acc_p99]=$CL_AP99
            analyze "$PULLQ" pull --claims "$TMP/claims-$PH_NAME.txt"
            R[$mode.$D.check]="assigned $(kv "$AN" assigned) = claims $CL_OK, twice $(kv "$AN" twice), over capacity $(kv "$AN" over_capacity), still waiting $(kv "$AN" waiting)"
            stop_daemons
        done
    fi

    if has_phase push; then
        PH_NAME="push-d$D"
        say "== $PH_NAME: $AGENTS agents online, $N new conversations into push queue $PUSHQ, $D daemon(s)"
        start_daemons "$D"
        out=$("${ATOOL[@]}" presence --ports "$(ports_csv "$D")" --token-file "$TMP/api.token" \
            --status online "${AGENT_IDS[@]}") || die "presence failed: $out"
        "${ATOOL[@]}" wait --sock "$SOCK" --prefix "$PREFIX" --queue "$PUSHQ" --n 0 --settle 0.3 >/dev/null
        rcli CONFIG RESETSTAT >/dev/null
        rcli SLOWLOG RESET >/dev/null
        ( sleep 0.5; timeout 4 redis-cli -s "$SOCK" --latency --raw -i 1 ) >"$TMP/latency.txt" 2>/dev/null &
        lat=$!
        ingest push "$D"
        wait "$lat" || true
        w=$("${ATOOL[@]}" wait --sock "$SOCK" --prefix "$PREFIX" --queue "$PUSHQ" --n "$N" "${AGENT_IDS[@]}")
        redis_stats "$OUT_DIR/$PH_NAME.commandstats.txt"
        rcli SLOWLOG GET 5 >"$OUT_DIR/$PH_NAME.slowlog.txt" || true
        analyze "$PUSHQ" push
        R[push.$D.ing]=$ING_RATE; R[push.$D.ing_p50]=$ING_P50; R[push.$D.ing_p99]=$ING_P99
        R[push.$D.ing_cpu]=$ING_CPU; R[push.$D.upc]=$RS_UPC; R[push.$D.top]=$RS_TOP
        R[push.$D.calls]=$RS_CALLS
        R[push.$D.lat]="$(kv "$AN" lat_p50_ms) / $(kv "$AN" lat_p99_ms) / $(kv "$AN" lat_max_ms)"
        R[push.$D.rate]=$(kv "$AN" open_to_last_rate)
        R[push.$D.ping]=$(awk '{ printf "ping min/avg/max %s/%s/%s ms", $1, $3, $2 }' "$TMP/latency.txt" 2>/dev/null || echo "ping: n/a")
        R[push.$D.check]="assigned $(kv "$AN" assigned) of $(kv "$AN" opened) (expected $(kv "$AN" expected)), twice $(kv "$AN" twice), over capacity $(kv "$AN" over_capacity), per agent $(kv "$AN" per_agent_min)-$(kv "$AN" per_agent_max), lag after ingest $(kv "$w" seconds) s"
        stop_daemons
    fi

    if has_phase drain; then
        PH_NAME="drain-d$D"
        say "== $PH_NAME: $N new conversations into push queue $PUSHQ with every agent offline, then all online, $D daemon(s)"
        start_daemons "$D"
        ingest push "$D"
        R[drain.$D.ing]=$ING_RATE; R[drain.$D.ing_cpu]=$ING_CPU
        x=$(rcli ZCARD "${PREFIX}queue:$PUSHQ:waiting")
        (( x == N )) || fail "$PH_NAME: $x conversations waiting before the agents came online, want $N"
        rcli CONFIG RESETSTAT >/dev/null
        cpu_begin
        out=$(lg "${ATOOL[@]}" presence --ports "$(ports_csv "$D")" --token-file "$TMP/api.token" \
            --status online "${AGENT_IDS[@]}") || die "presence failed: $out"
        w=$(lg "${ATOOL[@]}" wait --sock "$SOCK" --prefix "$PREFIX" --queue "$PUSHQ" --n "$N" "${AGENT_IDS[@]}")
        cpu_end
        redis_stats "$OUT_DIR/$PH_NAME.commandstats.txt"
        analyze "$PUSHQ" push
        first=$(kv "$out" first_ms)
        R[drain.$D.rate]=$(awk -v n="$(kv "$AN" assigned)" -v a="$first" -v b="$(kv "$AN" last_assigned_ms)" 'BEGIN { printf "%.0f", (b > a) ? n / ((b - a) / 1000) : 0 }')
        R[drain.$D.span]=$(kv "$AN" assign_span_ms)
        R[drain.$D.cpu]="redis $CPU_R%, daemons $CPU_D%, helpers $CPU_L%, machine $CPU_M% (irq $CPU_I%, other $CPU_O%)"
        R[drain.$D.upc]=$RS_UPC; R[drain.$D.calls]=$RS_CALLS; R[drain.$D.top]=$RS_TOP
        R[drain.$D.check]="assigned $(kv "$AN" assigned) of $(kv "$AN" opened) (expected $(kv "$AN" expected)), twice $(kv "$AN" twice), over capacity $(kv "$AN" over_capacity), per agent $(kv "$AN" per_agent_min)-$(kv "$AN" per_agent_max)"
        stop_daemons
    fi
done

# ---------------------------------------------------------------- ceilings
if has_phase ceiling; then
    PH_NAME=ceiling
    start_daemons 1
    say "== ceiling: wrk GET /healthz, ${CEIL_SECS}s"
    cpu_begin
    lg wrk -t"$THREADS" -c"$CONNECTIONS" -d"${CEIL_SECS}s" --timeout 10s -s "$HERE/healthz.lua" \
        "http://127.0.0.1:${PORTS[0]}/healthz" >"$OUT_DIR/ceiling.healthz.txt" 2>&1 || die "wrk (healthz) failed"
    cpu_end
    line=$(grep '^BENCH ' "$OUT_DIR/ceiling.healthz.txt")
    R[ceil.healthz]=$(awk -v n="$(kv "$line" requests)" -v us="$(kv "$line" elapsed_us)" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
    R[ceil.healthz_cpu]="daemon $CPU_D%, wrk $CPU_L%, machine $CPU_M% (irq $CPU_I%, other $CPU_O%)"

    # The smoke message: the message JSON exactly as the daemon stores it.
    read -r st resp < <("${TOOL[@]}" post-raw 127.0.0.1 "${PORTS[0]}" "$TMP/pull.warmup")
    [[ $st == 200 ]] || die "smoke webhook answered $st: $resp"
    MSG_JSON=$(rcli --raw XREVRANGE "${PREFIX}queue:$PULLQ:normal" + - COUNT 1 \
        | awk 'prev == "message" { print; exit } { prev = $0 }')
    MSG_ARG=$(sed 's/^{"conversation_id":"[^"]*",/{/' <<<"$MSG_JSON")
    CID=$(sed 's/^{"conversation_id":"\([^"]*\)".*/\1/' <<<"$MSG_JSON")
    MSG_LANG=$(rcli --raw HGET "${PREFIX}conv:{$CID}" language)
    MSG_CH=$(rcli --raw HGET "${PREFIX}conv:{$CID}" channel)
    ISHA=$(sha1sum <"$TMP/ingest.combined.lua" | cut -d' ' -f1)
    CSHA=$(sha1sum <"$TMP/claim.combined.lua" | cut -d' ' -f1)
    # The daemons loaded their embedded scripts into this Redis (SCRIPT
    # LOAD survives FLUSHALL): the same SHA means the same text as the files.
    SCRIPT_MATCH=$(rcli SCRIPT EXISTS "$ISHA" | awk 'NR == 1')
    [[ $SCRIPT_MATCH == 1 ]] || say "assign.sh: warning: the daemon's ingest script differs from daemon/routing.lua + ingest.lua (stale build?)"
    CLAIM_MATCH=n/a
    if has_phase pull || has_phase accept; then
        CLAIM_MATCH=$(rcli SCRIPT EXISTS "$CSHA" | awk 'NR == 1')
        [[ $CLAIM_MATCH == 1 ]] || say "assign.sh: warning: the daemon's claim script differs from daemon/routing.lua + claim.lua (stale build?)"
    fi
    [[ $(rcli -x SCRIPT LOAD <"$TMP/ingest.combined.lua") == "$ISHA" ]] || die "SCRIPT LOAD ingest failed"
    [[ $(rcli -x SCRIPT LOAD <"$TMP/claim.combined.lua") == "$CSHA" ]] || die "SCRIPT LOAD claim failed"
    rcli DEL "${PREFIX}queue:$PULLQ:normal" >/dev/null
    rcli XGROUP CREATE "${PREFIX}queue:$PULLQ:normal" agents 0 MKSTREAM >/dev/null

    # New conversations, as daemon/ingest.c calls the script: every
    # __rand_int__ is drawn from 0..999999, so thread, dedup, conversation
    # and customer keys are all new (one customer each, like the webhooks).
    Rr=__rand_int__
    NOW_MS=$(( $(date +%s) * 1000 ))
    ICMD=(EVALSHA "$ISHA" 3 "${PREFIX}dedup:api:pull:m-$Rr$Rr$Rr" "${PREFIX}thread:$MSG_CH:$Rr$Rr$Rr"
        "${PREFIX}events" "$PREFIX" "01$Rr$Rr" "01$Rr$Rr" "$MSG_ARG" "$MSG_CH" api:pull "c-$Rr$Rr"
        "Ana Souza" +447911000001 "$PULLQ" normal "" "$NOW_MS" 604800 100000000 100000000
        "$MSG_LANG" "[]" 0 "$PULLQ" normal "" "[]" "" "" 0)
    say "== ceiling: redis-benchmark EVALSHA ingest.lua (new conversations), $N calls"
    rcli CONFIG RESETSTAT >/dev/null
    cpu_begin
    lg redis-benchmark -s "$SOCK" -c "$CONNECTIONS" --threads "$THREADS" -n "$N" -r 1000000 --csv "${ICMD[@]}" \
        >"$OUT_DIR/ceiling.ingest.csv" 2>&1 || die "redis-benchmark (ingest) failed"
    cpu_end
    R[ceil.ingest]=$(tail -n1 "$OUT_DIR/ceiling.ingest.csv" | awk -F, '{ gsub(/"/, ""); printf "%.0f", $(NF-6) }')
    R[ceil.ingest_cpu]="redis $CPU_R%, redis-benchmark $CPU_L%, machine $CPU_M% (irq $CPU_I%, other $CPU_O%)"
    redis_stats "$OUT_DIR/ceiling.ingest.commandstats.txt"
    R[ceil.ingest_upc]=$RS_UPC
    (( $(awk -F'[=,]' '/^cmdstat_evalsha:/ { for (i = 1; i < NF; i++) if ($i == "failed_calls") print $(i + 1) }' "$OUT_DIR/ceiling.ingest.commandstats.txt") == 0 )) \
        || fail "ceiling: failed EVALSHA ingest calls"
    BACKLOG=$(rcli XLEN "${PREFIX}queue:$PULLQ:normal")
    (( BACKLOG >= N * 999 / 1000 )) || fail "ceiling: the ingest calls left $BACKLOG entries in the band stream, want ~$N"

    # Claims from that backlog by AGENTS runtime agents whose ids
    # redis-benchmark can draw (c000000000000 ..).
    CIDS=()
    for (( i = 0; i < AGENTS; i++ )); do CIDS+=("$(printf 'c%012d' "$i")"); done
    "${ATOOL[@]}" put-agents --port "${PORTS[0]}" --token-file "$TMP/api.token" --queue "$PULLQ" \
        --capacity "$CAPACITY" "${CIDS[@]}" >/dev/null || die "PUT runtime agents failed"
    # As many claims as the HTTP claim-only phase made with 1 daemon, if it
    # ran (the cost of a claim grows with the claims pending before it, so
    # only equal counts compare), else 90% of the backlog. Leave room:
    # redis-benchmark draws the agent at random, and an agent at capacity
    # would claim nothing.
    CN=${R[pull.1.cl_n]:-$(( BACKLOG * 9 / 10 ))}
    (( CN <= BACKLOG * 9 / 10 )) || CN=$(( BACKLOG * 9 / 10 ))
    (( CN <= AGENTS * CAPACITY * 8 / 10 )) || CN=$(( AGENTS * CAPACITY * 8 / 10 ))
    say "== ceiling: redis-benchmark EVALSHA claim.lua, $CN claims from a backlog of $BACKLOG"
    rcli CONFIG RESETSTAT >/dev/null
    cpu_begin
    lg redis-benchmark -s "$SOCK" -c "$CONNECTIONS" --threads "$THREADS" -n "$CN" -r "$AGENTS" --csv \
        EVALSHA "$CSHA" 0 "$PREFIX" "c$Rr" "$NOW_MS" 100000000 >"$OUT_DIR/ceiling.claim.csv" 2>&1 \
        || die "redis-benchmark (claim) failed"
    cpu_end
    R[ceil.claim]=$(tail -n1 "$OUT_DIR/ceiling.claim.csv" | awk -F, '{ gsub(/"/, ""); printf "%.0f", $(NF-6) }')
    R[ceil.claim_p99]=$(tail -n1 "$OUT_DIR/ceiling.claim.csv" | awk -F, '{ gsub(/"/, ""); printf "%.2f", $(NF-1) }')
    R[ceil.claim_cpu]="redis $CPU_R%, redis-benchmark $CPU_L%, machine $CPU_M% (irq $CPU_I%, other $CPU_O%)"
    redis_stats "$OUT_DIR/ceiling.claim.commandstats.txt"
    R[ceil.claim_upc]=$RS_UPC; R[ceil.claim_top]=$RS_TOP
    claimed=$(rcli XINFO GROUPS "${PREFIX}queue:$PULLQ:normal" | awk 'prev == "pending" { print; exit } { prev = $0 }')
    (( claimed == CN )) || fail "ceiling: $CN claim calls but $claimed entries pending (claimed)"
    stop_daemons
fi

# ---------------------------------------------------------------- summary
BG_AFTER=$(bg_load)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
REDIS_V=$(redis-server --version | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^v=/) print substr($i, 3) }')
g() { printf '%s' "${R[$1]:-n/a}"; }
{
cat <<EOF

== omnirouted assignment benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')
machine : nproc=$(nproc), CPU: $CPU_MODEL, ${MEM_GB} GB RAM, Linux $(uname -r)
software: $VERSION (sha1 $BIN_ID), redis $REDIS_V$(has_phase ceiling && printf '\n          daemon runs the scripts of the files: ingest %s, claim %s' "$( [[ $SCRIPT_MATCH == 1 ]] && echo yes || echo "NO (stale build?)")" "$( [[ $CLAIM_MATCH == 1 ]] && echo yes || { [[ $CLAIM_MATCH == n/a ]] && echo n/a || echo "NO (stale build?)"; })")
load    : loadavg before $LOAD_BEFORE, after $LOAD_AFTER; background busy 1 s before/after: $BG_BEFORE% / $BG_AFTER% (100% = one core)
settings: N=$N new conversations per phase (one customer each, sms/chat 5:3), $AGENTS agents x capacity $CAPACITY
          per channel, push queue least_busy offer_timeout 0, wrk $CONNECTIONS connections / $THREADS threads
          split over the daemons, $CLAIM_CLIENTS claim clients (python, keep-alive) for <= ${CLAIM_SECONDS}s;
          everything shares the same $(nproc) cores, redis over a unix socket, no persistence
EOF
for D in $DAEMONS; do
    echo
    echo "-- $D daemon(s)"
    if has_phase pull || has_phase accept; then
        for m in pull accept; do
            has_phase "$m" || continue
            printf '%-34s %7s msg/s    p50 %s ms  p99 %s ms   %s (%s us/script call)\n' \
                "ingest, pull queue ($m phase)" "$(g $m.$D.ing)" "$(g $m.$D.ing_p50)" "$(g $m.$D.ing_p99)" "$(g $m.$D.ing_cpu)" "$(g $m.$D.ing_upc)"
        done
    fi
    if has_phase push; then
        printf '%-34s %7s msg/s    p50 %s ms  p99 %s ms   %s\n' "ingest, push queue, agents online" \
            "$(g push.$D.ing)" "$(g push.$D.ing_p50)" "$(g push.$D.ing_p99)" "$(g push.$D.ing_cpu)"
        printf '%-34s %7s conv/s   opened -> assigned p50 / p99 / max: %s ms\n' "  assigned while ingesting" "$(g push.$D.rate)" "$(g push.$D.lat)"
        printf '%-34s %s us/script call over %s calls; top: %s; %s\n' "  redis" "$(g push.$D.upc)" "$(g push.$D.calls)" "$(g push.$D.top)" "$(g push.$D.ping)"
        printf '%-34s %s\n' "  check" "$(g push.$D.check)"
    fi
    if has_phase drain; then
        printf '%-34s %7s msg/s    %s\n' "ingest, push queue, agents offline" "$(g drain.$D.ing)" "$(g drain.$D.ing_cpu)"
        printf '%-34s %7s conv/s   (%s conversations in %s ms after the first presence call; %s)\n' "  backlog drain (dispatch only)" "$(g drain.$D.rate)" "$N" "$(g drain.$D.span)" "$(g drain.$D.cpu)"
        printf '%-34s %s us/script call over %s calls; top: %s\n' "  redis" "$(g drain.$D.upc)" "$(g drain.$D.calls)" "$(g drain.$D.top)"
        printf '%-34s %s\n' "  check" "$(g drain.$D.check)"
    fi
    for m in pull accept; do
        has_phase "$m" || continue
        label="claims (claim only)"; [[ $m == accept ]] && label="claims (claim + accept)"
        printf '%-34s %7s claims/s p50 %s ms  p99 %s ms  max %s ms  (%s claims; per quarter of the run: %s /s)\n' \
            "$label" "$(g $m.$D.cl)" "$(g $m.$D.cl_p50)" "$(g $m.$D.cl_p99)" "$(g $m.$D.cl_max)" "$(g $m.$D.cl_n)" "$(g $m.$D.cl_q)"
        [[ $m == accept ]] && printf '%-34s accept p50 %s ms, p99 %s ms\n' "" "$(g $m.$D.acc_p50)" "$(g $m.$D.acc_p99)"
        printf '%-34s %s; %s\n' "  cpu / redis" "$(g $m.$D.cl_cpu)" "$(g $m.$D.cl_lat)"
        printf '%-34s %s\n' "" "$(g $m.$D.cl_redis)"
        printf '%-34s %s\n' "  check" "$(g $m.$D.check)"
    done
done
if has_phase ceiling; then
    echo
    echo "-- ceilings (1 daemon, ${CEIL_SECS}s / $N calls)"
    printf '%-34s %7s req/s    %s\n' "GET /healthz (HTTP)" "$(g ceil.healthz)" "$(g ceil.healthz_cpu)"
    printf '%-34s %7s calls/s  %s, %s us/script call\n' "EVALSHA ingest.lua (new conv.)" "$(g ceil.ingest)" "$(g ceil.ingest_cpu)" "$(g ceil.ingest_upc)"
    printf '%-34s %7s calls/s  p99 %s ms, %s, %s us/script call; top: %s\n' "EVALSHA claim.lua (claim only)" "$(g ceil.claim)" "$(g ceil.claim_p99)" "$(g ceil.claim_cpu)" "$(g ceil.claim_upc)" "$(g ceil.claim_top)"
fi
echo
echo "ratios  :"
for D in $DAEMONS; do
    has_phase push && has_phase pull && echo "  $D daemon(s): ingest with push assignment / without (pull queue) = $(ratio "$(g push.$D.ing)" "$(g pull.$D.ing)")"
    has_phase ceiling && has_phase pull && echo "  $D daemon(s): ingest (pull) / redis ceiling ingest = $(ratio "$(g pull.$D.ing)" "$(g ceil.ingest)"),  ingest (pull) / healthz = $(ratio "$(g pull.$D.ing)" "$(g ceil.healthz)")"
    has_phase ceiling && has_phase pull && echo "  $D daemon(s): HTTP claims / redis ceiling claims = $(ratio "$(g pull.$D.cl)" "$(g ceil.claim)")"
    has_phase drain && has_phase push && echo "  $D daemon(s): backlog drain / assignment while ingesting = $(ratio "$(g drain.$D.rate)" "$(g push.$D.rate)")"
done
if [[ " $DAEMONS " == *" 1 "* && " $DAEMONS " == *" 2 "* ]]; then
    for k in pull.ing push.ing push.rate drain.rate pull.cl accept.cl; do
        a=${k%%.*}; b=${k#*.}
        has_phase "$a" || continue
        echo "  2 daemons / 1 daemon, $a $b = $(ratio "$(g $a.2.$b)" "$(g $a.1.$b)")"
    done
fi
if (( ${#FAIL[@]} )); then
    echo "result  : FAIL"
    for f in "${FAIL[@]}"; do echo "          - $f"; done
else
    echo "result  : OK (every conversation assigned exactly once, within capacity; loads match; no errors; daemons exit 0)"
fi
echo "other   : CPU of other processes during the measured windows: at most $MAX_OTHER% (100% = one core)"
if (( BG_BEFORE > 15 || BG_AFTER > 15 || ${#BUSY_PHASES[@]} )); then
    echo "warning : the machine was not idle (background ${BG_BEFORE}%/${BG_AFTER}%; phases with other load > 15%: ${BUSY_PHASES[*]:-none}):"
    echo "          those rates are not comparable with runs on an idle machine"
fi
echo "details : $OUT_DIR"
} | tee "$OUT_DIR/summary.txt"
(( ${#FAIL[@]} == 0 )) || exit 1
