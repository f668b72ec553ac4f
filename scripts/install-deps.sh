#!/usr/bin/env bash
# Installs the Debian packages iqdb-persist builds and tests with, skipping
# those already present. Safe to run repeatedly; needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost-dev                      # Outcome, Interprocess (header-only)
  flatbuffers-compiler libflatbuffers-dev
  libisal-dev zlib1g-dev            # CRC-32 (ISA-L) and crc32_combine (zlib)
  libzstd-dev liblz4-dev libxxhash-dev
  libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  rsync                             # the replica test copies a live database with it
)
if [[ "${IQDB_WITH_CLANG:-0}" == 1 ]]; then
  packages+=(clang clang-tidy clang-format libclang-rt-14-dev gcovr)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
echo "install-deps: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"
