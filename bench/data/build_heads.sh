#!/usr/bin/env bash
# build_heads.sh - build REAL softmax heads and query sets from Debian packages.
#
#   bench/data/build_heads.sh [--force] [--only words|wide] [--help]
#
# Output (never in the repository): ${ADASM_DATA:-$HOME/.cache/adasoftmax-data}
#   words/A.npy        n x 256 '<f4'  output matrix of a fastText next-word model (-loss ns)
#   words/X.npy        Q x 256 '<f4'  hidden vectors of held-out contexts (the queries)
#   words/labels.npy   Q '<i4'        row of A of the true next word, per query
#   words/names.txt    the n label words, in row order
#   words/model_ns.bin, words/model_hs.bin   fastText models (-loss ns / -loss hs)
#   words/X_hs.npy, words/labels_hs.npy      the same queries for model_hs.bin
#   words/corpus.txt, words/queries.txt, words/valid.txt, words/sources.tsv
#   wide/A.npy         10 x 25088 '<f4'  softmax regression on a fixed wide feature map
#   wide/X.npy         Q x 25088 '<f4'   features of Fashion-MNIST test images
#   wide/labels.npy    Q '<i4'           their true classes
#   words/check.txt, wide/train.log       export check against fastText; training report
#   build.log          what was done, with timings
# Every step is skipped when its outputs exist; --force rebuilds everything.
# Needs Debian (apt-get, dpkg-deb); installs gcc and fasttext when missing
# (as root, or with password-less sudo). Text packages are only downloaded.
# See bench/data/README.md for the sources, the choices and the measured results.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${ADASM_DATA:-$HOME/.cache/adasoftmax-data}
FORCE=0
ONLY=all

# Word-head parameters: a change is noticed (words/params.txt) and rebuilds the
# examples, models and exports. Wide-head parameters need --force.
CTX_WORDS=${CTX_WORDS:-8}              # previous words per context
CTX_TAG=${CTX_TAG:-2}                  # the nearest CTX_TAG of them are position-tagged (word@1, word@2)
LABELS_MIN=30000                       # fail below this many labels
LABELS_MAX=${LABELS_MAX:-50000}        # keep the most frequent next-words, at most this many
TRAIN_LINES=${TRAIN_LINES:-11000000}   # training examples drawn (uniformly) from the corpus
NQUERIES=${NQUERIES:-2000}             # held-out queries
NVALID=20000                           # held-out lines for `fasttext test` (hs model)
FT_DIM=256
FT_COMMON=(-dim "$FT_DIM" -epoch 1 -minCount 40 -minCountLabel 1 -wordNgrams 1 -minn 0 -maxn 0
           -bucket 0 -thread 2 -verbose 2)
FT_NS=(-loss ns -neg 5 -lr 0.3)
FT_HS=(-loss hs -lr 0.3)
# Wide-head parameters.
WIDE_EPOCHS=${WIDE_EPOCHS:-3}
WIDE_QUERIES=${WIDE_QUERIES:-2000}

# Text sources: Debian package, and how its English text is extracted.
TEXT_SOURCES=(
  "linux-doc-6.1 linux"
  "dict-gcide dict"
  "dict-wn dict"
  "dict-foldoc dict"
  "dict-jargon dict"
  "python3.11-doc sphinx"
  "llvm-14-doc sphinx"
  "python-pandas-doc sphinx"
  "cmake-doc sphinx"
  "perl-doc pod"
  "postgresql-doc-15 html"
  "nodejs-doc mdgz"
  "debian-reference-en html"
)

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --only) shift; ONLY=${1:-}; case "$ONLY" in words|wide) ;; *) echo "build_heads: --only takes words or wide" >&2; exit 2 ;; esac ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build_heads: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

