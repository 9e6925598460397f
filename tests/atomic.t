#!/bin/sh
# Atomic files: a process saving checkpoints, a CSV log and a plot in a
# loop is killed with SIGKILL at random moments; each time, what is on
# disk must load whole (tests/atomic_writer.lua check).  prove gives $BUILD.
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
rounds=4
echo "1..$rounds"
status=0
for i in $(seq 1 $rounds); do
  "$BUILD/moonrl" tests/atomic_writer.lua "$dir" > "$dir/out" 2>&1 &
  pid=$!
  # wait for the first save, then let it run a random while
  n=0
  while ! grep -q saving "$dir/out" 2>/dev/null && [ $n -lt 200 ]; do sleep 0.05; n=$((n + 1)); done
  sleep "0.$(( ($(od -An -N2 -tu2 /dev/urandom) % 9) + 1 ))"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  if msg=$("$BUILD/moonrl" tests/atomic_writer.lua "$dir" check 2>&1); then
    echo "ok $i - killed mid-save, files whole: $msg"
  else
    echo "not ok $i - killed mid-save: $msg"
    status=1
  fi
done
exit $status
