#!/bin/sh
# The LÖVE example (examples/love) headless under Xvfb: a fixed run (seed,
# frames, steps and update pieces per frame, so it is the same on every
# machine) must finish, print its summary line, improve the agent's return,
# and leave a screenshot (copied to docs/love_screenshot.png when
# MOONRL_UPDATE_DOCS is set).  Then the same game with background training
# (--background: the update on a runtime thread, published by train_step at
# the end of each frame): it must run, update and improve the return too
# (thread timing varies, so its bound is looser).
# Skipped without love or xvfb-run, and in sanitizer builds (LÖVE cannot load
# an ASan libmoonrl).  prove gives $BUILD.
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
export BUILD
if ! command -v love >/dev/null 2>&1; then echo "1..0 # SKIP love not installed"; exit 0; fi
if ! command -v xvfb-run >/dev/null 2>&1; then echo "1..0 # SKIP xvfb-run not installed"; exit 0; fi
if [ ! -f "$BUILD/libmoonrl.so" ]; then echo "1..0 # SKIP $BUILD/libmoonrl.so not built"; exit 0; fi
if ldd "$BUILD/libmoonrl.so" 2>/dev/null | grep -q libasan; then
  echo "1..0 # SKIP LÖVE cannot load an ASan-instrumented libmoonrl"; exit 0
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
shot="$tmp/love_screenshot.png"
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout 600"
echo "1..7"
# MOONRL_LIB pins the library to this build (the FFI binding's first choice)
MOONRL_LIB="$(pwd)/$BUILD/libmoonrl.so" $limit xvfb-run -a love examples/love \
  --frames 1500 --seed 1 --steps-per-frame 10 --pieces 20 --screenshot "$shot" \
  >"$tmp/out" 2>"$tmp/err"
rc=$?
sed 's/^/# /' "$tmp/out"
line=$(grep '^moonrl-love: ' "$tmp/out" | tail -1)
if [ $rc = 0 ] && [ -n "$line" ]; then
  echo "ok 1 - love examples/love ran 1500 frames headless and printed its summary"
else
  sed 's/^/# /' "$tmp/err" | head -20
  echo "not ok 1 - love examples/love ran headless (exit $rc)"
fi
get() { echo "$line" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
steps=$(get steps); updates=$(get updates); first=$(get first_mean); last=$(get last_mean)
if [ "$steps" = 15000 ] && [ -n "$updates" ] && [ "$updates" -ge 25 ]; then
  echo "ok 2 - the agent took 15000 steps and finished $updates sliced updates"
else
  echo "not ok 2 - steps '$steps' (15000 expected), updates '$updates' (>= 25 expected)"
fi
if [ -n "$first" ] && [ -n "$last" ] && awk -v a="$first" -v b="$last" 'BEGIN { exit !(b > 3 * a && b > 80) }'; then
  echo "ok 3 - the return improved while playing: first 10 episodes $first, last 10 $last"
else
  echo "not ok 3 - the return improved: first '$first', last '$last'"
fi
if [ -s "$shot" ] && [ "$(head -c 4 "$shot" | od -An -c | tr -d ' ')" = "211PNG" ]; then
  # The README's picture is refreshed on request, not by every test run.
  if [ -n "$MOONRL_UPDATE_DOCS" ]; then mkdir -p docs && cp "$shot" docs/love_screenshot.png; fi
  echo "ok 4 - a PNG screenshot was written"
else
  echo "not ok 4 - a PNG screenshot was written"
fi

# background training (rl.agent background = true)
MOONRL_LIB="$(pwd)/$BUILD/libmoonrl.so" $limit xvfb-run -a love examples/love \
  --frames 1500 --seed 1 --steps-per-frame 10 --background \
  >"$tmp/out" 2>"$tmp/err"
rc=$?
sed 's/^/# /' "$tmp/out"
line=$(grep '^moonrl-love: ' "$tmp/out" | tail -1)
if [ $rc = 0 ] && [ -n "$line" ] && [ "$(get mode)" = background ]; then
  echo "ok 5 - love examples/love --background ran 1500 frames headless in background mode"
else
  sed 's/^/# /' "$tmp/err" | head -20
  echo "not ok 5 - love examples/love --background ran headless (exit $rc)"
fi
steps=$(get steps); updates=$(get updates); first=$(get first_mean); last=$(get last_mean)
if [ "$steps" = 15000 ] && [ -n "$updates" ] && [ "$updates" -ge 20 ]; then
  echo "ok 6 - the background agent took 15000 steps and published $updates updates"
else
  echo "not ok 6 - background: steps '$steps' (15000 expected), updates '$updates' (>= 20 expected)"
fi
if [ -n "$first" ] && [ -n "$last" ] && awk -v a="$first" -v b="$last" 'BEGIN { exit !(b > 2 * a && b > 50) }'; then
  echo "ok 7 - background training improved the return: first 10 episodes $first, last 10 $last"
else
  echo "not ok 7 - background training improved the return: first '$first', last '$last'"
fi
