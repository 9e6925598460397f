#!/bin/sh
# API robustness (tests/api_fuzz.lua): random arguments to every public
# function and method of moonrl.core and rl, plus re-entrancy scenarios;
# each call must return or raise a Lua error.  Under the moonrl host (Lua
# 5.4; the ASan/UBSan build when BUILD=build-asan), then under LuaJIT through
# bindings/luajit/run.lua when it exists.  Each run is bounded in time, so a
# hang fails.  API_FUZZ_CALLS overrides the 30000 random calls of each run.
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
export BUILD
CALLS=${API_FUZZ_CALLS:-30000}
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout"
run() {  # seconds, command...
  t=$1; shift
  if [ -n "$limit" ]; then timeout "$t" "$@"; else "$@"; fi
}
# one TAP stream in, one summary line out: ok when the stream passed
summarise() {  # number, description, status, output
  n=$1; what=$2; st=$3; out=$4
  echo "$out" | sed 's/^/    /'
  figures=$(echo "$out" | grep '^# [0-9]* random calls' | sed 's/^# //')
  if [ "$st" = 0 ] && ! echo "$out" | grep -q '^not ok' && echo "$out" | grep -q '^1\.\.'; then
    echo "ok $n - $what: $figures"
  else
    reason="exit status $st"
    [ "$st" = 124 ] && reason="timed out (a hang)"
    [ "$st" -gt 128 ] 2>/dev/null && [ "$st" != 124 ] && reason="killed by signal $((st - 128)) (a crash)"
    echo "not ok $n - $what: $reason; $(echo "$out" | grep -c '^not ok') failed checks"
    status=1
  fi
}
status=0
# Random calls write files under random names: run in a scratch folder.
root=$(pwd)
case "$BUILD" in /*) ;; *) BUILD="$root/$BUILD" ;; esac
export BUILD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
echo "1..3"
out=$(run 600 "$BUILD/moonrl" "$root/tests/api_fuzz.lua" "$CALLS" 1 2>&1); st=$?
summarise 1 "Lua 5.4 ($BUILD)" $st "$out"
if command -v luajit >/dev/null 2>&1 && [ -f "$root/bindings/luajit/run.lua" ]; then
  if [ -f "$BUILD/libmoonrl.so" ] && ldd "$BUILD/libmoonrl.so" 2>/dev/null | grep -q libasan; then
    LD_PRELOAD=$(${CC:-cc} -print-file-name=libasan.so)
    export LD_PRELOAD
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    export ASAN_OPTIONS
  fi
  out=$(run 300 luajit "$root/bindings/luajit/run.lua" "$root/tests/api_fuzz.lua" "$CALLS" 1 calls 2>&1); st=$?
  summarise 2 "LuaJIT random calls" $st "$out"
  out=$(run 120 luajit "$root/bindings/luajit/run.lua" "$root/tests/api_fuzz.lua" 0 1 scenarios 2>&1); st=$?
  summarise 3 "LuaJIT re-entrancy and budget scenarios" $st "$out"
  unset LD_PRELOAD
else
  echo "ok 2 # SKIP no luajit or bindings/luajit/run.lua"
  echo "ok 3 # SKIP no luajit or bindings/luajit/run.lua"
fi
exit $status
