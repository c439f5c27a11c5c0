#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the
# daemon in the foreground on the development config (embedded Redis,
# http://127.0.0.1:8080, adapter "demo"). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

secret=config/dev-demo.secret
if [ ! -s "$secret" ]; then
  (umask 077; head -c 32 /dev/urandom | base64 > "$secret")
  echo "run: created the development adapter secret in $secret"
fi
exec build/omnirouted -c config/dev.yaml "$@"
