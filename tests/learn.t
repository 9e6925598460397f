#!/bin/sh
# Learning checks (tests/learn/run.lua): CartPole-v1 with PPO and TRPO must
# reach the target return on enough seeds.  prove gives $BUILD.
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
export BUILD
exec "$BUILD/moonrl" tests/learn/run.lua