LOG="$CACHE/build.log"
mkdir -p "$CACHE/words" "$CACHE/wide" "$CACHE/bin" "$CACHE/debs" "$CACHE/src"
say() { printf '[build_heads %s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$LOG"; }
die() { printf 'build_heads: error: %s\n' "$*" | tee -a "$LOG" >&2; exit 1; }
trap 'die "failed at line $LINENO (command: $BASH_COMMAND); see $LOG"' ERR

T0=$(date +%s)
STEP_T=0
step_begin() { STEP_T=$(date +%s); say "$*"; }
step_end() { say "  done in $(( $(date +%s) - STEP_T )) s"; }

# ---- tools ---------------------------------------------------------------
APT_UPDATED=0
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else die "need root to run: $* (run it yourself, then rerun this script)"; fi
}
apt_update_once() {
  [ "$APT_UPDATED" = 1 ] && return 0
  as_root apt-get update -qq >>"$LOG" 2>&1 || die "apt-get update failed (see $LOG)"
  APT_UPDATED=1
}
apt_install() { # apt_install PKG...: install what is missing
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} = 0 ] && return 0
  say "installing with apt-get: ${missing[*]}"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1; then
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 \
      || die "apt-get install ${missing[*]} failed (see $LOG)"
  fi
}
# fetch_deb PKG: download PKG's .deb into $CACHE/debs (no installation: only its files are used)
fetch_deb() {
  local p=$1 f
  f=$(find "$CACHE/debs" -maxdepth 1 -name "${p}_*.deb" -print -quit)
  if [ -z "$f" ]; then
    if ! (cd "$CACHE/debs" && apt-get download -q "$p" >>"$LOG" 2>&1); then
      apt_update_once
      (cd "$CACHE/debs" && apt-get download -q "$p" >>"$LOG" 2>&1) || die "apt-get download $p failed: is it in this Debian release? (see $LOG)"
    fi
    f=$(find "$CACHE/debs" -maxdepth 1 -name "${p}_*.deb" -print -quit)
  fi
  [ -n "$f" ] || die "no .deb for $p"
  printf '%s\n' "$f"
}

command -v gcc >/dev/null || apt_install gcc libc6-dev
CFLAGS=(-std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wconversion)
build_tool() { # build_tool NAME [extra flags]: compile bench/data/NAME.c when newer than the binary
  local n=$1; shift
  if [ ! -x "$CACHE/bin/$n" ] || [ "$HERE/$n.c" -nt "$CACHE/bin/$n" ]; then
    gcc "${CFLAGS[@]}" "$@" -o "$CACHE/bin/$n" "$HERE/$n.c" -lm || die "cannot compile $HERE/$n.c"
  fi
}
npy_shape() { # prints the shape recorded in a .npy header
  head -c 128 "$1" | tr -d '\000' | grep -ao "'shape': ([0-9, ]*)" | sed "s/'shape': //"
}

