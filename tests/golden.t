#!/bin/sh
# The golden vectors of ../shared/golden (every kind passes, so no --kinds
# filter: a case of a kind the runner does not know fails, as the contract
# says).  Prints TAP: the plan first, one line per case, then "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
GOLDEN_DIR=${GOLDEN_DIR:-../shared/golden}
exec "$BUILD/moonrl" golden "$GOLDEN_DIR/core.json" "$GOLDEN_DIR/envs.json"
