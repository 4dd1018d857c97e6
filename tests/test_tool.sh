#!/usr/bin/env bash
# Tests of the `adasoftmax` command-line tool and its .npy reader.
#
# usage: tests/test_tool.sh path/to/adasoftmax
#   WRAP="valgrind -q --error-exitcode=99"  tests/test_tool.sh ...  runs every
#   invocation under a wrapper (any wrapper output on stderr fails the checks,
#   which is the point).
#
# Every fixture is built here with printf (no Python, no NumPy): valid files
# in format 1.0, 2.0 and 3.0, and one invalid file per refusal rule. Expected
# numbers (probabilities, log normalizers) are computed independently with
# awk in double precision from the same small matrices.
set -u
export LC_ALL=C # byte semantics for ${#str}, sed and printf

TOOL=${1:?usage: test_tool.sh path/to/adasoftmax}
WRAP=${WRAP:-}
T=$(mktemp -d "${TMPDIR:-/tmp}/adasoftmax-test.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
  fail=$((fail + 1))
  echo "FAIL: $*"
}

# ---- fixture helpers ---------------------------------------------------------

# f32le X...: printf escapes of the little-endian float32 bit patterns of X
# (normal numbers, 0, nan, inf), computed in awk: no binary tools needed.
f32le() {
  awk 'function bits(x,   s, e, m) {
         if (x == "nan") return 2143289344     # 0x7fc00000
         if (x == "inf") return 2139095040     # 0x7f800000
         x += 0
         if (x == 0) return 0
         s = 0; if (x < 0) { s = 1; x = -x }
         e = 0
         while (x >= 2) { x /= 2; e++ }
         while (x < 1) { x *= 2; e-- }
         m = int((x - 1) * 8388608 + 0.5)
         if (m == 8388608) { m = 0; e++ }
         return s * 2147483648 + (e + 127) * 8388608 + m
       }
       { for (i = 1; i <= NF; i++) {
           b = bits($i)
           for (k = 0; k < 4; k++) { printf "\\x%02x", b % 256; b = int(b / 256) }
       } }' <<<"$*"
}

# f16le X... / bf16le X...: the same for IEEE float16 and bfloat16 (values
# exactly representable in the format: these fixtures need no rounding).
f16le() {
  awk 'function bits(x,   s, e, m) {
         if (x == "inf") return 31744            # 0x7c00
         x += 0
         if (x == 0) return 0
         s = 0; if (x < 0) { s = 1; x = -x }
         e = 0
         while (x >= 2) { x /= 2; e++ }
         while (x < 1) { x *= 2; e-- }
         m = int((x - 1) * 1024 + 0.5)
         return s * 32768 + (e + 15) * 1024 + m
       }
       { for (i = 1; i <= NF; i++) {
           b = bits($i)
           for (k = 0; k < 2; k++) { printf "\\x%02x", b % 256; b = int(b / 256) }
       } }' <<<"$*"
}
bf16le() {
  awk 'function bits(x,   s, e, m) {
         if (x == "nan") return 32704            # 0x7fc0
         x += 0
         if (x == 0) return 0
         s = 0; if (x < 0) { s = 1; x = -x }
         e = 0
         while (x >= 2) { x /= 2; e++ }
         while (x < 1) { x *= 2; e-- }
         m = int((x - 1) * 128 + 0.5)
         return s * 32768 + (e + 127) * 128 + m
       }
       { for (i = 1; i <= NF; i++) {
           b = bits($i)
           for (k = 0; k < 2; k++) { printf "\\x%02x", b % 256; b = int(b / 256) }
       } }' <<<"$*"
}

# le BYTES VALUE: escapes of VALUE as a little-endian integer of BYTES bytes.
le() {
  local n=$1 v=$2 i s=""
  for ((i = 0; i < n; i++)); do
    s+=$(printf '\\x%02x' $((v & 255)))
    v=$((v >> 8))
  done
  printf '%s' "$s"
}

