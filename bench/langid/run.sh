#!/usr/bin/env bash
# bench/langid/run.sh - compare libexttextcat and CLD2 (Debian packages) on
# short support messages (corpus.tsv).  Installs what it needs if missing,
# builds into $BUILD_DIR, runs every variant, prints the tables that
# README.md quotes.  Full per-variant reports and per-message answers are
# left in $BUILD_DIR (report.txt, pred-<variant>.tsv).
#
#   bench/langid/run.sh                  # ~15 s on 2 cores
#   MIN_SECONDS=2 THREADS=8 bench/langid/run.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BUILD_DIR=${BUILD_DIR:-$here/build}
MIN_SECONDS=${MIN_SECONDS:-1}   # timing: whole-corpus passes for at least this long
THREADS=${THREADS:-4}             # threads sharing one handle in the consistency check
CORPUS=${CORPUS:-$here/corpus.tsv}
TC_DIR=/usr/share/libexttextcat/

# ---------------------------------------------------------------- packages
pkgs=(libexttextcat-dev libexttextcat-data libcld2-dev gcc g++ pkg-config)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- build
mkdir -p "$BUILD_DIR"
CWARN=(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla -Werror)
g++ -std=c++11 -O2 -Wall -Wextra -Werror -c "$here/cld2_shim.cc" -o "$BUILD_DIR/cld2_shim.o"
gcc -std=c11 -O2 "${CWARN[@]}" $(pkg-config --cflags libexttextcat) -I"$here" \
    -c "$here/langid_bench.c" -o "$BUILD_DIR/langid_bench.o"
# C objects + the C++ shim: the link needs the C++ runtime (-lstdc++).
gcc "$BUILD_DIR/langid_bench.o" "$BUILD_DIR/cld2_shim.o" -o "$BUILD_DIR/langid_bench" \
    $(pkg-config --libs libexttextcat) -lcld2 -lstdc++ -pthread
# Same program with CLD2's larger table set: libcld2_full.so only holds
# tables and overrides the ones in libcld2.so when it comes first.
gcc "$BUILD_DIR/langid_bench.o" "$BUILD_DIR/cld2_shim.o" -o "$BUILD_DIR/langid_bench_full" \
    -Wl,--no-as-needed -lcld2_full -lcld2 -Wl,--as-needed \
    $(pkg-config --libs libexttextcat) -lstdc++ -pthread

# textcat restricted to the ten languages of the corpus (same model files)
grep -E '^(th|vi|tr|en|es|de|fr|pt|id|ms)\.lm[[:space:]]' "${TC_DIR}fpdb.conf" > "$BUILD_DIR/fpdb-10.conf"

# ---------------------------------------------------------------- run
variants=(textcat textcat-10 cld2 cld2-be cld2+fb cld2-full+fb)
run_variant() {
    local common=(--name "$1" --corpus "$CORPUS" --predictions "$BUILD_DIR/pred-$1.tsv"
                  --min-seconds "$MIN_SECONDS" --threads "$THREADS")
    case $1 in
    textcat)      "$BUILD_DIR/langid_bench" --engine textcat --conf "${TC_DIR}fpdb.conf" --prefix "$TC_DIR" "${common[@]}" ;;
    textcat-10)   "$BUILD_DIR/langid_bench" --engine textcat --conf "$BUILD_DIR/fpdb-10.conf" --prefix "$TC_DIR" "${common[@]}" ;;
    cld2)         "$BUILD_DIR/langid_bench" --engine cld2 "${common[@]}" ;;
    cld2-be)      "$BUILD_DIR/langid_bench" --engine cld2 --best-effort "${common[@]}" ;;
    cld2+fb)      "$BUILD_DIR/langid_bench" --engine cld2 --fallback-best-effort "${common[@]}" ;;
    cld2-full+fb) "$BUILD_DIR/langid_bench_full" --engine cld2 --fallback-best-effort "${common[@]}" ;;
    esac
}
report=$BUILD_DIR/report.txt
: > "$report"
for v in "${variants[@]}"; do
    run_variant "$v" >> "$report"
    echo >> "$report"
done

