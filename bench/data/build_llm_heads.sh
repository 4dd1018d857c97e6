#!/usr/bin/env bash
# build_llm_heads.sh - synthetic heads with the statistics of trained LM output
# layers (bench/data/llmhead.c says which and how), in the three shapes the
# benchmarks use:
#   llm-gpt2    50257 x 768     (GPT-2)
#   llm-llama2  32000 x 4096    (Llama-2)
#   llm-llama3  128256 x 4096   (Llama-3)
# each with 1200 queries (200 to calibrate, 1000 to judge).
#
#   bench/data/build_llm_heads.sh [--force] [gpt2|llama2|llama3 ...]
#
# Output (never in the repository): ${ADASM_DATA:-$HOME/.cache/adasoftmax-data}/llm-NAME/
#   A.npy (n x d '<f4'), X.npy (1200 x d '<f4'), stats.txt (entropy and top-1
#   statistics of the queries, spectrum and anisotropy of the head).
# Deterministic: the same seed gives the same files. Needs a C compiler; about
# 10 s (gpt2), 40 s (llama2) and 2-3 min (llama3) on one core; 2.1 GB of disk
# for llama3.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${ADASM_DATA:-$HOME/.cache/adasoftmax-data}
NQ=${LLM_QUERIES:-1200}
FORCE=0
WANT=()
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    gpt2|llama2|llama3) WANT+=("$a") ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build_llm_heads: unknown argument '$a' (try --help)" >&2; exit 2 ;;
  esac
done
[ ${#WANT[@]} -gt 0 ] || WANT=(gpt2 llama2 llama3)
mkdir -p "$CACHE/bin"
BIN=$CACHE/bin/llmhead
if [ ! -x "$BIN" ] || [ "$HERE/llmhead.c" -nt "$BIN" ] || [ "$ROOT/adasoftmax.h" -nt "$BIN" ]; then
  ${CC:-cc} -std=c99 -O2 -I"$ROOT" "$HERE/llmhead.c" -o "$BIN" -lm
fi
for name in "${WANT[@]}"; do
  case "$name" in
    gpt2) n=50257; d=768; seed=2019 ;;
    llama2) n=32000; d=4096; seed=2023 ;;
    llama3) n=128256; d=4096; seed=2024 ;;
  esac
  dir=$CACHE/llm-$name
  if [ "$FORCE" = 0 ] && [ -f "$dir/X.npy" ] && [ -f "$dir/stats.txt" ] &&
    grep -q "seed $seed, $NQ queries" "$dir/stats.txt"; then
    echo "build_llm_heads: llm-$name: cached ($dir)" >&2
    continue
  fi
  mkdir -p "$dir"
  echo "build_llm_heads: llm-$name: $n x $d, $NQ queries, seed $seed" >&2
  "$BIN" "$dir" "$n" "$d" "$NQ" "$seed" >&2
done
