#!/usr/bin/env bash
# Build and test adasoftmax in every configuration the project supports, on
# a fresh Debian 12 machine (installs what is missing: scripts/deps.sh test).
#   bash scripts/test.sh
# Builds (each in its own directory, reused when already set up):
#   build          default: gcc, runtime-dispatched SIMD
#   build-nosimd   -Dsimd=none: scalar kernels only
#   build-asan     clang, AddressSanitizer + UndefinedBehaviorSanitizer
#   build-aarch64  cross build for AArch64, tests under qemu (NEON kernels)
#   build-valgrind gcc, every test program under valgrind memcheck
#                  (scripts/valgrind.sh)
#   build-vendor   every ADASM_NO_SVD / ADASM_NO_HS combination, C99 and
#                  C++11, warning-free, its programs run (scripts/vendor.sh)
# The C++11 compile test is part of every suite. Stops at the first failing
# build or test; the last line is "N passed, M failed" over all builds.
# Warnings are errors (-Dwerror=true): the project is warning-free by rule
# (ADASM_WERROR=false bash scripts/test.sh relaxes that while iterating).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
jobs=2 # the machines are shared: never more
werror=${ADASM_WERROR:-true}
total_ok=0
total_fail=0

die() {
  echo "test.sh: FAILED: $*" >&2
  echo "$total_ok passed, $((total_fail > 0 ? total_fail : 1)) failed"
  exit 1
}

bash scripts/deps.sh test || die "installing dependencies"

# setup DIR [meson setup arguments...]: configure once; on a directory that
# is already set up only apply the -D options (meson configure); if that
# fails (stale or broken directory), wipe and set up again.
setup() {
  local dir=$1
  shift
  local opts=()
  local a
  for a in "$@"; do
    if [[ $a == -D* ]]; then opts+=("$a"); fi
  done
  if [[ -f $dir/meson-private/coredata.dat ]]; then
    meson configure "$dir" "${opts[@]}" >/dev/null 2>&1 && return 0
    echo "test.sh: $dir: reconfigure failed, wiping it" >&2
    meson setup --wipe "$dir" "$@" >"$dir.setup.log" 2>&1 && return 0
  else
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 && return 0
  fi
  cat "$dir.setup.log" >&2
  return 1
}

# run_build NAME DIR [meson setup arguments...]
run_build() {
  local name=$1 dir=$2
  shift 2
  local t0=$SECONDS
  echo "== $name ($dir)"
  setup "$dir" -Dwerror="$werror" "$@" || die "$name: meson setup"
  ninja -C "$dir" -j "$jobs" >"$dir.build.log" 2>&1 || {
    cat "$dir.build.log" >&2
    die "$name: build (log: $dir.build.log)"
  }
  local log="$dir.test.log" rc=0
  meson test -C "$dir" --num-processes "$jobs" --print-errorlogs >"$log" 2>&1 || rc=$?
  # meson prints a summary block: "Ok: N", "Fail: N", "Timeout: N", ...
  local ok fail
  ok=$(awk '/^Ok:/ {print $2}' "$log")
  fail=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {s += $NF} END {print s + 0}' "$log")
  if [[ -z $ok ]]; then
    cat "$log" >&2
    die "$name: meson test printed no summary (log: $log)"
  fi
  total_ok=$((total_ok + ok))
  total_fail=$((total_fail + fail))
  if [[ $rc -ne 0 || $fail -ne 0 ]]; then
    cat "$log" >&2
    die "$name: $fail test(s) failed (log: $log)"
  fi
  if [[ $ok -eq 0 ]]; then
    cat "$log" >&2
    die "$name: no test ran"
  fi
  echo "   $ok passed ($((SECONDS - t0)) s)"
}

# (1) default build, everything enabled that is found
run_build default build -Dfuzz=enabled

# (2) scalar kernels only
run_build nosimd build-nosimd -Dsimd=none -Dbench=disabled

# (3) sanitizers with clang (the fuzz corpora are replayed here too); UBSan must stop at the first finding, and both
# -fno-sanitize-recover and halt_on_error make sure it does
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
CC=clang CXX=clang++ run_build asan+ubsan build-asan \
  -Db_sanitize=address,undefined -Db_lundef=false -Dbench=disabled \
  -Dbuildtype=debugoptimized -Dfuzz=enabled \
  -Dc_args=-fno-sanitize-recover=all -Dcpp_args=-fno-sanitize-recover=all

# (4) AArch64 cross build, tests run under qemu-aarch64: NEON kernels
run_build aarch64 build-aarch64 --cross-file cross/aarch64-linux-gnu.ini \
  -Dbench=disabled

# run_script NAME DIR WHAT SCRIPT: a script that ends with "N passed, M
# failed" (its own log: DIR.log), counted like a build's tests
run_script() {
  local name=$1 dir=$2 what=$3 script=$4 t0=$SECONDS
  local log="$dir.log" ok fail
  echo "== $name ($dir)"
  bash "$script" "$dir" >"$log" 2>&1 || {
    cat "$log" >&2
    die "$name: $what (log: $log)"
  }
  read -r ok _ fail _ < <(tail -n 1 "$log")
  [[ $ok =~ ^[0-9]+$ && $ok -gt 0 && $fail == 0 ]] || {
    cat "$log" >&2
    die "$name: unexpected summary (log: $log)"
  }
  total_ok=$((total_ok + ok))
  echo "   $ok passed ($((SECONDS - t0)) s)"
}

# (5) valgrind memcheck over the test programs (gcc, baseline ISA: the AVX2
#     and scalar kernels; valgrind does not know AVX-512)
run_script valgrind build-valgrind "memcheck found errors or a test failed" \
  scripts/valgrind.sh

# (6) vendoring options: every ADASM_NO_SVD / ADASM_NO_HS combination
#     compiles warning-free (C99, C++11) and its programs pass
run_script vendoring build-vendor "a combination failed" scripts/vendor.sh

echo "test.sh: all builds passed in $((SECONDS - start)) s"
echo "$total_ok passed, $total_fail failed"
