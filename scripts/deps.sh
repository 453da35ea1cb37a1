#!/bin/bash
# Installs what mesh needs to build and test on Debian 12 (run as root).
# apt-get update runs once, and only when something is missing.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libpcap-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler
  libsqlite3-dev libncurses-dev libyaml-dev libssl-dev openssl iptables
  python3 tshark tcpdump sqlite3
  python3-grpcio python3-protobuf protobuf-compiler
  curl nghttp2-client nghttp2-server nginx-light haproxy wrk tmux prometheus chromium
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
