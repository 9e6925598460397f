#!/bin/sh
# The golden vectors of ../shared/golden, or of the copy in tests/golden
# when the checkout stands alone (every kind passes, so no --kinds
# filter: a case of a kind the runner does not know fails, as the contract
# says).  Prints TAP: the plan first, one line per case, then "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
# the shared contract beside the checkout when there is one, else the copy
# kept in tests/golden (a clone on its own, as CI may make)
if [ -z "${GOLDEN_DIR:-}" ] || [ ! -f "$GOLDEN_DIR/core.json" ]; then
  GOLDEN_DIR=../shared/golden
  [ -f "$GOLDEN_DIR/core.json" ] || GOLDEN_DIR=tests/golden
fi
echo "# golden vectors from $GOLDEN_DIR"
exec "$BUILD/moonrl" golden "$GOLDEN_DIR/core.json" "$GOLDEN_DIR/envs.json"
