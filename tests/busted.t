#!/bin/sh
# The busted specs (tests/lua/*_spec.lua) in TAP, run inside the moonrl host
# so that the ASan build checks the C module too (the system lua5.4 is not
# instrumented).  prove gives $BUILD; run by hand from anywhere.
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
export BUILD
exec "$BUILD/moonrl" /usr/bin/busted -o TAP tests/lua
