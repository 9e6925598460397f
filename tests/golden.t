#!/bin/sh
# The golden vectors of ../shared/golden, or of the copy in tests/golden
# when the checkout stands alone.  golden-1 (core.json, envs.json): every
# kind passes, so no --kinds filter (a case of a kind the runner does not
# know fails, as the contract says).  golden-2 (core2.json): the kinds
# implemented so far, named with --kinds.  Two TAP streams as subtests.
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
# the shared contract beside the checkout when there is one, else the copy
# kept in tests/golden (a clone on its own, as CI may make)
if [ -z "${GOLDEN_DIR:-}" ] || [ ! -f "$GOLDEN_DIR/core.json" ]; then
  GOLDEN_DIR=../shared/golden
  [ -f "$GOLDEN_DIR/core.json" ] || GOLDEN_DIR=tests/golden
fi
KINDS2=running_norm,reward_norm,policy_eval,kl,ppo_clip,kl_penalty,logp_grad
status=0
one=$("$BUILD/moonrl" golden "$GOLDEN_DIR/core.json" "$GOLDEN_DIR/envs.json" 2>&1) || status=1
two=$("$BUILD/moonrl" golden --kinds "$KINDS2" "$GOLDEN_DIR/core2.json" 2>&1) || status=1
echo "# golden vectors from $GOLDEN_DIR"
echo "1..2"
n=1
for out in "$one" "$two"; do
  echo "$out" | sed 's/^/    /'
  name="golden-1 (core.json, envs.json)"
  [ $n = 2 ] && name="golden-2 (core2.json: $KINDS2)"
  if [ "$(echo "$out" | grep -c '^not ok')" = 0 ] && echo "$out" | grep -q '^1\.\.'; then
    echo "ok $n - $name ($(echo "$out" | grep -c '^ok') passed)"
  else
    echo "not ok $n - $name ($(echo "$out" | grep -c '^not ok') failed)"
  fi
  n=$((n + 1))
done
exit $status