# ---------------------------------------------------------------- tables
echo "# packages"
dpkg-query -W -f='${Package} ${Version}\n' libexttextcat-2.0-0 libexttextcat-data libcld2-0 libcld2-dev
echo "corpus: $(grep -cv -e '^#' -e '^$' "$CORPUS") messages, $(cut -f1 "$CORPUS" | grep -Ec '^(th|vi|tr|en|es)$') in th/vi/tr/en/es"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo
echo "# variants"
grep -E '^(== |library:)' "$report" | paste - - | sed -e 's/^== \(.*\) ==\tlibrary: /\1: /'
echo
echo "# accuracy per language (% correct; unknown counts as wrong)"
awk -F'\t' -v order="${variants[*]}" '
    $1 == "LANG" { acc[$2 SUBSEP $3] = 100 * $4 / $5; n[$3] = $5; if (!($3 in seen)) { seen[$3] = 1; langs[++nl] = $3 } }
    END {
        nv = split(order, v, " ")
        printf "| lang | n |"; for (i = 1; i <= nv; i++) printf " %s |", v[i]; printf "\n"
        printf "|---|--:|"; for (i = 1; i <= nv; i++) printf "--:|"; printf "\n"
        for (l = 1; l <= nl; l++) {
            printf "| %s | %d |", langs[l], n[langs[l]]
            for (i = 1; i <= nv; i++) printf " %.1f |", acc[v[i] SUBSEP langs[l]]
            printf "\n"
        }
    }' "$report"
echo
echo "# summary (th/vi/tr/en/es only, 220 messages; hard = 60 of them)"
echo "| variant | accuracy | normal | hard | all 10 langs | unknown | unreliable | acc. when reliable | reliable coverage | µs/msg mean | µs p99 | init ms | RSS +kB | thread mismatches |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
awk -F'\t' '
    $1 == "HARDKIND" { next }
    /^ normal / { gsub("%", "", $0); split($0, f, " "); normal[cur] = f[3] }
    /^== / { cur = $0; sub(/^== /, "", cur); sub(/ ==$/, "", cur) }
    $1 == "SUMMARY" {
        printf "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %d | %d |\n",
            $2, $4, normal[$2], $6, $5, $7, $8, $9, $10, $11, $12, $13, $14, $15
    }' "$report"
echo
echo "# hard subset by kind (correct/total, th/vi/tr/en/es)"
awk -F'\t' -v order="${variants[*]}" '
    $1 == "HARDKIND" { c[$2 SUBSEP $3] = $4 "/" $5; if (!($3 in seen)) { seen[$3] = 1; k[++nk] = $3 } }
    END {
        nv = split(order, v, " ")
        printf "| kind |"; for (i = 1; i <= nv; i++) printf " %s |", v[i]; printf "\n"
        printf "|---|"; for (i = 1; i <= nv; i++) printf "--:|"; printf "\n"
        for (j = 1; j <= nk; j++) { printf "| %s |", k[j]; for (i = 1; i <= nv; i++) printf " %s |", c[v[i] SUBSEP k[j]]; printf "\n" }
    }' "$report"
echo
echo "# confidence: coverage / accuracy / wrong answers kept (th/vi/tr/en/es)"
awk -F'\t' -v order="${variants[*]}" '
    $1 == "SWEEP" { cell[$2 SUBSEP $3] = sprintf("%.1f / %.1f / %d", $4, $5, $6); if (!($3 in seen)) { seen[$3] = 1; r[++nr] = $3 } }
    END {
        nv = split(order, v, " ")
        printf "| accept when |"; for (i = 1; i <= nv; i++) printf " %s |", v[i]; printf "\n"
        printf "|---|"; for (i = 1; i <= nv; i++) printf "--:|"; printf "\n"
        for (j = 1; j <= nr; j++) { printf "| %s |", r[j]; for (i = 1; i <= nv; i++) printf " %s |", cell[v[i] SUBSEP r[j]]; printf "\n" }
    }' "$report"
echo
echo "# errors per variant (label->answer)"
awk '/^== /{cur=$2} /^errors/{sub(/^errors \(label->answer\):/, ""); print "- " cur ":" $0}' "$report"
echo
echo "# speed, start-up, threads"
awk '/^== /{cur=$2} /^(speed|start-up|threads):/{print "- " cur " " $0}' "$report"
echo
echo "full report: $report; answers per message: $BUILD_DIR/pred-<variant>.tsv"