# npy FILE MAJOR DICT DATA_ESCAPES [PAD]: a .npy file whose header is DICT
# padded with spaces and a newline to a multiple of 64 bytes (PAD extra
# spaces on request), in format MAJOR.0.
npy() {
  local f=$1 major=$2 dict=$3 data=$4 extra=${5:-0}
  local pre=10 lenbytes=2
  if [ "$major" != 1 ]; then pre=12; lenbytes=4; fi
  local len=$((${#dict} + 1 + extra))
  local pad=$(((64 - (pre + len) % 64) % 64 + extra))
  local hdr
  hdr="$dict$(printf '%*s' "$pad" '')"
  local hlen=$((${#hdr} + 1))
  {
    printf '\x93NUMPY'
    printf "$(le 1 "$major")\\x00"
    printf "$(le $lenbytes $hlen)"
    printf '%s\n' "$hdr"
    printf "$data"
  } >"$f"
}

# raw FILE ESCAPES: any bytes.
raw() { printf "$2" >"$1"; }

dict() { # DESCR FORTRAN SHAPE
  printf "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" "$1" "$2" "$3"
}

# ---- running the tool and checking ------------------------------------------

run() { # sets RC; stdout in $T/out, stderr in $T/err
  $WRAP "$TOOL" "$@" >"$T/out" 2>"$T/err"
  RC=$?
}

# expect_fail NAME CODE PATTERN ARGS...: exit CODE, stdout empty, exactly one
# line on stderr that starts with "adasoftmax: " and contains PATTERN.
expect_fail() {
  local name=$1 code=$2 pat=$3
  shift 3
  run "$@"
  local lines
  lines=$(wc -l <"$T/err")
  if [ "$RC" -ne "$code" ]; then
    bad "$name: exit $RC, expected $code; stderr: $(head -c 300 "$T/err")"
  elif [ "$lines" -ne 1 ] || [ "$(wc -c <"$T/err")" -ne "$(head -n 1 "$T/err" | wc -c)" ]; then
    bad "$name: $lines lines on stderr, expected 1: $(head -c 300 "$T/err")"
  elif [ -s "$T/out" ]; then
    bad "$name: stdout is not empty"
  elif ! grep -q '^adasoftmax: ' "$T/err"; then
    bad "$name: stderr lacks the program name: $(cat "$T/err")"
  elif ! grep -qF -- "$pat" "$T/err"; then
    bad "$name: stderr lacks '$pat': $(cat "$T/err")"
  else
    ok
  fi
}

# expect_ok NAME NQUERIES ARGS...: exit 0, nothing on stderr, NQUERIES query
# lines then one summary line on stdout.
expect_ok() {
  local name=$1 nq=$2
  shift 2
  run "$@"
  if [ "$RC" -ne 0 ]; then
    bad "$name: exit $RC; stderr: $(head -c 300 "$T/err")"
    return 1
  elif [ -s "$T/err" ]; then
    bad "$name: stderr not empty: $(head -c 300 "$T/err")"
    return 1
  elif [ "$(grep -c '^{"query": ' "$T/out")" -ne "$nq" ] ||
    [ "$(wc -l <"$T/out")" -ne $((nq + 1)) ] ||
    ! tail -n 1 "$T/out" | grep -q '^{"summary": {'; then
    bad "$name: expected $nq query lines and a summary: $(head -c 400 "$T/out")"
    return 1
  fi
  ok
  return 0
}

# field LINE NAME: the value of "NAME" in a JSON line; arrays without the
# brackets ("2, 0").
field() {
  case $1 in
  *"\"$2\": ["*) sed -n "s/.*\"$2\": \\[\\([^]]*\\)\\].*/\\1/p" <<<"$1" ;;
  *) sed -n "s/.*\"$2\": \\([^,}]*\\).*/\\1/p" <<<"$1" ;;
  esac
}

# close A B TOL: |A - B| <= TOL * max(|B|, 1e-300) (relative), in awk.
close() {
  awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN {
    d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; if (m < 1e-300) m = 1e-300
    exit !(d <= t * m) }'
}

# softmax_ref "z1 z2 ...": lines "index p" by decreasing logit (ties: lower
# index first), in double precision.
softmax_ref() {
  awk '{ m = $1; for (i = 2; i <= NF; i++) if ($i > m) m = $i
         s = 0; for (i = 1; i <= NF; i++) s += exp($i - m)
         for (i = 1; i <= NF; i++) printf "%.17g %d %.17g\n", $i, i - 1, exp($i - m) / s }' <<<"$1" |
    sort -k1,1gr -k2,2n | cut -d' ' -f2,3
}
# logsumexp_ref "z1 z2 ...": log(sum(exp(z))), in double precision.
logsumexp_ref() {
  awk '{ m = $1; for (i = 2; i <= NF; i++) if ($i > m) m = $i
         s = 0; for (i = 1; i <= NF; i++) s += exp($i - m)
         printf "%.17g\n", m + log(s) }' <<<"$1"
}

# check_query NAME LINE K "logits": top, p and log_norm of one output line
# against the awk reference.
check_query() {
  local name=$1 line=$2 k=$3 logits=$4
  local ref top p ln want_top want_p lse i
  ref=$(softmax_ref "$logits")
  lse=$(logsumexp_ref "$logits")
  want_top=$(head -n "$k" <<<"$ref" | cut -d' ' -f1 | paste -sd' ')
  want_p=$(head -n "$k" <<<"$ref" | cut -d' ' -f2 | paste -sd' ')
  top=$(field "$line" top | tr -d ',')
  p=$(field "$line" p | tr -d ',')
  ln=$(field "$line" log_norm)
  if [ "$top" != "$want_top" ]; then
    bad "$name: top [$top], expected [$want_top]"
    return
  fi
  ok
  local -a pa=($p) wa=($want_p)
  if [ "${#pa[@]}" -ne "$k" ]; then
    bad "$name: ${#pa[@]} probabilities, expected $k"
    return
  fi
  for ((i = 0; i < k; i++)); do
    if close "${pa[$i]}" "${wa[$i]}" 1e-5; then ok; else
      bad "$name: p[$i] = ${pa[$i]}, expected ${wa[$i]}"
    fi
  done
  if close "$ln" "$lse" 1e-6; then ok; else
    bad "$name: log_norm = $ln, expected $lse"
  fi
}

# ---- fixtures ----------------------------------------------------------------

# A (3 x 2) = [[1, 0], [0, 1], [1, 1]]; X (2 x 2) = [[2, 1], [0.5, -1]]
# logits A x: query 0 -> (2, 1, 3), query 1 -> (0.5, -1, -0.5)
A_DATA=$(f32le 1 0 0 1 1 1)
X_DATA=$(f32le 2 1 0.5 -1)
npy "$T/A.npy" 1 "$(dict '<f4' False '(3, 2)')" "$A_DATA"
npy "$T/X.npy" 1 "$(dict '<f4' False '(2, 2)')" "$X_DATA"
npy "$T/A_v2.npy" 2 "$(dict '<f4' False '(3, 2)')" "$A_DATA"
npy "$T/A_v3.npy" 3 "$(dict '<f4' False '(3, 2)')" "$A_DATA"
# legal variations: keys in another order, double quotes, no spaces, no
# trailing comma; a Python 2 'L' suffix; a header longer than 64 KiB (2.0)
npy "$T/A_order.npy" 1 '{"shape":(3,2),"fortran_order":False,"descr":"<f4"}' "$A_DATA"
npy "$T/A_long.npy" 1 "$(dict '<f4' False '(3L, 2L)')" "$A_DATA"
npy "$T/A_big.npy" 2 "$(dict '<f4' False '(3, 2)')" "$A_DATA" 70000
# X with one column of three: d mismatch against A
npy "$T/X_d3.npy" 1 "$(dict '<f4' False '(1, 3)')" "$(f32le 1 2 3)"
# identity-like A (4 x 4, 2 on the diagonal); query j points at row perm[j]
I_DATA=$(f32le 2 0 0 0 0 2 0 0 0 0 2 0 0 0 0 2)
npy "$T/I.npy" 1 "$(dict '<f4' False '(4, 4)')" "$I_DATA"
npy "$T/XI.npy" 1 "$(dict '<f4' False '(4, 4)')" "$(f32le 0 0 0 3 0 3 0 0 0 0 3 0 3 0 0 0)"

# invalid files, one rule each
npy "$T/fortran.npy" 1 "$(dict '<f4' True '(3, 2)')" "$A_DATA"
npy "$T/big_endian.npy" 1 "$(dict '>f4' False '(3, 2)')" "$A_DATA"
npy "$T/f8.npy" 1 "$(dict '<f8' False '(3, 1)')" "$A_DATA"
npy "$T/f2.npy" 1 "$(dict '<f2' False '(3, 2)')" "$(f32le 1 2 3)"
npy "$T/u1.npy" 1 "$(dict '|u1' False '(4, 6)')" "$A_DATA"
npy "$T/one_d.npy" 1 "$(dict '<f4' False '(6,)')" "$A_DATA"
npy "$T/three_d.npy" 1 "$(dict '<f4' False '(1, 3, 2)')" "$A_DATA"
npy "$T/int_shape.npy" 1 "$(dict '<f4' False '(6)')" "$A_DATA"
npy "$T/truncated.npy" 1 "$(dict '<f4' False '(3, 2)')" "$(f32le 1 0 0 1 1)"
npy "$T/extra.npy" 1 "$(dict '<f4' False '(3, 2)')" "$A_DATA$(f32le 7)"
npy "$T/zero_rows.npy" 1 "$(dict '<f4' False '(0, 2)')" ""
npy "$T/zero_cols.npy" 1 "$(dict '<f4' False '(3, 0)')" ""
npy "$T/zero_queries.npy" 1 "$(dict '<f4' False '(0, 2)')" ""
npy "$T/nan.npy" 1 "$(dict '<f4' False '(3, 2)')" "$(f32le 1 0 nan 1 1 1)"
npy "$T/inf.npy" 1 "$(dict '<f4' False '(3, 2)')" "$(f32le 1 0 inf 1 1 1)"
npy "$T/huge_vals.npy" 1 "$(dict '<f4' False '(3, 2)')" "$(f32le 3e38 0 3e38 0 1 1)"
npy "$T/dup_key.npy" 1 "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), 'descr': '<f4'}" "$A_DATA"
npy "$T/missing_key.npy" 1 "{'descr': '<f4', 'shape': (3, 2)}" "$A_DATA"
npy "$T/unknown_key.npy" 1 "$(dict '<f4' False '(3, 2)')" "$A_DATA"
sed -i "s/'shape'/'shapes'/" "$T/unknown_key.npy"
npy "$T/neg_dim.npy" 1 "$(dict '<f4' False '(-3, 2)')" "$A_DATA"
npy "$T/float_dim.npy" 1 "$(dict '<f4' False '(3.0, 2)')" "$A_DATA"
npy "$T/overflow.npy" 1 "$(dict '<f4' False '(4294967296, 4294967296)')" "$A_DATA"
# a header that promises 4 TB in a 100-byte file: refused as truncated
# (an input error), never attempted as an allocation
npy "$T/lying.npy" 1 "$(dict '<f4' False '(1000000000, 1000)')" "$A_DATA"
npy "$T/huge_dim.npy" 1 "$(dict '<f4' False '(99999999999999999999999, 1)')" "$A_DATA"
npy "$T/structured.npy" 1 "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3, 2), }" "$A_DATA"
npy "$T/not_dict.npy" 1 "['<f4', False, (3, 2)]" "$A_DATA"
npy "$T/trailing_text.npy" 1 "$(dict '<f4' False '(3, 2)') x" "$A_DATA"
npy "$T/nonascii.npy" 1 "$(dict '<f4' False '(3, 2)')" "$A_DATA"
printf '\xe9' | dd of="$T/nonascii.npy" bs=1 seek=70 conv=notrunc 2>/dev/null
raw "$T/bad_magic.npy" "\\x93NUMPZ\\x01\\x00\\x04\\x00{}  \\n"
raw "$T/version4.npy" "\\x93NUMPY\\x04\\x00\\x04\\x00\\x00\\x00{}  \\n"
raw "$T/hlen_past_eof.npy" "\\x93NUMPY\\x01\\x00$(le 2 1000){'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }\\n$(f32le 1)"
raw "$T/hlen_past_eof_v2.npy" "\\x93NUMPY\\x02\\x00$(le 4 4000000000){}"
raw "$T/short.npy" "\\x93NUM"
: >"$T/empty.npy"

# ---- valid inputs ----------------------------------------------------------------

for a in A A_v2 A_v3 A_order A_long A_big; do
  if expect_ok "$a.npy: exact" 2 query --weights "$T/$a.npy" --queries "$T/X.npy" --method exact; then
    check_query "$a.npy q0" "$(sed -n 1p "$T/out")" 1 "2 1 3"
    check_query "$a.npy q1" "$(sed -n 2p "$T/out")" 1 "0.5 -1 -0.5"
  fi
done

# read through a pipe (no file size to check up front)
cat "$T/A_big.npy" | $WRAP "$TOOL" query --weights /dev/stdin --queries "$T/X.npy" --method exact --k 3 >"$T/out" 2>"$T/err"
RC=$?
if [ "$RC" -eq 0 ] && [ ! -s "$T/err" ]; then
  check_query "pipe q0" "$(sed -n 1p "$T/out")" 3 "2 1 3"
else
  bad "pipe: exit $RC: $(head -c 300 "$T/err")"
fi

# top-k and temperature (logits are B * (A x))
if expect_ok "k=3" 2 query --weights "$T/A.npy" --queries "$T/X.npy" --method exact --k 3; then
  check_query "k=3 q0" "$(sed -n 1p "$T/out")" 3 "2 1 3"
  check_query "k=3 q1" "$(sed -n 2p "$T/out")" 3 "0.5 -1 -0.5"
fi
if expect_ok "k=2 temperature 0.5" 2 query --weights "$T/A.npy" --queries "$T/X.npy" --method exact --k=2 --temperature=0.5; then
  check_query "T=0.5 q0" "$(sed -n 1p "$T/out")" 2 "1 0.5 1.5"
  check_query "T=0.5 q1" "$(sed -n 2p "$T/out")" 2 "0.25 -0.5 -0.25"
fi
if expect_ok "temperature 40" 2 query --weights "$T/A.npy" --queries "$T/X.npy" --method exact --k 3 --temperature 40; then
  check_query "T=40 q0" "$(sed -n 1p "$T/out")" 3 "80 40 120"
fi

# identity-like A: the top row is the one each query points at
if expect_ok "identity" 4 query --weights "$T/I.npy" --queries "$T/XI.npy" --method exact; then
  got=$(grep '^{"query"' "$T/out" | while read -r l; do field "$l" top; done | paste -sd' ')
  if [ "$got" = "3 1 2 0" ]; then ok; else bad "identity: tops $got, expected 3 1 2 0"; fi
  check_query "identity q2" "$(sed -n 3p "$T/out")" 1 "0 0 6 0"
fi

# output format: query indices, samples = n*d, summary fields
if expect_ok "format" 2 query --weights "$T/A.npy" --queries "$T/X.npy" --method exact; then
  l0=$(sed -n 1p "$T/out")
  s=$(tail -n 1 "$T/out")
  if grep -qE '^\{"query": 0, "top": \[2\], "p": \[[0-9.e+-]+\], "log_norm": [0-9.e+-]+, "samples": 6, "ns": [0-9]+\}$' <<<"$l0"; then ok; else
    bad "format: query line not as in the contract: $l0"
  fi
  if [ "$(field "$(sed -n 2p "$T/out")" query)" = 1 ]; then ok; else bad "format: second line is not query 1"; fi
  for kv in '"method": "exact"' '"queries": 2' '"n": 3' '"d": 2' '"k": 1' '"mean_samples": 6' \
    '"gain": 1' '"ci_scale": 1' '"certified": false' '"prepare_ns": ' '"mean_ns": ' '"median_ns": ' '"isa": "'; do
    if grep -qF -- "$kv" <<<"$s"; then ok; else bad "format: summary lacks $kv: $s"; fi
  done
  # JSON validity, when some python3 is around (not required)
  if command -v python3 >/dev/null 2>&1; then
    if python3 -c 'import json,sys
for line in open(sys.argv[1]): json.loads(line)' "$T/out" 2>/dev/null; then ok; else bad "format: output is not valid JSON Lines"; fi
  fi
fi

# --calibrate N: N queries drawn at random are used to calibrate, the others
# are reported with their original indices
logits_of() { if [ "$1" = 0 ]; then echo "2 1 3"; else echo "0.5 -1 -0.5"; fi; }
if expect_ok "calibrate" 1 query --weights "$T/A.npy" --queries "$T/X.npy" --method exact --calibrate 1; then
  l=$(sed -n 1p "$T/out")
  qi=$(field "$l" query)
  if [ "$qi" = 0 ] || [ "$qi" = 1 ]; then ok; else bad "calibrate: reported query $qi"; fi
  check_query "calibrate q$qi" "$l" 1 "$(logits_of "$qi")"
fi

# same seed, same output (times aside)
strip_times() { sed -E 's/"(ns|mean_ns|median_ns|prepare_ns|calibrate_ns)": [0-9.e+-]+/"\1": T/g' "$1"; }
run query --weights "$T/A.npy" --queries "$T/X.npy" --method exact --k 2 --seed 7
strip_times "$T/out" >"$T/run1"
run query --weights "$T/A.npy" --queries "$T/X.npy" --method exact --k 2 --seed 7
strip_times "$T/out" >"$T/run2"
if [ -s "$T/run1" ] && cmp -s "$T/run1" "$T/run2"; then ok; else bad "determinism: two runs differ"; fi

# --out FILE: the same lines go to the file, nothing to stdout
run query --weights "$T/A.npy" --queries "$T/X.npy" --method exact --k 2 --seed 7 --out "$T/res.jsonl"
if [ "$RC" -eq 0 ] && [ ! -s "$T/out" ] && [ ! -s "$T/err" ] &&
  [ "$(strip_times "$T/res.jsonl")" = "$(cat "$T/run1")" ]; then
  ok
else
  bad "--out: exit $RC, file: $(head -c 300 "$T/res.jsonl" 2>/dev/null)"
fi

# every ISA the tool accepts agrees with the reference; the others are
# refused cleanly
for isa in auto scalar avx2 avx512 neon; do
  run query --weights "$T/A.npy" --queries "$T/X.npy" --method exact --k 3 --isa "$isa"
  if [ "$RC" -eq 0 ]; then
    check_query "isa $isa q0" "$(sed -n 1p "$T/out")" 3 "2 1 3"
    check_query "isa $isa q1" "$(sed -n 2p "$T/out")" 3 "0.5 -1 -0.5"
    if [ "$isa" != auto ]; then
      if tail -n 1 "$T/out" | grep -qF "\"isa\": \"$isa\""; then ok; else bad "isa $isa: summary names another ISA"; fi
    fi
  else
    expect_fail "isa $isa unsupported" 2 "instruction set '$isa' is not available" \
      query --weights "$T/A.npy" --queries "$T/X.npy" --method exact --isa "$isa"
  fi
done

# ---- invalid files ---------------------------------------------------------------

# fail_file NAME CODE PATTERN WEIGHTS [QUERIES]
fail_file() {
  expect_fail "$1" "$2" "$3" query --weights "$4" --queries "${5:-$T/X.npy}" --method exact
}
fail_file "fortran" 2 "fortran.npy: fortran_order=True is not supported" "$T/fortran.npy"
fail_file ">f4" 2 "big_endian.npy: big-endian dtype '>f4' is not supported (expected '<f4' or '<f2' or '<u2')" "$T/big_endian.npy"
fail_file ">f4 queries" 2 "big_endian.npy: big-endian dtype '>f4' is not supported (expected '<f4')" "$T/A.npy" "$T/big_endian.npy"
fail_file "<f8" 2 "f8.npy: dtype '<f8' is not supported" "$T/f8.npy"
fail_file "<f2 queries" 2 "f2.npy: dtype '<f2' is not supported (expected '<f4')" "$T/A.npy" "$T/f2.npy"
fail_file "|u1" 2 "dtype '|u1' is not supported" "$T/u1.npy"
fail_file "1-D weights" 2 "one_d.npy: expected a 2-D array, found shape (6,)" "$T/one_d.npy"
fail_file "1-D queries" 2 "one_d.npy: expected a 2-D array" "$T/A.npy" "$T/one_d.npy"
fail_file "3-D weights" 2 "expected a 2-D array, found shape (1, 3, 2)" "$T/three_d.npy"
fail_file "shape (6)" 2 "'shape' must be a tuple" "$T/int_shape.npy"
fail_file "truncated" 2 "truncated.npy: data is truncated" "$T/truncated.npy"
fail_file "extra bytes" 2 "extra.npy: 4 unexpected bytes after the data" "$T/extra.npy"
fail_file "header past EOF" 2 "header length 1000 goes past the end of the file" "$T/hlen_past_eof.npy"
fail_file "header past EOF v2" 2 "header length 4000000000 goes past the end of the file" "$T/hlen_past_eof_v2.npy"
fail_file "bad magic" 2 "bad_magic.npy: not a .npy file (bad magic)" "$T/bad_magic.npy"
fail_file "version 4" 2 "unsupported .npy format version 4.0" "$T/version4.npy"
fail_file "short file" 2 "short.npy: not a .npy file" "$T/short.npy"
fail_file "empty file" 2 "empty.npy: the file is empty" "$T/empty.npy"
fail_file "missing file" 2 "nope.npy: cannot open: No such file or directory" "$T/nope.npy"
fail_file "directory" 2 "read error" "$T"
fail_file "d mismatch" 2 "X_d3.npy: the queries have 3 columns but the rows of" "$T/A.npy" "$T/X_d3.npy"
fail_file "zero rows" 2 "zero_rows.npy: the weights have no rows" "$T/zero_rows.npy"
fail_file "zero columns" 2 "zero_cols.npy: the weights have no columns" "$T/zero_cols.npy"
fail_file "zero queries" 2 "zero_queries.npy: there are no queries" "$T/A.npy" "$T/zero_queries.npy"
fail_file "NaN in A" 1 "query 0: the input contains NaN" "$T/nan.npy"
fail_file "inf in A" 1 "query 0: the logits overflow float" "$T/inf.npy"
fail_file "float overflow of A x" 1 "query 0: the logits overflow float" "$T/huge_vals.npy"
fail_file "duplicate key" 2 "duplicate key 'descr'" "$T/dup_key.npy"
fail_file "missing key" 2 "missing key 'fortran_order'" "$T/missing_key.npy"
fail_file "unknown key" 2 "unexpected key 'shapes'" "$T/unknown_key.npy"
fail_file "negative dim" 2 "negative dimension '-3'" "$T/neg_dim.npy"
fail_file "float dim" 2 "dimension '3.0' is not a non-negative integer" "$T/float_dim.npy"
fail_file "size overflow" 2 "is too large (size overflows)" "$T/overflow.npy"
fail_file "lying header" 2 "lying.npy: data is truncated: shape (1000000000, 1000) needs 4000000000000 bytes, found 24" "$T/lying.npy"
cat "$T/lying.npy" | $WRAP "$TOOL" query --weights /dev/stdin --queries "$T/X.npy" --method exact >"$T/out" 2>"$T/err"
RC=$?
if [ "$RC" -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && [ ! -s "$T/out" ] &&
  grep -qF "/dev/stdin: data is truncated: shape (1000000000, 1000) needs 4000000000000 bytes, found 24" "$T/err"; then
  ok
else
  bad "lying header through a pipe: exit $RC: $(head -c 300 "$T/err")"
fi
cat "$T/extra.npy" | $WRAP "$TOOL" query --weights /dev/stdin --queries "$T/X.npy" --method exact >"$T/out" 2>"$T/err"
RC=$?
if [ "$RC" -eq 2 ] && grep -qF "4 unexpected bytes after the data" "$T/err"; then ok; else
  bad "extra bytes through a pipe: exit $RC: $(head -c 300 "$T/err")"
fi
fail_file "huge dim" 2 "dimension '99999999999999999999999' is too large" "$T/huge_dim.npy"
fail_file "structured" 2 "structured dtypes are not supported" "$T/structured.npy"
fail_file "not a dict" 2 "the header is not a dict" "$T/not_dict.npy"
fail_file "trailing text" 2 "unexpected text after the header dict" "$T/trailing_text.npy"
fail_file "non-ASCII" 2 "non-ASCII byte 0xe9 in the header" "$T/nonascii.npy"

# ---- 16-bit weights: '<f2' files, --weights-dtype, raw bfloat16 '<u2' ---------

# A of the fixtures above in float16, in bfloat16 bits ('<u2'), and with
# values that round: R (2 x 1) = [[1.01], [0]] is 1.009765625 in f16 and
# 1.0078125 in bf16, so the logits of x = 1 tell the three apart.
npy "$T/A16.npy" 1 "$(dict '<f2' False '(3, 2)')" "$(f16le 1 0 0 1 1 1)"
npy "$T/Abf.npy" 1 "$(dict '<u2' False '(3, 2)')" "$(bf16le 1 0 0 1 1 1)"
npy "$T/A16_v3.npy" 3 "$(dict '<f2' False '(3, 2)')" "$(f16le 1 0 0 1 1 1)"
npy "$T/R.npy" 1 "$(dict '<f4' False '(2, 1)')" "$(f32le 1.01 0)"
npy "$T/XR.npy" 1 "$(dict '<f4' False '(1, 1)')" "$(f32le 1)"
npy "$T/I16.npy" 1 "$(dict '<f2' False '(4, 4)')" "$(f16le 2 0 0 0 0 2 0 0 0 0 2 0 0 0 0 2)"
npy "$T/nan_bf.npy" 1 "$(dict '<u2' False '(3, 2)')" "$(bf16le 1 0 nan 1 1 1)"
npy "$T/inf16.npy" 1 "$(dict '<f2' False '(3, 2)')" "$(f16le 1 0 inf 1 1 1)"
npy "$T/u2_1d.npy" 1 "$(dict '<u2' False '(6,)')" "$(bf16le 1 0 0 1 1 1)"

# every method on every way in: the fixtures are exact in all three dtypes,
# so every answer is the float32 one
for w in "A16.npy" "A16_v3.npy" "A16.npy --weights-dtype f32" "A16.npy --weights-dtype bf16" \
  "Abf.npy --weights-dtype bf16" "A.npy --weights-dtype f16" "A.npy --weights-dtype bf16" \
  "A.npy --weights-dtype f32"; do
  for meth in exact ada svd certified; do
    # shellcheck disable=SC2086
    if expect_ok "[$w] $meth" 2 query --weights "$T/"$w --queries "$T/X.npy" --method $meth --k 2; then
      check_query "[$w] $meth q0" "$(sed -n 1p "$T/out")" 2 "2 1 3"
      check_query "[$w] $meth q1" "$(sed -n 2p "$T/out")" 2 "0.5 -1 -0.5"
      if grep -qF "\"method\": \"$meth\"" <<<"$(tail -n 1 "$T/out")"; then ok; else bad "[$w] $meth: summary"; fi
    fi
  done
done
for isa in scalar avx2 avx512 neon; do
  for w in "A16.npy" "Abf.npy --weights-dtype bf16"; do
    # shellcheck disable=SC2086
    run query --weights "$T/"$w --queries "$T/X.npy" --method exact --k 3 --isa "$isa"
    if [ "$RC" -eq 0 ]; then
      check_query "[$w] isa $isa q0" "$(sed -n 1p "$T/out")" 3 "2 1 3"
    fi
  done
done
if expect_ok "identity f16" 4 query --weights "$T/I16.npy" --queries "$T/XI.npy" --method certified; then
  got=$(grep '^{"query"' "$T/out" | while read -r l; do field "$l" top; done | paste -sd' ')
  if [ "$got" = "3 1 2 0" ]; then ok; else bad "identity f16 certified: tops $got"; fi
fi
# the conversion rounds (to nearest even): the logit is the rounded weight
for dt in "f32 1.00999999" "f16 1.009765625" "bf16 1.0078125"; do
  set -- $dt
  if expect_ok "rounding $1" 1 query --weights "$T/R.npy" --queries "$T/XR.npy" --method exact --k 2 --weights-dtype "$1"; then
    check_query "rounding $1" "$(sed -n 1p "$T/out")" 2 "$2 0"
  fi
done
# samples: n d multiply-adds for exact; certified adds its recomputed rows
if expect_ok "certified samples" 2 query --weights "$T/A.npy" --queries "$T/X.npy" --method certified; then
  smp=$(field "$(sed -n 1p "$T/out")" samples)
  if [ "$smp" -ge 8 ] && [ "$smp" -le 12 ]; then ok; else bad "certified samples $smp (n d = 6, plus 1..3 rows of 2)"; fi
fi
expect_fail "<u2 without bf16" 2 "Abf.npy: '<u2' weights are raw bfloat16 bits: they need --weights-dtype bf16" \
  query --weights "$T/Abf.npy" --queries "$T/X.npy" --method exact
expect_fail "<u2 as f16" 2 "they need --weights-dtype bf16" \
  query --weights "$T/Abf.npy" --queries "$T/X.npy" --method exact --weights-dtype f16
expect_fail "--weights-dtype f64" 2 "option --weights-dtype: unknown dtype 'f64' (expected f32, f16 or bf16)" \
  query --weights "$T/A.npy" --queries "$T/X.npy" --method exact --weights-dtype f64
expect_fail "--weights-dtype empty" 2 "option --weights-dtype: empty value" \
  query --weights "$T/A.npy" --queries "$T/X.npy" --method exact --weights-dtype=
expect_fail "--weights-dtype twice" 2 "option --weights-dtype is given twice" \
  query --weights "$T/A.npy" --queries "$T/X.npy" --weights-dtype f16 --weights-dtype f16
expect_fail "--weights-dtype with hs" 2 "option --weights-dtype: only used with --weights" \
  query --method hs --hs-model "$T/A.npy" --queries "$T/X.npy" --weights-dtype f16
expect_fail "--weights-dtype in demo" 2 "demo: unknown option '--weights-dtype'" demo --weights-dtype f16
expect_fail "1-D <u2" 2 "u2_1d.npy: expected a 2-D array, found shape (6,)" \
  query --weights "$T/u2_1d.npy" --queries "$T/X.npy" --weights-dtype bf16
expect_fail "NaN in bf16 A" 1 "query 0: the input contains NaN" \
  query --weights "$T/nan_bf.npy" --queries "$T/X.npy" --method exact --weights-dtype bf16
expect_fail "inf in f16 A" 1 "query 0: the logits overflow float" \
  query --weights "$T/inf16.npy" --queries "$T/X.npy" --method exact
expect_fail "NaN in A, certified" 2 "certified: preparation failed: building the index: the input contains NaN" \
  query --weights "$T/nan.npy" --queries "$T/X.npy" --method certified
expect_fail "certified k > n" 2 "option --k: 4 is larger than the number of rows" \
  query --weights "$T/A16.npy" --queries "$T/X.npy" --method certified --k 4

# ---- invalid command lines -------------------------------------------------------

A=(--weights "$T/A.npy" --queries "$T/X.npy")
expect_fail "--k 0" 2 "option --k: 0 is out of range" query "${A[@]}" --method exact --k 0
expect_fail "--k > n" 2 "option --k: 4 is larger than the number of rows" query "${A[@]}" --method exact --k 4
expect_fail "--k abc" 2 "option --k: 'abc' is not a non-negative integer" query "${A[@]}" --method exact --k abc
expect_fail "--k -1" 2 "option --k: '-1' is not" query "${A[@]}" --method exact --k=-1
expect_fail "--k 1.5" 2 "option --k: '1.5' is not" query "${A[@]}" --method exact --k 1.5
expect_fail "--eps 1" 2 "option --eps: 1 is out of range (must be in (0, 1))" query "${A[@]}" --method exact --eps 1
expect_fail "--eps 0" 2 "option --eps: 0 is out of range" query "${A[@]}" --method exact --eps 0
expect_fail "--eps nan" 2 "option --eps: nan is out of range" query "${A[@]}" --method exact --eps nan
expect_fail "--eps 0.1x" 2 "option --eps: '0.1x' is not a number" query "${A[@]}" --method exact --eps 0.1x
expect_fail "--delta 1.5" 2 "option --delta: 1.5 is out of range" query "${A[@]}" --method exact --delta 1.5
expect_fail "--temperature 0" 2 "option --temperature: 0 is out of range" query "${A[@]}" --method exact --temperature 0
expect_fail "--temperature -1" 2 "option --temperature: -1 is out of range" query "${A[@]}" --method exact --temperature -1
expect_fail "--temperature inf" 2 "option --temperature: inf is out of range" query "${A[@]}" --method exact --temperature inf
expect_fail "--temperature 1e39" 2 "option --temperature: 1e39 is out of range" query "${A[@]}" --method exact --temperature 1e39
expect_fail "--temperature 1e-50" 2 "option --temperature: 1e-50 is out of range" query "${A[@]}" --method exact --temperature 1e-50
expect_fail "--seed -1" 2 "option --seed: '-1' is not" query "${A[@]}" --method exact --seed=-1
expect_fail "--seed 2^64" 2 "option --seed: 18446744073709551616 is out of range" query "${A[@]}" --method exact --seed 18446744073709551616
expect_fail "--calibrate q" 2 "option --calibrate: 2 must be smaller than the number of queries" query "${A[@]}" --method exact --calibrate 2
expect_fail "--method bogus" 2 "unknown method 'bogus' (expected exact, ada, svd, hs or certified)" query "${A[@]}" --method bogus
expect_fail "--isa bogus" 2 "unknown instruction set 'bogus'" query "${A[@]}" --method exact --isa bogus
expect_fail "unknown option" 2 "query: unknown option '--frobnicate'" query "${A[@]}" --method exact --frobnicate 3
expect_fail "missing value" 2 "option --k needs a value" query "${A[@]}" --method exact --k
expect_fail "value is an option" 2 "option --weights needs a value" query --weights --queries "$T/X.npy" --method exact
expect_fail "empty value" 2 "option --out: empty value" query "${A[@]}" --method exact --out ''
expect_fail "twice" 2 "option --k is given twice" query "${A[@]}" --method exact --k 1 --k 2
expect_fail "stray argument" 2 "unexpected argument 'stray'" query "${A[@]}" --method exact stray
expect_fail "no --weights" 2 "--weights is required" query --queries "$T/X.npy" --method exact
expect_fail "no --queries" 2 "--queries is required" query --weights "$T/A.npy" --method exact
expect_fail "demo option in query" 2 "unknown option '--n'" query "${A[@]}" --method exact --n 5
expect_fail "unknown command" 2 "unknown command 'frob'" frob
expect_fail "help with args" 2 "help takes no arguments" help me
expect_fail "--out in a missing dir" 2 "cannot create" query "${A[@]}" --method exact --out "$T/no/such/dir/r.jsonl"
# ---- svd: with W = d (or N = n) SVD-softmax is exact -------------------------
for args in "--svd-window 2" "--svd-window 1 --svd-top 3" ""; do
  # shellcheck disable=SC2086
  if expect_ok "svd [$args]" 2 query "${A[@]}" --method svd $args --k 2; then
    check_query "svd [$args] q0" "$(sed -n 1p "$T/out")" 2 "2 1 3"
    check_query "svd [$args] q1" "$(sed -n 2p "$T/out")" 2 "0.5 -1 -0.5"
    grep -q '"method": "svd".*"svd_window": [12], "svd_top": [23]' "$T/out" && ok ||
      bad "svd [$args] summary: $(tail -n 1 "$T/out")"
  fi
done
expect_fail "svd W > d" 2 "option --svd-window: 3 is larger than d" query "${A[@]}" --method svd --svd-window 3
expect_fail "svd N > n" 2 "option --svd-top: 4 is larger than the number of rows" query "${A[@]}" --method svd --svd-top 4
expect_fail "svd k > N" 2 "option --k: 3 is larger than --svd-top (2)" query "${A[@]}" --method svd --svd-top 2 --k 3
expect_fail "svd W 0" 2 "option --svd-window: 0 is out of range" query "${A[@]}" --method svd --svd-window 0
expect_fail "svd option for exact" 2 "option --svd-window: only used by --method svd" query "${A[@]}" --method exact --svd-window 1
expect_fail "svd option for ada" 2 "option --svd-top: only used by --method svd" query "${A[@]}" --svd-top 1

# ---- hs: a fastText -loss hs model written byte by byte ----------------------
# Supervised, dim 2, words "a" "b", labels counted 5, 3, 2. fastText's tree:
# node 3 = (left: label 2, right: label 1), root 4 = (left: node 3, right:
# label 0); node 3 uses output row 0 = (1, 0), the root row 1 = (0.5, 0).
# p(0) = s(z4), p(1) = s(-z4) s(z3), p(2) = s(-z4) s(-z3), s = sigmoid.
# ft_model HEAD_TAIL_ESCAPES: the model, with its output matrix and flags.
ft_model() {
  local f=$1 tail=$2
  {
    printf "$(le 4 793712314)$(le 4 12)"
    # dim ws epoch minCount neg wordNgrams loss(hs) model(sup) bucket minn maxn lrUpdateRate, t
    printf "$(le 4 2)$(le 4 5)$(le 4 1)$(le 4 1)$(le 4 5)$(le 4 1)$(le 4 1)$(le 4 3)"
    printf "$(le 4 0)$(le 4 0)$(le 4 0)$(le 4 100)$(le 8 4547007122018943789)"
    # size nwords nlabels ntokens pruneidx_size(-1: not pruned)
    printf "$(le 4 5)$(le 4 2)$(le 4 3)$(le 8 20)\xff\xff\xff\xff\xff\xff\xff\xff"
    printf "a\x00$(le 8 6)\x00b\x00$(le 8 4)\x00"
    printf "__label__x\x00$(le 8 5)\x01__label__y\x00$(le 8 3)\x01__label__z\x00$(le 8 2)\x01"
    printf "\x00$(le 8 2)$(le 8 2)$(f32le 0 0 0 0)" # not quantized; input 2 x 2
    printf "$tail"
  } >"$f"
}
ft_model "$T/hs.bin" "\x00$(le 8 3)$(le 8 2)$(f32le 1 0 0.5 0 0 0)"
ft_model "$T/hs_qout.bin" "\x01"
ft_model "$T/hs_short.bin" "\x00$(le 8 3)$(le 8 2)$(f32le 1 0 0.5)"
npy "$T/Xh.npy" 1 "$(dict '<f4' False '(2, 2)')" "$(f32le 1 0 -2 0)"
sig() { awk -v z="$1" 'BEGIN { printf "%.9g", 1 / (1 + exp(-z)) }'; }
if expect_ok "hs" 2 query --method hs --hs-model "$T/hs.bin" --queries "$T/Xh.npy" --k 2; then
  # query 0: z4 = 0.5, z3 = 1 -> p = (s(.5), s(-.5) s(1), s(-.5) s(-1))
  # query 1: z4 = -1, z3 = -2 -> label 2 first, then label 0
  l0=$(sed -n 1p "$T/out")
  l1=$(sed -n 2p "$T/out")
  [ "$(field "$l0" top | tr -d ',')" = "0 1" ] && ok || bad "hs q0 top: $l0"
  [ "$(field "$l1" top | tr -d ',')" = "2 0" ] && ok || bad "hs q1 top: $l1"
  p0=($(field "$l0" p | tr -d ','))
  p1=($(field "$l1" p | tr -d ','))
  close "${p0[0]}" "$(sig 0.5)" 1e-6 && ok || bad "hs q0 p0 ${p0[0]}"
  close "${p0[1]}" "$(awk "BEGIN { printf \"%.9g\", $(sig -0.5) * $(sig 1) }")" 1e-6 && ok || bad "hs q0 p1 ${p0[1]}"
  close "${p1[0]}" "$(awk "BEGIN { printf \"%.9g\", $(sig 1) * $(sig 2) }")" 1e-6 && ok || bad "hs q1 p0 ${p1[0]}"
  close "${p1[1]}" "$(sig -1)" 1e-6 && ok || bad "hs q1 p1 ${p1[1]}"
  [ "$(field "$l0" log_norm)" = 0 ] && ok || bad "hs log_norm: $l0"
  grep -q '"method": "hs".*"n": 3, "d": 2' "$T/out" && ok || bad "hs summary: $(tail -n 1 "$T/out")"
fi
expect_fail "hs without model" 2 "--method hs needs --hs-model" query --method hs --queries "$T/Xh.npy"
expect_fail "hs with weights" 2 "--weights is not used by --method hs" query --method hs --hs-model "$T/hs.bin" --weights "$T/A.npy" --queries "$T/Xh.npy"
expect_fail "hs temperature" 2 "option --temperature: not supported by --method hs" query --method hs --hs-model "$T/hs.bin" --queries "$T/Xh.npy" --temperature 2
expect_fail "hs model for exact" 2 "option --hs-model: only used by --method hs" query "${A[@]}" --method exact --hs-model "$T/hs.bin"
expect_fail "hs quantized" 2 "quantized output matrix (quantize -qout): not supported" query --method hs --hs-model "$T/hs_qout.bin" --queries "$T/Xh.npy"
expect_fail "hs truncated" 2 "truncated: the file ends in the output matrix" query --method hs --hs-model "$T/hs_short.bin" --queries "$T/Xh.npy"
expect_fail "hs not a model" 2 "not a usable fastText -loss hs model" query --method hs --hs-model "$T/A.npy" --queries "$T/Xh.npy"
expect_fail "hs missing file" 2 "cannot open" query --method hs --hs-model "$T/nope.bin" --queries "$T/Xh.npy"
expect_fail "hs d mismatch" 2 "the queries have 3 columns but the node vectors" query --method hs --hs-model "$T/hs.bin" --queries "$T/X_d3.npy"
expect_fail "hs k > classes" 2 "option --k: 4 is larger than the number of classes" query --method hs --hs-model "$T/hs.bin" --queries "$T/Xh.npy" --k 4

# ada (the default method): on heads this small every arm's column budget
# covers all d columns, so the PAC answer is the exact one
for args in "--method ada" ""; do
  # shellcheck disable=SC2086
  if expect_ok "ada [$args]" 2 query "${A[@]}" $args --k 2; then
    check_query "ada [$args] q0" "$(sed -n 1p "$T/out")" 2 "2 1 3"
    check_query "ada [$args] q1" "$(sed -n 2p "$T/out")" 2 "0.5 -1 -0.5"
    if grep -qF '"method": "ada"' <<<"$(tail -n 1 "$T/out")"; then ok; else bad "ada [$args]: summary method"; fi
  fi
done
if expect_ok "ada identity" 4 query --weights "$T/I.npy" --queries "$T/XI.npy" --method ada; then
  got=$(grep '^{"query"' "$T/out" | while read -r l; do field "$l" top; done | paste -sd' ')
  if [ "$got" = "3 1 2 0" ]; then ok; else bad "ada identity: tops $got, expected 3 1 2 0"; fi
fi
if expect_ok "ada calibrate" 1 query "${A[@]}" --method ada --calibrate 1; then
  l=$(sed -n 1p "$T/out")
  qi=$(field "$l" query)
  check_query "ada calibrate q$qi" "$l" 1 "$(logits_of "$qi")"
fi

# write errors are reported, not swallowed
if [ -w /dev/full ]; then
  $WRAP "$TOOL" query "${A[@]}" --method exact >/dev/full 2>"$T/err"
  RC=$?
  if [ "$RC" -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q 'write error' "$T/err"; then ok; else
    bad "/dev/full: exit $RC, stderr: $(cat "$T/err")"
  fi
  $WRAP "$TOOL" query "${A[@]}" --method exact --out /dev/full >/dev/null 2>"$T/err"
  RC=$?
  if [ "$RC" -eq 1 ] && grep -q '/dev/full: write error' "$T/err"; then ok; else
    bad "--out /dev/full: exit $RC, stderr: $(cat "$T/err")"
  fi
fi

# ---- sample: the sampler chain ------------------------------------------------
# expect_sample NAME NLINES ARGS...: exit 0, nothing on stderr, NLINES draw
# lines then one summary line.
expect_sample() {
  local name=$1 nl=$2
  shift 2
  run sample "$@"
  if [ "$RC" -ne 0 ]; then
    bad "$name: exit $RC; stderr: $(head -c 300 "$T/err")"
    return 1
  elif [ -s "$T/err" ]; then
    bad "$name: stderr not empty: $(head -c 300 "$T/err")"
    return 1
  elif [ "$(grep -c '^{"query": ' "$T/out")" -ne "$nl" ] ||
    [ "$(wc -l <"$T/out")" -ne $((nl + 1)) ] ||
    ! tail -n 1 "$T/out" | grep -q '^{"summary": {'; then
    bad "$name: expected $nl draw lines and a summary: $(head -c 400 "$T/out")"
    return 1
  fi
  ok
  return 0
}
# tokens of query Q, one per line, in draw order
tokens_of() { grep "^{\"query\": $1, " "$T/out" | sed -n 's/.*"token": \([0-9]*\).*/\1/p'; }
# p_ref "z1 z2 ..." T TOKEN: the tempered softmax probability of TOKEN
p_ref() {
  awk -v T="$2" -v t="$3" '{ m = $1; for (i = 2; i <= NF; i++) if ($i > m) m = $i
       s = 0; for (i = 1; i <= NF; i++) s += exp(($i - m) / T)
       printf "%.17g\n", exp(($(t + 1) - m) / T) / s }' <<<"$1"
}

# format, and p and log_norm of every line against the reference (no filter)
if expect_sample "sample format" 6 "${A[@]}" --seed 7 --draws 3; then
  l=$(sed -n 1p "$T/out")
  if grep -qE '^\{"query": 0, "draw": 0, "token": [012], "p": [0-9.e+-]+, "log_norm": [0-9.e+-]+, "samples": 6, "ns": [0-9]+\}$' <<<"$l"; then ok; else
    bad "sample format: line not as in the contract: $l"
  fi
  for ln in 1 2 3 4 5 6; do
    l=$(sed -n "${ln}p" "$T/out")
    qq=$(field "$l" query)
    dd=$(field "$l" draw)
    tok=$(field "$l" token)
    if [ "$qq" = $(((ln - 1) / 3)) ] && [ "$dd" = $(((ln - 1) % 3)) ]; then ok; else
      bad "sample format: line $ln is query $qq draw $dd"
    fi
    if [ "$qq" = 0 ]; then zz="2 1 3"; else zz="0.5 -1 -0.5"; fi
    if close "$(field "$l" p)" "$(p_ref "$zz" 1 "$tok")" 1e-5; then ok; else
      bad "sample q$qq d$dd: p $(field "$l" p), expected $(p_ref "$zz" 1 "$tok")"
    fi
    if close "$(field "$l" log_norm)" "$(logsumexp_ref "$zz")" 1e-6; then ok; else
      bad "sample q$qq: log_norm $(field "$l" log_norm), expected $(logsumexp_ref "$zz")"
    fi
  done
  s=$(tail -n 1 "$T/out")
  for kv in '"method": "exact"' '"queries": 2' '"draws": 3' '"n": 3' '"d": 2' \
    '"mean_samples": 6' '"gain": 1' '"ci_scale": 1' '"certified": false' '"prepare_ns": ' \
    '"mean_ns": ' '"median_ns": ' '"temperature": 1' '"top_k": 0' '"top_p": 1' \
    '"min_p": 0' '"seed": 7' '"isa": "'; do
    if grep -qF -- "$kv" <<<"$s"; then ok; else bad "sample format: summary lacks $kv: $s"; fi
  done
  if command -v python3 >/dev/null 2>&1; then
    if python3 -c 'import json,sys
for line in open(sys.argv[1]): json.loads(line)' "$T/out" 2>/dev/null; then ok; else bad "sample: output is not valid JSON Lines"; fi
  fi
fi

# same seed, same draws; the draws of (query q, draw i) depend only on
# (seed, q, i): the first three of five are the three of a --draws 3 run
run sample "${A[@]}" --seed 11 --draws 3
strip_times "$T/out" | grep '^{"query"' >"$T/s1"
run sample "${A[@]}" --seed 11 --draws 3
strip_times "$T/out" | grep '^{"query"' >"$T/s2"
if [ -s "$T/s1" ] && cmp -s "$T/s1" "$T/s2"; then ok; else bad "sample: two runs with one seed differ"; fi
run sample "${A[@]}" --seed 11 --draws 5
strip_times "$T/out" | grep -E '"draw": [012],' >"$T/s3"
if cmp -s "$T/s1" "$T/s3"; then ok; else bad "sample: --draws 5 does not start with the draws of --draws 3"; fi
run sample "${A[@]}" --seed 11 --draws 5 --out "$T/sample.jsonl"
if [ "$RC" -eq 0 ] && [ ! -s "$T/out" ] && [ "$(strip_times "$T/sample.jsonl" | grep -cE '"draw": [012],')" = 6 ]; then ok; else
  bad "sample --out: exit $RC"
fi

# the draws follow the distribution: 4000 draws of query 0 (p = 0.245,
# 0.090, 0.665), each frequency within 5 standard deviations (a false alarm
# has probability below 1e-5), and another seed draws other tokens
if expect_sample "sample 4000 draws" 8000 "${A[@]}" --seed 5 --draws 4000; then
  tokens_of 0 | sort | uniq -c | awk '{ print $2, $1 }' >"$T/counts"
  for t in 0 1 2; do
    c=$(awk -v t="$t" '$1 == t { print $2 }' "$T/counts")
    pr=$(p_ref "2 1 3" 1 "$t")
    if awk -v c="${c:-0}" -v p="$pr" 'BEGIN { n = 4000; s = sqrt(n * p * (1 - p)); d = c - n * p; if (d < 0) d = -d; exit !(d <= 5 * s) }'; then ok; else
      bad "sample: token $t drawn ${c:-0} times in 4000, expected $(awk -v p="$pr" 'BEGIN { print 4000 * p }')"
    fi
  done
  tokens_of 0 >"$T/seed5"
  run sample "${A[@]}" --seed 6 --draws 4000
  if [ "$RC" -eq 0 ] && ! cmp -s "$T/seed5" <(tokens_of 0); then ok; else bad "sample: seeds 5 and 6 draw the same 4000 tokens"; fi
fi

# filters that leave one token, and greedy: always the argmax, p = 1
for args in "--temperature 0" "--top-k 1" "--min-p 1" "--top-p 0.5 --top-k 2" "--temperature 0.01"; do
  # shellcheck disable=SC2086
  if expect_sample "sample [$args]" 100 "${A[@]}" $args --draws 50; then
    if [ "$(tokens_of 0 | sort -u | paste -sd' ')" = 2 ] && [ "$(tokens_of 1 | sort -u | paste -sd' ')" = 0 ]; then ok; else
      bad "sample [$args]: tokens $(tokens_of 0 | sort -u | paste -sd,) / $(tokens_of 1 | sort -u | paste -sd,), expected 2 / 0"
    fi
    if [ "$(grep -c '"p": 1,' "$T/out")" = 100 ]; then ok; else bad "sample [$args]: p is not 1 on every line"; fi
  fi
done
# top-k 2 at T = 0.5: tokens 2 and 0 of query 0, p renormalised over them
if expect_sample "sample top-k 2 T 0.5" 400 "${A[@]}" --top-k 2 --temperature 0.5 --draws 200; then
  if [ "$(tokens_of 0 | sort -u | paste -sd' ')" = "0 2" ]; then ok; else bad "sample top-k 2: query 0 drew $(tokens_of 0 | sort -u | paste -sd,)"; fi
  l=$(grep '^{"query": 0, ' "$T/out" | grep -m 1 '"token": 0,')
  want=$(awk 'BEGIN { a = exp((2 - 3) / 0.5); printf "%.17g", a / (a + 1) }')
  if close "$(field "$l" p)" "$want" 1e-5; then ok; else bad "sample top-k 2: p $(field "$l" p), expected $want"; fi
fi

# --method ada draws with the random numbers of --method exact: with one
# seed the two agree token by token (with probability >= 1 - delta per draw;
# on this 3-row head the adaptive sampler finishes exactly, so always)
for args in "" "--top-k 2" "--temperature 0.5 --min-p 0.1"; do
  # shellcheck disable=SC2086
  if expect_sample "sample exact [$args]" 100 "${A[@]}" --seed 21 --draws 50 $args; then
    sed -n 's/^{"query": \([0-9]*\), "draw": \([0-9]*\), "token": \([0-9]*\).*/\1 \2 \3/p' "$T/out" >"$T/se"
    # shellcheck disable=SC2086
    if expect_sample "sample ada [$args]" 100 "${A[@]}" --seed 21 --draws 50 --method ada $args; then
      sed -n 's/^{"query": \([0-9]*\), "draw": \([0-9]*\), "token": \([0-9]*\).*/\1 \2 \3/p' "$T/out" >"$T/sa"
      if [ -s "$T/se" ] && cmp -s "$T/se" "$T/sa"; then ok; else bad "sample ada [$args]: draws differ from --method exact: $(diff "$T/se" "$T/sa" | head -3)"; fi
    fi
  fi
done
if expect_sample "sample ada summary" 6 "${A[@]}" --method ada --draws 3 --eps 0.1 --delta 0.05; then
  s=$(tail -n 1 "$T/out")
  for kv in '"method": "ada"' '"draws": 3' '"ci_scale": 1'; do
    if grep -qF -- "$kv" <<<"$s"; then ok; else bad "sample ada summary lacks $kv: $s"; fi
  done
fi

# refusals: one line, exit 2
expect_fail "sample svd" 2 "sample: --method svd does not sample" sample "${A[@]}" --method svd
expect_fail "sample T -1" 2 "option --temperature: -1 is out of range" sample "${A[@]}" --temperature -1
expect_fail "sample T nan" 2 "option --temperature: nan is out of range" sample "${A[@]}" --temperature nan
expect_fail "sample T inf" 2 "option --temperature: inf is out of range" sample "${A[@]}" --temperature inf
expect_fail "sample T 1e-50" 2 "option --temperature: 1e-50 is out of range" sample "${A[@]}" --temperature 1e-50
expect_fail "sample top-p 1.5" 2 "option --top-p: 1.5 is out of range (must be in [0, 1])" sample "${A[@]}" --top-p 1.5
expect_fail "sample top-p -0.1" 2 "option --top-p: -0.1 is out of range" sample "${A[@]}" --top-p=-0.1
expect_fail "sample top-p nan" 2 "option --top-p: nan is out of range" sample "${A[@]}" --top-p nan
expect_fail "sample min-p 2" 2 "option --min-p: 2 is out of range" sample "${A[@]}" --min-p 2
expect_fail "sample min-p x" 2 "option --min-p: 'x' is not a number" sample "${A[@]}" --min-p x
expect_fail "sample top-k -1" 2 "option --top-k: '-1' is not a non-negative integer" sample "${A[@]}" --top-k=-1
expect_fail "sample draws 0" 2 "option --draws: 0 is out of range" sample "${A[@]}" --draws 0
expect_fail "sample draws 2^31+1" 2 "option --draws: 2147483649 is out of range" sample "${A[@]}" --draws 2147483649
expect_fail "sample eps for exact" 2 "option --eps: only used by --method ada" sample "${A[@]}" --eps 0.2
expect_fail "sample calibrate for exact" 2 "option --calibrate: only used by --method ada" sample "${A[@]}" --calibrate 1
expect_fail "sample --k" 2 "sample: unknown option '--k'" sample "${A[@]}" --k 2
expect_fail "sample no weights" 2 "sample: --weights is required" sample --queries "$T/X.npy"
expect_fail "sample no queries" 2 "sample: --queries is required" sample --weights "$T/A.npy"
expect_fail "sample d mismatch" 2 "the queries have 3 columns" sample --weights "$T/A.npy" --queries "$T/X_d3.npy"
expect_fail "sample twice" 2 "option --top-k is given twice" sample "${A[@]}" --top-k 1 --top-k 2
expect_fail "sample NaN in A" 1 "query 0 draw 0: the input contains NaN" sample --weights "$T/nan.npy" --queries "$T/X.npy"
expect_fail "sample inf in A" 1 "query 0: the logits overflow float" sample --weights "$T/inf.npy" --queries "$T/X.npy"

# ---- help, usage, demo -----------------------------------------------------------

for h in --help help -h "query --help" "demo --help" "sample --help"; do
  run $h
  if [ "$RC" -eq 0 ] && grep -q '^usage: adasoftmax' "$T/out" && [ ! -s "$T/err" ]; then ok; else
    bad "$h: exit $RC or no usage on stdout"
  fi
done
run
if [ "$RC" -eq 2 ] && grep -q '^usage: adasoftmax' "$T/err" && [ ! -s "$T/out" ]; then ok; else
  bad "no arguments: exit $RC, expected 2 with the usage on stderr"
fi
run --version
if [ "$RC" -eq 0 ] && grep -qE '^adasoftmax [0-9]+\.[0-9]+\.[0-9]+$' "$T/out"; then ok; else bad "--version"; fi

# the demo: one row per method, each right on every timed query (exact and
# the methods that fall back to it on a head this small), a takeaway last
run demo --n 500 --d 32 --queries 3 --k 2 --calibrate 40
if [ "$RC" -eq 0 ] && [ ! -s "$T/err" ] &&
  grep -q '^adasoftmax demo: .* n=500 x d=32 ' "$T/out" &&
  grep -qE '^exact +[0-9.]+ +[0-9.]+ +1\.00x +3/3 ' "$T/out" &&
  grep -qE '^ada +[0-9.]+ +[0-9.]+ +[0-9.]+x +3/3 ' "$T/out" &&
  grep -qE '^svd +[0-9.]+ +[0-9.]+ +[0-9.]+x +[0-3]/3 ' "$T/out" &&
  grep -q '^hs .*needs a tree' "$T/out" &&
  grep -q 'calibration .* on 40 queries' "$T/out" &&
  tail -n 1 "$T/out" | grep -q '^takeaway: AdaSoftmax'; then
  ok
else
  bad "demo: exit $RC: $(head -c 1200 "$T/out") $(head -c 300 "$T/err")"
fi
expect_fail "demo --n 0" 2 "option --n: 0 is out of range" demo --n 0
expect_fail "demo --n 8" 2 "demo: --n and --d must be at least 16" demo --n 8
expect_fail "demo --weights" 2 "demo: unknown option '--weights'" demo --weights "$T/A.npy"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
