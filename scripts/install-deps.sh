#!/usr/bin/env bash
# Installs the Debian (bookworm) packages omniroute builds, runs and tests
# with. Idempotent: asks apt only for what is missing. Needs root.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  libevent-dev libhiredis-dev libjansson-dev libyaml-dev libmicrohttpd-dev
  libssl-dev libsystemd-dev libglib2.0-dev libcurl4-openssl-dev libcld2-dev libpcre2-dev lua5.1 libesmtp-dev libgmime-3.0-dev libxml2-dev libwslay-dev g++
  # run (embedded mode) and test
  redis-server redis-tools libcmocka-dev curl openssl
  python3 python3-pytest python3-redis python3-requests python3-aiosmtpd python3-websockets dovecot-imapd
  chromium  # the chat widget's browser test (tests/browser: playwright-core drives /usr/bin/chromium)
  # lint, fuzz, bench
  clang libclang-rt-14-dev clang-format cppcheck wrk
)

missing=()
# Node runs the providers' official SDKs that sign the tests' webhooks;
# any node on PATH will do (Debian's if there is none).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
