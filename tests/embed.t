#!/bin/sh
# The embedding examples (examples/embed): embed_lua — a C program with Lua
# 5.4 and moonrl inside — trains CartPole from the env script; infer — plain
# C, no Lua — loads policies saved from Lua and must pick the same greedy
# actions as policy:act(obs, true) does in Lua, and must refuse a damaged
# file cleanly.  prove gives $BUILD; the binaries are part of `make all`
# (built here when missing, with the sanitizer flags if $BUILD is an ASan build).
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
export BUILD
if [ ! -x "$BUILD/examples/embed_lua" ] || [ ! -x "$BUILD/examples/infer" ]; then
  san=""
  if ldd "$BUILD/libmoonrl.so" 2>/dev/null | grep -q libasan; then san="SAN=1 OPT=-O1"; fi
  # shellcheck disable=SC2086
  make -s BUILD="$BUILD" $san "$BUILD/examples/embed_lua" "$BUILD/examples/infer" >&2 || {
    echo "1..0 # SKIP cannot build the embedding examples"; exit 0; }
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
echo "1..6"

# 1-2: training from C through the embedded Lua layer
out=$("$BUILD/examples/embed_lua" envs/CartPole-v1.lua 8192 1 2>"$tmp/err")
rc=$?
echo "$out" | sed 's/^/# /'
first=$(echo "$out" | sed -n 's/.*first_mean=\([0-9.]*\).*/\1/p')
last=$(echo "$out" | sed -n 's/.*mean_return=\([0-9.]*\).*/\1/p')
if [ $rc = 0 ] && [ -n "$first" ] && [ -n "$last" ]; then
  echo "ok 1 - embed_lua trains CartPole-v1 from the env script (exit 0)"
else
  sed 's/^/# /' "$tmp/err"
  echo "not ok 1 - embed_lua trains CartPole-v1 from the env script (exit $rc)"
fi
if [ -n "$first" ] && [ -n "$last" ] && awk -v a="$first" -v b="$last" 'BEGIN { exit !(b > a + 20 && b > 60) }'; then
  echo "ok 2 - the return improved: first update's mean $first, last $last"
else
  echo "not ok 2 - the return improved: first update's mean '$first', last '$last'"
fi

# 3: a broken env script is an error message from the host, not a crash
"$BUILD/examples/embed_lua" tests/lua/fixtures/bad_syntax.lua 1000 1 >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc = 1 ] && grep -q "^embed_lua: " "$tmp/err"; then
  echo "ok 3 - embed_lua reports a broken env script and exits 1"
else
  sed 's/^/# /' "$tmp/err"
  echo "not ok 3 - embed_lua reports a broken env script and exits 1 (exit $rc)"
fi

# 4-5: policies saved from Lua, observations and Lua's greedy actions
"$BUILD/moonrl" -e "
local rl = require 'moonrl'
local dir = '$tmp'
local rng = rl.core.rng(42)
local cases = {
  {name = 'discrete', p = rl.policy{obs = 4, action = rl.discrete(3), hidden = {32, 32}, seed = 3, out_gain = 1}},
  {name = 'box', p = rl.policy{obs = 3, action = rl.box(2, -1, 1), hidden = {16}, activation = 'relu', seed = 4, out_gain = 1}},
}
for _, c in ipairs(cases) do
  c.p:save(dir .. '/' .. c.name .. '.safetensors')
  local p = rl.load(dir .. '/' .. c.name .. '.safetensors')
  local fo = assert(io.open(dir .. '/' .. c.name .. '.obs', 'w'))
  local fa = assert(io.open(dir .. '/' .. c.name .. '.want', 'w'))
  for _ = 1, 50 do
    local o = {}
    for j = 1, p:obs_dim() do o[j] = ('%.6f'):format(2 * rng:normal()) end
    fo:write(table.concat(o, ' '), '\n')
    for j = 1, #o do o[j] = tonumber(o[j]) end
    local a = p:act(o, true)
    if type(a) == 'table' then
      for j = 1, #a do a[j] = ('%.9g'):format(a[j]) end
      fa:write(table.concat(a, ' '), '\n')
    else
      fa:write(a, '\n')
    end
  end
  fo:close(); fa:close()
end
" 2>"$tmp/err" || sed 's/^/# /' "$tmp/err"
n=4
for kind in discrete box; do
  "$BUILD/examples/infer" "$tmp/$kind.safetensors" <"$tmp/$kind.obs" >"$tmp/$kind.got" 2>"$tmp/err"
  rc=$?
  distinct=$(sort -u "$tmp/$kind.got" | wc -l)
  if [ $rc = 0 ] && [ -s "$tmp/$kind.want" ] && cmp -s "$tmp/$kind.want" "$tmp/$kind.got"; then
    echo "ok $n - infer (plain C) acts as Lua's policy:act(obs, true) on 50 states, $kind policy ($distinct distinct actions)"
  else
    sed 's/^/# /' "$tmp/err"
    diff "$tmp/$kind.want" "$tmp/$kind.got" | head -5 | sed 's/^/# /'
    echo "not ok $n - infer (plain C) acts as Lua's policy:act(obs, true), $kind policy (exit $rc)"
  fi
  n=$((n + 1))
done

# 6: a truncated file is refused with a message
head -c 200 "$tmp/discrete.safetensors" >"$tmp/cut.safetensors"
"$BUILD/examples/infer" "$tmp/cut.safetensors" 0 0 0 0 >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc = 1 ] && grep -q "^infer: " "$tmp/err"; then
  echo "ok 6 - infer refuses a truncated policy file ($(head -1 "$tmp/err"))"
else
  echo "not ok 6 - infer refuses a truncated policy file (exit $rc)"
fi
