#!/usr/bin/env bash
# bench/hs_agree.sh - hierarchical softmax vs fastText on the real word head.
#
# Needs the data of bench/data/build_heads.sh (words/model_hs.bin,
# words/X_hs.npy, words/queries.txt) and Debian's fasttext; uses
# libfasttext-dev too when installed (in-process timing of fastText's own
# predict on the same hidden vectors). In one run:
#   1. `fasttext predict-prob model_hs.bin queries.txt K`, timed on the
#      2000 queries and on an empty query file (3 runs each, medians): the
#      difference / 2000 is the CLI's time per query (reading the line,
#      averaging the input rows, predict, printing);
#   2. bench_hs (bench/bench_hs.cc): agreement of adasm_hs_topk (default
#      mode and fastText mode) with those predictions and with in-process
#      fastText, and per-query times of both.
# usage: bench/hs_agree.sh [K]    (default 5; ADASM_DATA as build_heads.sh)
set -euo pipefail
K=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
data=${ADASM_DATA:-$HOME/.cache/adasoftmax-data}/words
out=${BENCH_OUT:-/tmp/adasm-hs-bench}
mkdir -p "$out"
for f in model_hs.bin X_hs.npy queries.txt; do
  [ -f "$data/$f" ] || { echo "hs_agree: missing $data/$f (run bench/data/build_heads.sh)" >&2; exit 1; }
done
command -v fasttext >/dev/null || { echo "hs_agree: fasttext not found (apt-get install fasttext)" >&2; exit 1; }

# ---- build bench_hs (with libfasttext when its headers are there) ----
cxx=${CXX:-g++}
flags=(-std=c++11 -O2 -Wall -Wextra -I"$root")
libs=(-lm)
if pkg-config --exists fasttext 2>/dev/null && [ -f /usr/include/fasttext/loss.h ]; then
  flags+=(-DHAVE_FASTTEXT=1 $(pkg-config --cflags fasttext))
  libs+=($(pkg-config --libs fasttext) -pthread)
  echo "hs_agree: in-process comparison with libfasttext"
else
  echo "hs_agree: libfasttext-dev not installed: CLI comparison only"
fi
"$cxx" "${flags[@]}" "$here/bench_hs.cc" -o "$out/bench_hs" "${libs[@]}"

# ---- fastText's CLI: predictions and time per query ----
ns() { date +%s%N; }
: > "$out/empty.txt"
cli=() empty=()
for rep in 1 2 3; do
  t0=$(ns); fasttext predict-prob "$data/model_hs.bin" "$data/queries.txt" "$K" > "$out/pred.txt"; t1=$(ns)
  cli+=($((t1 - t0)))
  t0=$(ns); fasttext predict-prob "$data/model_hs.bin" "$out/empty.txt" "$K" > /dev/null; t1=$(ns)
  empty+=($((t1 - t0)))
done
med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
nq=$(wc -l < "$data/queries.txt")
cli_med=$(med "${cli[@]}") empty_med=$(med "${empty[@]}")
echo "fasttext predict-prob CLI: $nq queries $((cli_med / 1000000)) ms, empty file" \
     "$((empty_med / 1000000)) ms (model loading) -> $(( (cli_med - empty_med) / nq )) ns per query" \
     "(medians of 3 runs, wall clock)"

# ---- agreement and in-process timings ----
"$out/bench_hs" "$data/model_hs.bin" "$data/X_hs.npy" "$out/pred.txt" --k "$K"
