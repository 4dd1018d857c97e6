#!/usr/bin/env bash
# bench/baselines.sh - SVD-softmax and hierarchical softmax beside AdaSoftmax
# and the exact path, on the real heads of bench/data/build_heads.sh.
#
#   bash bench/baselines.sh      (a few minutes once the heads are built)
#
# For each head (words: 48565 x 256; wide: 10 x 25088) it runs the tool once
# per method and setting over the same queries, in one invocation:
#   exact (the reference and the time base), ada (eps 0.3, delta 0.1,
#   calibrated on the first 200 queries), svd over a grid of window W and
#   refined rows N, and on the word head the hierarchical-softmax model that
#   fastText trained on the same data (its queries are that model's hidden
#   vectors; its agreement is with fastText's own `predict`).
# Output: a markdown table per head (stdout and $OUT/baselines.md) and a plot
# of speed-up against top-1 agreement ($OUT/baselines.svg, gnuplot).
# Every run's JSON Lines stay in $OUT (default build-bench/baselines).
# Speed-ups are ratios of median per-query times within this one run; the
# machines are shared, so read ratios, not absolute times.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${ADASM_DATA:-$HOME/.cache/adasoftmax-data}
OUT=${OUT:-build-bench/baselines}
BUILD=${BUILD:-build}

need=()
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v fasttext >/dev/null || need+=(fasttext)
command -v python3 >/dev/null || need+=(python3)
if [[ ${#need[@]} -gt 0 ]]; then
  echo "baselines.sh: installing ${need[*]}" >&2
  sudo=(); [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >&2
fi
[[ -f $DATA/words/A.npy && -f $DATA/wide/A.npy && -f $DATA/words/model_hs.bin ]] ||
  bash bench/data/build_heads.sh >&2
if [[ ! -f $BUILD/meson-private/coredata.dat ]]; then
  meson setup "$BUILD" >&2
fi
ninja -C "$BUILD" examples/adasoftmax >&2
tool=$BUILD/examples/adasoftmax
mkdir -p "$OUT"
md=$OUT/baselines.md
: >"$md"

# run NAME ARGS...: one tool invocation -> $OUT/NAME.jsonl
run() {
  local name=$1
  shift
  echo "  $name" >&2
  "$tool" query "$@" --out "$OUT/$name.jsonl"
}

head_runs() { # HEAD WINDOWS TOPS (no svd grid if WINDOWS is empty)
  local head=$1 windows=$2 tops=$3 w t labels=() extra=()
  local A=$DATA/$head/A.npy X=$DATA/$head/X.npy
  echo "== $head" >&2
  run "$head-exact" --weights "$A" --queries "$X" --method exact --k 5
  run "$head-ada" --weights "$A" --queries "$X" --method ada --k 1 \
    --eps 0.3 --delta 0.1 --calibrate 200
  labels+=("ada:eps 0.3, delta 0.1, calibrated=$OUT/$head-ada.jsonl")
  for w in $windows; do
    for t in $tops; do
      run "$head-svd-W$w-N$t" --weights "$A" --queries "$X" --method svd \
        --k 5 --svd-window "$w" --svd-top "$t"
      labels+=("svd:W=$w N=$t=$OUT/$head-svd-W$w-N$t.jsonl")
    done
  done
  [[ -f $DATA/$head/labels.npy ]] && extra+=(--labels "$DATA/$head/labels.npy")
  if [[ $head == words ]]; then
    run "$head-hs" --hs-model "$DATA/words/model_hs.bin" \
      --queries "$DATA/words/X_hs.npy" --method hs --k 5
    labels+=("hs:fastText -loss hs model=$OUT/$head-hs.jsonl")
    # fastText's own predictions for the same queries, as class indices
    python3 bench/fasttext_top.py "$DATA/words/model_hs.bin" \
      "$DATA/words/queries.txt" 5 >"$OUT/words-hs-fasttext.top"
    extra+=(--ref-top "$OUT/words-hs-fasttext.top"
            --labels-hs "$DATA/words/labels_hs.npy")
  fi
  local shape
  shape=$(python3 -c 'import json,sys; s=json.loads(open(sys.argv[1]).readlines()[-1])["summary"]; print(s["n"], "x", s["d"])' "$OUT/$head-exact.jsonl")
  {
    echo
    echo "### $head ($shape)"
    echo
    python3 bench/baselines_report.py "$OUT/$head-exact.jsonl" "${labels[@]}" \
      --plot "$OUT/$head.dat" "${extra[@]}"
  } | tee -a "$md"
}

head_runs words "8 16 32 64 128" "64 256 1024 4096"
# SVD-softmax is for n >> d: on 10 x 25088 the rank is 10 and its d x d
# Gram matrix alone would take 5 GB, so the wide head gets exact and ada.
head_runs wide "" ""

gnuplot <<EOF
set terminal svg size 900,640 dynamic background rgb 'white'
set output '$OUT/baselines.svg'
set title 'Speed-up over the exact path vs top-1 agreement (one run per head)'
set xlabel 'speed-up over exact adasm\_gemv\_softmax\_topk (median per query)'
set ylabel 'top-1 agreement with the exact answer (%)'
set logscale x 2
set grid
set key outside below
set yrange [55:101]
plot '$OUT/words.dat' using (strcol(1) eq 'svd' ? \$3 : 1/0):4 with points pt 7 title 'SVD-softmax, words', \
     '$OUT/words.dat' using (strcol(1) eq 'ada' ? \$3 : 1/0):4 with points pt 5 ps 1.5 title 'AdaSoftmax, words', \
     '$OUT/words.dat' using (strcol(1) eq 'hs' ? \$3 : 1/0):4 with points pt 9 ps 1.5 title 'hierarchical softmax, words (own model: vs fastText predict)', \
     '$OUT/wide.dat' using (strcol(1) eq 'ada' ? \$3 : 1/0):4 with points pt 4 ps 1.5 title 'AdaSoftmax, wide'
EOF
echo "baselines.sh: $md, $OUT/baselines.svg" >&2
