#!/bin/sh
# Learning checks (tests/learn/run.lua): CartPole-v1 with PPO, TRPO,
# REINFORCE and the off-policy PG must reach the target return on enough
# seeds (and the off-policy PG with fewer steps); PPO on the masked,
# multi-discrete and hybrid games too.  prove gives $BUILD.
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
export BUILD
exec "$BUILD/moonrl" tests/learn/run.lua
