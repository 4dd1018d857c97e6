#!/usr/bin/env bash
# Install what building (and, with the argument `test`, testing) adasoftmax
# needs on Debian 12, skipping anything already installed. Runs apt-get only
# when something is missing; needs root or sudo only then.
#   bash scripts/deps.sh        # meson, ninja, gcc, g++
#   bash scripts/deps.sh test   # + clang, aarch64 cross compilers, qemu, valgrind,
#                               # fasttext (test_hs checks a model it trains)
set -euo pipefail

# libc6-dev(-arm64-cross) are only Recommends of the compilers: name them,
# since recommends are not installed
pkgs=(meson ninja-build gcc g++ libc6-dev pkg-config)
if [[ "${1:-}" == test ]]; then
  # clang: sanitizer build (its ASan/UBSan runtime is libclang-rt-14-dev);
  # cross compilers + qemu-user: the aarch64 (NEON) build and its tests
  pkgs+=(clang libclang-rt-14-dev gcc-aarch64-linux-gnu g++-aarch64-linux-gnu
         libc6-dev-arm64-cross qemu-user valgrind fasttext)
elif [[ $# -gt 0 ]]; then
  echo "usage: $0 [test]" >&2
  exit 2
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps.sh: missing packages (${missing[*]}) and no apt-get: install them by hand" >&2
  exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# quiet on success, the whole apt log on failure
if ! "${sudo[@]}" apt-get update -q >"$log" 2>&1 ||
   ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
  cat "$log" >&2
  echo "deps.sh: apt-get failed installing: ${missing[*]}" >&2
  exit 1
fi
