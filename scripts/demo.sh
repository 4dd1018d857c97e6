#!/usr/bin/env bash
# Build adasoftmax and run the command-line tool's demo. Works on a fresh
# Debian 12 machine: installs what is missing first (scripts/deps.sh).
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

if [[ ! -f build/build.ninja ]]; then
  meson setup build >/dev/null || { echo "demo.sh: meson setup failed" >&2; exit 1; }
fi
# build only the tool: the tests and benchmarks are not needed for the demo
if ! ninja -C build -j 2 examples/adasoftmax >/dev/null; then
  ninja -C build -j 1 examples/adasoftmax >&2 || true # show the errors
  echo "demo.sh: build failed" >&2
  exit 1
fi
exec build/examples/adasoftmax demo "$@"
