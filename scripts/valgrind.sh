#!/usr/bin/env bash
# Runs the test suite's programs under valgrind memcheck:
#   bash scripts/valgrind.sh [BUILD_DIR]      (default: build-valgrind)
# A BUILD_DIR that is not set up yet is configured with gcc,
# -Dbuildtype=debugoptimized -Dbench=disabled -Dfuzz=enabled (the fuzz
# harnesses then replay their corpora as tests); an existing one is used as
# it is. Every test program runs under
#   valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
# so any memcheck error or definite leak fails its test. The long tests run
# their quick sweeps (ADASM_TEST_QUICK=1, test_ada --smoke); the slow suite
# (kernels_1e8) is skipped. Last line: "N passed, M failed".
#
# test_ada runs with --smoke (every path, few trials, small heads: 0.3 s
# native, about a minute under memcheck); its --quick sweep would take
# 10-20 minutes here. VALGRIND_SKIP_ADA=1 leaves it out.
#
# Build at a baseline ISA (never -march=native): valgrind 3.19 does not know
# AVX-512 and dies with SIGILL on it. The library's runtime dispatch asks
# cpuid, and valgrind's emulated CPU does not report AVX-512, so the AVX2
# kernels get picked; the AVX-512 kernels are not covered here.
set -uo pipefail
# a build directory given relative to the caller's directory
dir=$(realpath -m "${1:-$(dirname "$0")/../build-valgrind}")
cd "$(dirname "$0")/.." || exit 1

jobs=2 # the machines are shared: never more
start=$SECONDS
vg=(valgrind -q --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite)
# 10-50x slower than native (more on a busy machine): stretch every test's
# own timeout
meson_test=(meson test -C "$dir" --no-rebuild --timeout-multiplier 20
            --print-errorlogs)
total_ok=0
total_fail=0

die() {
  echo "valgrind.sh: $*" >&2
  echo "$total_ok passed, $((total_fail > 0 ? total_fail : 1)) failed"
  exit 1
}

command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"

if [[ ! -f $dir/meson-private/coredata.dat ]]; then
  CC=gcc CXX=g++ meson setup "$dir" -Dbuildtype=debugoptimized \
    -Dbench=disabled -Dfuzz=enabled >"$dir.setup.log" 2>&1 ||
    { cat "$dir.setup.log" >&2; die "meson setup failed (log: $dir.setup.log)"; }
fi
ninja -C "$dir" -j "$jobs" >"$dir.build.log" 2>&1 ||
  { tail -n 40 "$dir.build.log" >&2; die "build failed (log: $dir.build.log)"; }

export ADASM_TEST_QUICK=1

# tally LABEL RC SECONDS: adds the summary of one meson test run ("Ok: N",
# "Fail: N", "Timeout: N", ...; log in $dir/valgrind-LABEL.log) to the totals.
tally() {
  local label=$1 rc=$2 secs=$3 log="$dir/valgrind-$1.log" ok fail
  ok=$(awk '/^Ok:/ {print $2}' "$log")
  fail=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {s += $NF} END {print s + 0}' "$log")
  if [[ -z $ok ]]; then
    cat "$log" >&2
    die "$label: meson test printed no summary (log: $log)"
  fi
  [[ $rc -ne 0 && $fail -eq 0 ]] && fail=1 # meson failed without a count
  total_ok=$((total_ok + ok))
  total_fail=$((total_fail + fail))
  if [[ $fail -ne 0 ]]; then
    grep -E '^ *[0-9]+/[0-9]+ ' "$log" | grep -v ' OK ' | sort -u >&2
    echo "   (details: $log and $dir/meson-logs/valgrind-$label*.txt)" >&2
  fi
  echo "== $label: $ok passed, $fail failed ($secs s)"
}

# run LABEL [meson test arguments...]: one meson test invocation, tallied.
run() {
  local label=$1 t0=$SECONDS rc=0
  shift
  "${meson_test[@]}" --logbase "valgrind-$label" "$@" \
    >"$dir/valgrind-$label.log" 2>&1 || rc=$?
  tally "$label" "$rc" $((SECONDS - t0))
}

tests=$(meson test -C "$dir" --no-rebuild --list 2>/dev/null)
mapfile -t unit < <(sed -n 's/^[^:]*:unit \/ //p' <<<"$tests" | grep -vx ada)
[[ ${#unit[@]} -gt 0 ]] || die "no unit tests found in $dir"

# Unit tests: the program itself under valgrind (meson's --wrapper).
run unit --num-processes "$jobs" --wrapper "${vg[*]}" "${unit[@]}"
# test_ada: its own run, for the --smoke argument the others do not take
if [[ ${VALGRIND_SKIP_ADA:-0} != 1 ]] && grep -qx '[^:]*:unit / ada' <<<"$tests"; then
  run ada --wrapper "${vg[*]}" --test-args=--smoke ada
fi

# Tests that are bash scripts: valgrind must wrap the programs they start,
# not bash. test_tool.sh runs each tool invocation under $WRAP; the fuzz
# replay tests start their harness through $MESON_EXE_WRAPPER.
WRAP="${vg[*]}" run tool --num-processes "$jobs" --suite tool
MESON_EXE_WRAPPER="${vg[*]}" run fuzzing --num-processes "$jobs" --suite fuzzing

echo "valgrind.sh: done in $((SECONDS - start)) s"
echo "$total_ok passed, $total_fail failed"
[[ $total_fail -eq 0 ]]
