#!/bin/sh
# bench/run.sh - build and run the adasoftmax benchmarks; print markdown tables.
#
#   bench/run.sh            both benchmarks (about 2-4 minutes)
#   bench/run.sh --quick    3 repetitions, lengths <= 4e6: checks the harness
#   bench/run.sh softmax    only bench_softmax (or: gemv)
#   bench/run.sh heads      AdaSoftmax vs exact vs OpenBLAS on the real heads
#                           and the LLM-shaped ones (bench_heads; builds the
#                           heads with bench/data/build_heads.sh and
#                           build_llm_heads.sh if they are not cached; about
#                           30 minutes once they are; BENCH_HEADS="words wide
#                           llm-gpt2 llm-llama2 llm-llama3" picks them)
#   bench/run.sh half       f32 / f16 / bf16 weights and the certified top-k
#                           on the GPT-2, Llama-2, Llama-3 shapes, and the
#                           certified top-k against the exact path on every
#                           query of the real and synthetic heads
#                           (bench_half; about 5 minutes, 6 GB of memory)
#   bench/run.sh sample     the sampler chain: on a 128256-logit vector
#                           against softmax and sorting, and fused exact
#                           sampling against the exact top-1 path (also on
#                           the real heads when they are cached), and
#                           adaptive against fused exact sampling on the
#                           LLM-shaped GPT-2 and Llama-2 heads when cached
#                           (~8 minutes)
#
# Output (stdout, also saved to $BUILD/bench-results.md): a machine line, then
# one markdown table per benchmark, ready to paste into README.md. Progress
# goes to stderr. The machines here are shared: every figure is a median of
# interleaved repetitions, but numbers taken while others compile are noisy
# (the load average is printed before and after for that reason).
#
# Environment: BENCH_BUILD_DIR (default build-bench), BENCH_REPS, BENCH_QUICK,
# CC (fallback build only).
set -eu

cd "$(dirname "$0")/.."
BUILD=${BENCH_BUILD_DIR:-build-bench}
WHICH=all
for arg in "$@"; do
  case $arg in
    --quick) BENCH_QUICK=1; export BENCH_QUICK ;;
    softmax|gemv|heads|half|sample) WHICH=$arg ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

# 1. Debian packages for the comparison libraries.
missing=
for pkg in libopenblas-dev libxnnpack-dev libpthreadpool-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' ||
    missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "run.sh: installing$missing" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
  # shellcheck disable=SC2086 # word splitting of the package list is wanted
  $SUDO apt-get install -y --no-install-recommends $missing >&2 || {
    echo "run.sh: could not install$missing" >&2; exit 1; }
fi

# 2. Build: Meson if the root project has the `bench` option (tests, examples
#    and fuzzers off: only the two benchmarks are compiled), else plain cc.
meson_build() {
  [ -f meson.build ] && grep -q "'bench'" meson_options.txt 2>/dev/null ||
    return 1
  if [ -f "$BUILD/build.ninja" ]; then
    meson configure "$BUILD" -Dbench=enabled -Dbuildtype=release >&2 ||
      return 1
  else
    meson setup "$BUILD" -Dbench=enabled --buildtype=release \
      -Dtests=disabled -Dexamples=disabled -Dfuzz=disabled >&2 || return 1
  fi
  if [ "$WHICH" = sample ]; then
    ninja -C "$BUILD" -j 2 bench/bench_sample >&2
  else
    ninja -C "$BUILD" -j 2 bench/bench_softmax bench/bench_gemv \
      bench/bench_heads bench/bench_half >&2
  fi
}
if meson_build; then
  SOFTMAX=$BUILD/bench/bench_softmax
  GEMV=$BUILD/bench/bench_gemv
  HEADS=$BUILD/bench/bench_heads
  HALF=$BUILD/bench/bench_half
  SAMPLE=$BUILD/bench/bench_sample
else
  echo "run.sh: no usable Meson setup: building with ${CC:-gcc}" >&2
  BUILD=$BUILD-cc
  mkdir -p "$BUILD"
  CFLAGS="-O2 -std=c11 -I."
  # shellcheck disable=SC2086 # flag lists are split on purpose below
  ${CC:-gcc} $CFLAGS bench/bench_softmax.c -o "$BUILD/bench_softmax" \
    -lXNNPACK -lpthreadpool -lpthread -lm
  OPENBLAS_CFLAGS=$(pkg-config --cflags openblas 2>/dev/null || true)
  OPENBLAS_LIBS=$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
  # shellcheck disable=SC2086
  ${CC:-gcc} $CFLAGS $OPENBLAS_CFLAGS bench/bench_gemv.c \
    -o "$BUILD/bench_gemv" $OPENBLAS_LIBS -lm
  # shellcheck disable=SC2086
  ${CC:-gcc} $CFLAGS $OPENBLAS_CFLAGS bench/bench_heads.c \
    -o "$BUILD/bench_heads" $OPENBLAS_LIBS -lm
  # shellcheck disable=SC2086
  ${CC:-gcc} $CFLAGS bench/bench_half.c -o "$BUILD/bench_half" -lm
  SOFTMAX=$BUILD/bench_softmax
  GEMV=$BUILD/bench_gemv
  HEADS=$BUILD/bench_heads
  HALF=$BUILD/bench_half
  SAMPLE=$BUILD/bench_sample
  if [ "$WHICH" = sample ]; then
    ${CXX:-g++} -O2 -std=c++11 -I. bench/bench_sample.cc -o "$SAMPLE" -lm
  fi
