#!/bin/sh
# A short libFuzzer run of the safetensors reader (tests/fuzz/): FUZZ_RUNS
# (20000) inputs from the seed corpus, under ASan/UBSan; any crash, leak,
# sanitizer report or failed consistency check fails.  `make fuzz` runs
# longer.  Skipped when clang or libFuzzer (libclang-rt-14-dev) is missing.
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
CLANG=${FUZZ_CC:-clang}
if ! command -v "$CLANG" >/dev/null 2>&1; then
  echo "1..0 # SKIP $CLANG not installed"
  exit 0
fi
mkdir -p "$BUILD/fuzz"
# The reader and what it links against (keep in step with `make fuzz`).
srcs="runtime/safetensors.c runtime/atomic_file.c runtime/status.c"
bin="$BUILD/fuzz/fuzz_safetensors"
stale=0
[ -x "$bin" ] || stale=1
for f in $srcs tests/fuzz/fuzz_safetensors.c runtime/*.h; do
  [ "$f" -nt "$bin" ] && stale=1
done
if [ "$stale" = 1 ]; then
  if ! "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
       -Iruntime -o "$bin" tests/fuzz/fuzz_safetensors.c $srcs \
       > "$BUILD/fuzz/build.log" 2>&1; then
    # Only a toolchain without libFuzzer is a reason to skip; our code not
    # building is a failure.
    probe="$BUILD/fuzz/probe"
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$probe.c"
    if ! "$CLANG" -fsanitize=fuzzer -o "$probe" "$probe.c" >/dev/null 2>&1; then
      echo "1..0 # SKIP cannot build with -fsanitize=fuzzer (libclang-rt-14-dev missing?)"
      exit 0
    fi
    echo "1..1"
    echo "not ok 1 - the safetensors fuzzer does not build: $(head -n 3 "$BUILD/fuzz/build.log" | tr '\n' ' ')"
    exit 1
  fi
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runs=${FUZZ_RUNS:-20000}
echo "1..2"
if "$bin" -seed=1 -runs="$runs" -dict=tests/fuzz/safetensors.dict "$work" tests/fuzz/corpus \
     > "$work/log" 2>&1; then
  echo "ok 1 - $runs fuzzed inputs: $(grep DONE "$work/log" | tail -1)"
else
  sed 's/^/# /' "$work/log" | tail -40
  echo "not ok 1 - the fuzzer found a failure (see above; the input is in $work, kept)"
  trap - EXIT
  exit 1
fi
# every seed behaves as named: valid_* open, bad_* are refused
bad=0
for f in tests/fuzz/corpus/*; do
  "$bin" "$f" > "$work/one" 2>&1 || bad=1
done
if [ $bad = 0 ]; then echo "ok 2 - every seed runs cleanly"; else echo "not ok 2 - a seed fails"; fi
exit $bad
