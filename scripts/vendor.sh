#!/usr/bin/env bash
# The vendoring options: every combination of ADASM_NO_SVD and ADASM_NO_HS
# (the baselines a vendored copy may leave out) compiles warning-free as C99
# and C++11, and the programs that do not need the left-out parts pass:
# examples/minimal.c, tests/test_ada.c, tests/test_pcg.c, tests/test_kernels.c
# (quick); minimal.c also as C++11. Run by scripts/test.sh; alone: bash scripts/vendor.sh [OUTDIR].
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-vendor}
mkdir -p "$out"
warn=(-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes -Werror)
pass=0
for combo in "" "-DADASM_NO_SVD" "-DADASM_NO_HS" "-DADASM_NO_SVD -DADASM_NO_HS"; do
  tag=${combo:-all}
  tag=${tag//-DADASM_/}
  tag=${tag// /+}
  # shellcheck disable=SC2086 # the combination is a list of flags
  for prog in examples/minimal.c tests/test_ada.c tests/test_pcg.c tests/test_kernels.c; do
    name=$(basename "$prog" .c)
    gcc -std=c99 -O2 "${warn[@]}" $combo -I. -Itests "$prog" -o "$out/$name-$tag" -lm
  done
  # shellcheck disable=SC2086
  g++ -x c++ -std=c++11 -O2 "${warn[@]/-Wstrict-prototypes}" $combo -I. \
    examples/minimal.c -o "$out/minimal-$tag-cpp" -lm
  "$out/minimal-$tag" >/dev/null
  "$out/minimal-$tag-cpp" >/dev/null
  "$out/test_ada-$tag" --smoke >/dev/null
  "$out/test_pcg-$tag" >/dev/null
  ADASM_TEST_QUICK=1 "$out/test_kernels-$tag" >/dev/null
  pass=$((pass + 5))
  echo "vendor [$tag]: compiled warning-free, minimal + test_ada + test_pcg + test_kernels passed"
done
echo "$pass passed, 0 failed"