if [ "$FORCE" = 1 ]; then
  say "--force: removing previous outputs"
  if [ "$ONLY" != wide ]; then rm -rf "$CACHE/words" "$CACHE/src"; fi
  if [ "$ONLY" != words ]; then rm -rf "$CACHE/wide"; fi
  rm -f "$CACHE"/bin/*
  mkdir -p "$CACHE/words" "$CACHE/wide" "$CACHE/src"
fi
say "cache: $CACHE"

# ---- 1. words: corpus -> fastText models -> head + queries -----------------
# text_of MODE DIR: print the English text of an extracted package on stdout
text_of() {
  local mode=$1 dir=$2
  case "$mode" in
    linux)  find "$dir" -path '*/Documentation/*' \( -name '*.rst.gz' -o -name '*.txt.gz' \) -print0 | sort -z | xargs -0 -r zcat ;;
    dict)   # drop the source tags that end most entries ("[1913 Webster]")
            find "$dir" -name '*.dict.dz' -print0 | sort -z | xargs -0 -r zcat | sed -E '/^[[:space:]]*\[[^]]*\][[:space:]]*$/d' ;;
    sphinx) find "$dir" -path '*/_sources/*' -name '*.txt' -print0 | sort -z | xargs -0 -r cat ;;
    pod)    find "$dir" -name '*.pod' -print0 | sort -z | xargs -0 -r cat ;;
    mdgz)   find "$dir" -name '*.md.gz' -print0 | sort -z | xargs -0 -r zcat ;;
    html)   find "$dir" -name '*.html' -print0 | sort -z | xargs -0 -r perl -0777 -pe \
              's/<(script|style)\b.*?<\/\1>//gis; s/<[^>]*>/ /gs; s/&nbsp;/ /g; s/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&#39;|&rsquo;/\x27/g; s/&amp;/&/g; s/&#?\w+;/ /g' ;;
    *) die "unknown text mode $mode" ;;
  esac
}
# members of the .deb to unpack, per mode (keeps the unpacked size small)
members_of() {
  case "$1" in
    linux) echo '*/Documentation/*' ;; dict) echo '*.dict.dz' ;; sphinx) echo '*/_sources/*' ;;
    pod) echo '*.pod' ;; mdgz) echo '*.md.gz' ;; html) echo '*.html' ;;
  esac
}

build_words() {
  local W="$CACHE/words" B="$CACHE/bin"
  command -v fasttext >/dev/null || apt_install fasttext
  command -v perl >/dev/null || apt_install perl
  build_tool ctxgen
  build_tool ftexport

  if [ ! -s "$W/corpus.txt" ]; then
    step_begin "words: fetching and extracting ${#TEXT_SOURCES[@]} Debian text packages"
    local tmp="$W/corpus.txt.tmp" entry pkg mode deb dir nw total=0
    : >"$tmp"
    printf 'package\tversion\tdeb_bytes\twords\n' >"$W/sources.tsv.tmp"
    for entry in "${TEXT_SOURCES[@]}"; do
      read -r pkg mode <<<"$entry"
      deb=$(fetch_deb "$pkg")
      dir="$CACHE/src/$pkg"
      if [ ! -d "$dir" ]; then
        mkdir -p "$dir.tmp"
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir.tmp" --wildcards "$(members_of "$mode")" 2>>"$LOG" \
          || die "cannot unpack $deb"
        mv "$dir.tmp" "$dir"
      fi
      # one document per package: '\f' separates documents for ctxgen
      nw=$(text_of "$mode" "$dir" | tee -a "$tmp" | wc -w)
      printf '\f\n' >>"$tmp"
      [ "$nw" -gt 0 ] || die "no text found in $pkg"
      total=$((total + nw))
      printf '%s\t%s\t%s\t%s\n' "$pkg" "$(dpkg-deb -f "$deb" Version)" "$(stat -c %s "$deb")" "$nw" >>"$W/sources.tsv.tmp"
      say "  $pkg: $nw words (whitespace-separated)"
    done
    mv "$W/sources.tsv.tmp" "$W/sources.tsv"
    mv "$tmp" "$W/corpus.txt"
    say "  corpus: $total words, $(stat -c %s "$W/corpus.txt") bytes"
    step_end
  fi

  # the examples and models depend on these: rebuild them when one changed
  local params="ctx=$CTX_WORDS tag=$CTX_TAG labels<=$LABELS_MAX drawn=$TRAIN_LINES queries=$NQUERIES valid=$NVALID fasttext: ${FT_COMMON[*]} | ${FT_NS[*]} | ${FT_HS[*]}"
  if [ -f "$W/params.txt" ] && [ "$(cat "$W/params.txt")" != "$params" ]; then
    say "words: parameters changed since the last build: rebuilding examples, models and exports"
    (cd "$W" && rm -f train.txt valid.txt queries.txt model_ns.bin model_hs.bin A.npy X.npy labels.npy X_hs.npy labels_hs.npy names.txt check.txt)
  fi
  printf '%s\n' "$params" >"$W/params.txt"

  local have_models=0
  [ -s "$W/model_ns.bin" ] && [ -s "$W/model_hs.bin" ] && have_models=1
  if [ ! -s "$W/queries.txt" ] || { [ "$have_models" = 0 ] && [ ! -s "$W/train.txt" ]; }; then
    step_begin "words: making next-word examples (context $CTX_WORDS words, at most $LABELS_MAX labels, $TRAIN_LINES drawn)"
    "$B/ctxgen" "$CTX_WORDS" "$CTX_TAG" "$LABELS_MIN" "$LABELS_MAX" "$TRAIN_LINES" "$NQUERIES" "$NVALID" \
      "$W/train.txt.tmp" "$W/valid.txt.tmp" "$W/queries.txt.tmp" <"$W/corpus.txt" 2>&1 | tee -a "$LOG" \
      || die "ctxgen failed"
    [ -s "$W/queries.txt.tmp" ] || die "ctxgen failed"
    mv "$W/train.txt.tmp" "$W/train.txt"; mv "$W/valid.txt.tmp" "$W/valid.txt"; mv "$W/queries.txt.tmp" "$W/queries.txt"
    step_end
  fi

  local loss
  for loss in ns hs; do
    [ -s "$W/model_$loss.bin" ] && continue
    local args=("${FT_NS[@]}")
    [ "$loss" = hs ] && args=("${FT_HS[@]}")
    step_begin "words: fasttext supervised ${FT_COMMON[*]} ${args[*]}"
    fasttext supervised -input "$W/train.txt" -output "$W/tmp_$loss" "${FT_COMMON[@]}" "${args[@]}" 2>&1 \
      | tr '\r' '\n' | grep -av '^Progress\|^Read ' | tee -a "$LOG" || true
    [ -s "$W/tmp_$loss.bin" ] || die "fasttext training (-loss $loss) failed (see $LOG)"
    rm -f "$W/tmp_$loss.vec"
    mv "$W/tmp_$loss.bin" "$W/model_$loss.bin"
    # (the flat ns model is scored by ftexport below: its `fasttext test` is slow, n*d per line)
    if [ "$loss" = hs ]; then
      say "  fasttext test, held-out: $(fasttext test "$W/model_$loss.bin" "$W/valid.txt" 1 | tr '\n\t' '  ')"
    fi
    step_end
  done
  # train.txt is large and is regenerated from corpus.txt when needed
  rm -f "$W/train.txt"

  if [ ! -s "$W/A.npy" ] || [ ! -s "$W/X.npy" ] || [ ! -s "$W/labels.npy" ] || [ ! -s "$W/X_hs.npy" ]; then
    step_begin "words: exporting the head and the queries; checking them against fastText"
    fasttext predict "$W/model_ns.bin" "$W/queries.txt" 1 >"$W/check_pred.txt"
    fasttext print-sentence-vectors "$W/model_ns.bin" <"$W/queries.txt" >"$W/check_svec.txt"
    "$B/ftexport" -A "$W/A.tmp.npy" -X "$W/X.tmp.npy" -y "$W/labels.tmp.npy" -names "$W/names.txt" \
      -pred "$W/check_pred.txt" -svec "$W/check_svec.txt" "$W/model_ns.bin" "$W/queries.txt" 2>&1 | tee "$W/check.txt" | tee -a "$LOG"
    fasttext print-sentence-vectors "$W/model_hs.bin" <"$W/queries.txt" >"$W/check_svec.txt"
    "$B/ftexport" -X "$W/X_hs.tmp.npy" -y "$W/labels_hs.tmp.npy" -svec "$W/check_svec.txt" \
      "$W/model_hs.bin" "$W/queries.txt" 2>&1 | tee -a "$W/check.txt" | tee -a "$LOG"
    grep -q '^predict check' "$W/check.txt" || die "export check failed (see $LOG)"
    rm -f "$W/check_pred.txt" "$W/check_svec.txt"
    mv "$W/A.tmp.npy" "$W/A.npy"; mv "$W/X.tmp.npy" "$W/X.npy"; mv "$W/labels.tmp.npy" "$W/labels.npy"
    mv "$W/labels_hs.tmp.npy" "$W/labels_hs.npy"; mv "$W/X_hs.tmp.npy" "$W/X_hs.npy"
    step_end
  fi
}

# ---- 2. wide: Fashion-MNIST, fixed 25088-wide feature map, softmax regression ----
build_wide() {
  local V="$CACHE/wide" src=/usr/share/datasets/fashion-mnist f
  build_tool fmnist_head -O3 -march=native -ffp-contract=off
  if [ ! -s "$V/A.npy" ] || [ ! -s "$V/X.npy" ] || [ ! -s "$V/labels.npy" ]; then
    if [ ! -f "$src/train-images-idx3-ubyte.gz" ]; then
      src="$CACHE/src/dataset-fashion-mnist/usr/share/datasets/fashion-mnist"
      if [ ! -f "$src/train-images-idx3-ubyte.gz" ]; then
        local deb
        deb=$(fetch_deb dataset-fashion-mnist)
        mkdir -p "$CACHE/src/dataset-fashion-mnist"
        dpkg-deb -x "$deb" "$CACHE/src/dataset-fashion-mnist" || die "cannot unpack $deb"
      fi
    fi
    step_begin "wide: Fashion-MNIST from $src; features + softmax regression ($WIDE_EPOCHS epochs)"
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
      [ -f "$src/$f.gz" ] || die "missing $src/$f.gz"
      [ -s "$V/$f" ] || { zcat "$src/$f.gz" >"$V/$f.tmp" && mv "$V/$f.tmp" "$V/$f"; }
    done
    "$CACHE/bin/fmnist_head" "$V" "$WIDE_EPOCHS" "$WIDE_QUERIES" 2>&1 | tee "$V/train.log" | tee -a "$LOG"
    if [ ! -s "$V/A.npy" ] || [ ! -s "$V/X.npy" ] || [ ! -s "$V/labels.npy" ]; then die "fmnist_head failed (see $LOG)"; fi
    step_end
  fi
}

if [ "$ONLY" != wide ]; then build_words; fi
if [ "$ONLY" != words ]; then build_wide; fi

say "finished in $(( $(date +%s) - T0 )) s; outputs in $CACHE:"
for f in words/A.npy words/X.npy words/labels.npy words/X_hs.npy words/labels_hs.npy wide/A.npy wide/X.npy wide/labels.npy; do
  [ -f "$CACHE/$f" ] && say "  $f  shape $(npy_shape "$CACHE/$f")  $(stat -c %s "$CACHE/$f") bytes"
done
[ -f "$CACHE/words/model_hs.bin" ] && say "  words/model_hs.bin  $(stat -c %s "$CACHE/words/model_hs.bin") bytes"
exit 0
