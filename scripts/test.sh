#!/usr/bin/env bash
# The README's second command, and what CI runs: install what is missing,
# check formatting and static analysis, build with -Werror and run every
# test (unit + integration against real redis-server), then the same suite
# under AddressSanitizer + UndefinedBehaviorSanitizer, then a short run of
# each fuzzer. Exits non-zero on the first failure.
#   FUZZ_SECONDS=N   seconds per fuzzer (default 20; 0 skips fuzzing)
#   SKIP_ASAN=1      skip the sanitizer pass (local iteration only)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
start=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "dependencies"
scripts/install-deps.sh

step "test helpers (npm ci: the providers' official SDKs sign test webhooks)"
npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error  # playwright-core (chat widget browser test)

step "format (clang-format --dry-run -Werror)"
mapfile -t sources < <(git ls-files -- '*.c' '*.h' 2>/dev/null || find daemon connectors include tests fuzz -name '*.[ch]')
clang-format --dry-run -Werror "${sources[@]}"

step "static analysis (cppcheck)"
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
  --inline-suppr --suppress=missingIncludeSystem -I include -I daemon -I connectors \
  daemon connectors tools

step "build with -Werror"
cmake -S . -B build-ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOMR_WERROR=ON >/dev/null
cmake --build build-ci -j"$jobs"
step "tests"
(cd build-ci && ctest --output-on-failure)

if [ "${SKIP_ASAN:-0}" != 1 ]; then
  step "build with ASan + UBSan"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DOMR_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  step "tests under ASan + UBSan"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp
  (cd build-asan && ctest --output-on-failure)
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
fi

fuzz_seconds=${FUZZ_SECONDS:-20}
if [ "$fuzz_seconds" != 0 ]; then
  step "fuzzers (${fuzz_seconds}s each)"
  cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DOMR_FUZZ=ON \
    -DOMR_TESTS=OFF >/dev/null
  cmake --build build-fuzz -j"$jobs"
  for f in fuzz/corpus/*/; do
    name=$(basename "$f")
    work=$(mktemp -d)
    # New inputs go to the scratch dir; the committed seeds stay as they are.
    build-fuzz/fuzz_"$name" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
      -artifact_prefix="$work/" "$work" "$f" 2>&1 | grep -E '^(Done|INFO: seed)' || true
    if ls "$work"/crash-* "$work"/leak-* "$work"/oom-* "$work"/timeout-* >/dev/null 2>&1; then
      echo "fuzz_$name found a failing input: $(ls "$work"/crash-* "$work"/leak-* "$work"/oom-* "$work"/timeout-* 2>/dev/null)" >&2
      exit 1
    fi
    rm -rf "$work"
  done
fi
step "all checks passed"
