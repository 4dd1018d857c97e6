#!/usr/bin/env bash
# Bounded libFuzzer campaign over every harness in fuzz/:
#   bash scripts/fuzz.sh [SECONDS_PER_HARNESS]   (default 60)
# Builds build-fuzz with clang, -fsanitize=fuzzer + ASan + UBSan, runs each
# harness on a scratch copy of its corpus (the checked-in corpus is not
# modified) and fails on the first finding; the reproducer is left in
# build-fuzz/artifacts/. For a long campaign: FUZZ_JOBS=2 and a large budget.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
dir=build-fuzz
if [[ ! -f $dir/meson-private/coredata.dat ]]; then
  CC=clang CXX=clang++ meson setup "$dir" -Dfuzz=enabled -Dtests=disabled \
    -Dexamples=disabled -Dbench=disabled -Dbuildtype=debugoptimized \
    -Dfuzzer_ldflags=-fsanitize=fuzzer -Db_sanitize=address,undefined \
    -Db_lundef=false -Dc_args=-fno-sanitize-recover=all >"$dir.setup.log" 2>&1 ||
    { cat "$dir.setup.log" >&2; exit 1; }
fi
ninja -C "$dir" -j 2 >"$dir.build.log" 2>&1 || { cat "$dir.build.log" >&2; exit 1; }
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
mkdir -p "$dir/artifacts"
for exe in "$dir"/fuzz/fuzz_*; do
  [[ -x $exe && -f $exe ]] || continue
  name=$(basename "$exe")
  work=$(mktemp -d)
  cp -r "fuzz/corpus/$name/." "$work/" 2>/dev/null || true
  echo "== $name: ${secs}s"
  "$exe" -max_total_time="$secs" -max_len=16400 -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix="$dir/artifacts/$name-" -print_final_stats=1 "$work" \
    >"$dir/$name.log" 2>&1 || { tail -n 40 "$dir/$name.log" >&2; rm -rf "$work"; exit 1; }
  grep -E '^stat::number_of_executed_units|^Done' "$dir/$name.log" | tr '\n' ' '
  echo
  rm -rf "$work"
done