fi

# Run private copies: other jobs on a shared machine may wipe build dirs.
RUNDIR=$(mktemp -d "${TMPDIR:-/tmp}/adasm-bench.XXXXXX")
trap 'rm -rf "$RUNDIR"' EXIT INT TERM
cp "$SOFTMAX" "$RUNDIR/bench_softmax" 2>/dev/null || true
cp "$GEMV" "$RUNDIR/bench_gemv" 2>/dev/null || true
cp "$HEADS" "$RUNDIR/bench_heads" 2>/dev/null || true
cp "$HALF" "$RUNDIR/bench_half" 2>/dev/null || true
HALF=$RUNDIR/bench_half
cp "$SAMPLE" "$RUNDIR/bench_sample" 2>/dev/null || true
SOFTMAX=$RUNDIR/bench_softmax
GEMV=$RUNDIR/bench_gemv
HEADS=$RUNDIR/bench_heads
SAMPLE=$RUNDIR/bench_sample

# The real heads (cached outside the repository).
DATA=${ADASM_DATA:-$HOME/.cache/adasoftmax-data}
HEADS_LIST=${BENCH_HEADS:-words wide llm-gpt2 llm-llama2 llm-llama3}
if [ "$WHICH" = heads ]; then
  for h in $HEADS_LIST; do
    case $h in
      words|wide) [ -f "$DATA/$h/X.npy" ] || bash bench/data/build_heads.sh >&2 ;;
      llm-*) [ -f "$DATA/$h/X.npy" ] || bash bench/data/build_llm_heads.sh "${h#llm-}" >&2 ;;
      *) echo "run.sh: unknown head '$h'" >&2; exit 2 ;;
    esac
  done
fi
if [ "$WHICH" = half ] &&
  { [ ! -f "$DATA/words/X.npy" ] || [ ! -f "$DATA/wide/X.npy" ]; }; then
  bash bench/data/build_heads.sh >&2
fi

# 3. One thread everywhere: OpenBLAS pthread and OpenMP builds, XNNPACK gets
#    no thread pool anyway.
OPENBLAS_NUM_THREADS=1
OMP_NUM_THREADS=1
export OPENBLAS_NUM_THREADS OMP_NUM_THREADS

mkdir -p "$BUILD"
RESULTS=$BUILD/bench-results.md
{
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
  fam=$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
  mod=$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
  ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')
  mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
  ccv=$(${CC:-cc} --version 2>/dev/null | head -n 1)
  echo "# adasoftmax benchmarks"
  echo
  echo "Machine: ${cpu:-unknown CPU} (family ${fam:-?}, model ${mod:-?}), $ncpu CPUs, $mem;" \
    "$(uname -sr); $ccv; $(date -u '+%Y-%m-%d %H:%M UTC');" \
    "load average before: $(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null)"
  echo
  if [ "$WHICH" = heads ]; then
    echo "AdaSoftmax, eps = 0.3, calibrated on 200 queries drawn at random,"
    echo "judged on the others (\`bench_heads\`):"
    for h in $HEADS_LIST; do
      echo
      "$HEADS" "$h" "$DATA/$h/A.npy" "$DATA/$h/X.npy" ||
        echo "**bench_heads $h failed (exit status $?)**"
    done
    echo
  fi
  if [ "$WHICH" = half ]; then
    "$HALF" || echo "**bench_half failed (exit status $?)**"
    echo
    echo "Certified top-k against the float32 exact path, every query:"
    echo
    "$HALF" agree words "$DATA/words/A.npy" "$DATA/words/X.npy" ||
      echo "**bench_half agree failed (exit status $?)**"
    BENCH_NO_HEADER=1 "$HALF" agree wide "$DATA/wide/A.npy" "$DATA/wide/X.npy" ||
      echo "**bench_half agree failed (exit status $?)**"
    "$HALF" synth | tail -n +3 || echo "**bench_half synth failed (exit status $?)**"
    echo
  fi
  if [ "$WHICH" = sample ]; then
    set --
    for h in words wide; do
      if [ -f "$DATA/$h/A.npy" ]; then set -- "$@" "$DATA/$h"; fi
    done
    "$SAMPLE" chain || echo "**bench_sample failed (exit status $?)**"
    "$SAMPLE" fused "$@" || echo "**bench_sample failed (exit status $?)**"
    [ $# -eq 2 ] || echo "(real heads not cached: bash bench/data/build_heads.sh builds them)"
    set --
    for h in llm-gpt2 llm-llama2; do
      if [ -f "$DATA/$h/A.npy" ]; then set -- "$@" "$DATA/$h"; fi
    done
    if [ $# -gt 0 ]; then
      "$SAMPLE" ada "$@" || echo "**bench_sample ada failed (exit status $?)**"
    else
      echo "(LLM-shaped heads not cached: bash bench/data/build_llm_heads.sh gpt2 llama2 builds them)"
    fi
    echo
  fi
  if [ "$WHICH" = all ] || [ "$WHICH" = softmax ]; then
    "$SOFTMAX" || echo "**bench_softmax failed (exit status $?)**"
    echo
  fi
  if [ "$WHICH" = all ] || [ "$WHICH" = gemv ]; then
    "$GEMV" || echo "**bench_gemv failed (exit status $?)**"
    echo
  fi
  echo "Load average after: $(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null)"
} | tee "$RESULTS"
echo "run.sh: results saved to $RESULTS" >&2
