#!/bin/sh
# The shared busted specs and the golden vectors under LuaJIT, through the
# FFI binding (bindings/luajit): TAP from busted, then the golden runner's.
# Skipped when luajit is not installed.  prove gives $BUILD and $GOLDEN_DIR.
cd "$(dirname "$0")/.." || exit 1
if ! command -v luajit >/dev/null 2>&1; then
  echo "1..0 # SKIP luajit not installed"
  exit 0
fi
BUILD=${BUILD:-build}
# the shared contract beside the checkout when there is one, else the copy
# kept in tests/golden (a clone on its own, as CI may make)
if [ -z "${GOLDEN_DIR:-}" ] || [ ! -f "$GOLDEN_DIR/core.json" ]; then
  GOLDEN_DIR=../shared/golden
  [ -f "$GOLDEN_DIR/core.json" ] || GOLDEN_DIR=tests/golden
fi
export BUILD
# The FFI loads $BUILD/libmoonrl.so into luajit; an ASan build of it needs the
# ASan runtime loaded first (luajit itself is not instrumented).
if [ -f "$BUILD/libmoonrl.so" ] && ldd "$BUILD/libmoonrl.so" 2>/dev/null | grep -q libasan; then
  LD_PRELOAD=$(${CC:-cc} -print-file-name=libasan.so)
  export LD_PRELOAD
  # LuaJIT's own allocations at exit are not ours to judge
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
  export ASAN_OPTIONS
fi
# A hang must not hold the whole suite: bound each run when timeout exists.
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout 1800"
# Two TAP streams in one: run them as subtests so prove sees one plan.
status=0
out=$($limit busted --lua=luajit -o TAP tests/lua 2>&1) || status=1
golden=$($limit luajit bindings/luajit/run.lua golden "$GOLDEN_DIR/core.json" "$GOLDEN_DIR/envs.json" 2>&1) || status=1
# golden-2: the kinds implemented so far (as tests/golden.t)
KINDS2=running_norm,reward_norm,policy_eval,kl,ppo_clip,kl_penalty,logp_grad
golden2=$($limit luajit bindings/luajit/run.lua golden --kinds "$KINDS2" "$GOLDEN_DIR/core2.json" 2>&1) || status=1
echo "1..3"
echo "$out" | sed 's/^/    /'
if [ "$(echo "$out" | grep -c '^not ok')" = 0 ] && echo "$out" | grep -q '^1\.\.'; then
  echo "ok 1 - busted specs under LuaJIT ($(echo "$out" | grep -c '^ok') passed)"
else
  echo "not ok 1 - busted specs under LuaJIT ($(echo "$out" | grep -c '^not ok') failed)"
fi
echo "$golden" | sed 's/^/    /'
if [ "$(echo "$golden" | grep -c '^not ok')" = 0 ] && echo "$golden" | grep -q '^1\.\.'; then
  echo "ok 2 - golden vectors under LuaJIT ($(echo "$golden" | grep -c '^ok') passed)"
else
  echo "not ok 2 - golden vectors under LuaJIT"
fi
echo "$golden2" | sed 's/^/    /'
if [ "$(echo "$golden2" | grep -c '^not ok')" = 0 ] && echo "$golden2" | grep -q '^1\.\.'; then
  echo "ok 3 - golden-2 vectors ($KINDS2) under LuaJIT ($(echo "$golden2" | grep -c '^ok') passed)"
else
  echo "not ok 3 - golden-2 vectors ($KINDS2) under LuaJIT"
fi
exit $status
