#!/bin/sh
# A moonrl checkpoint read back by an independent reader of the safetensors
# spec (Python's json and struct), with the names and shapes PyTorch's
# nn.Sequential state_dict uses.
BUILD=${BUILD:-build}
if ! command -v python3 >/dev/null 2>&1; then echo "1..0 # SKIP python3 not installed"; exit 0; fi
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
ST_DIR="$dir" "$BUILD/moonrl" -e '
local rl = require "moonrl"
local json = require "moonrl.json"
local dir = os.getenv("ST_DIR")
local p = rl.policy{obs = 3, action = rl.box(2, -1, 1), hidden = {5}, seed = 7}
p:save(dir .. "/p.safetensors")
local v = p:params():totable()
local function slice(a, b) local t = {} for i = a, b do t[#t + 1] = v[i] end return t end
local want = {
  ["policy.0.weight"] = {shape = {5, 3}, values = slice(1, 15)},
  ["policy.0.bias"] = {shape = {5}, values = slice(16, 20)},
  ["policy.2.weight"] = {shape = {2, 5}, values = slice(21, 30)},
  ["policy.2.bias"] = {shape = {2}, values = slice(31, 32)},
  ["policy.log_std"] = {shape = {2}, values = slice(33, 34)},
}
local f = assert(io.open(dir .. "/want.json", "w"))
f:write(json.encode(want)); f:close()
' 2>&1 || { echo "1..1"; echo "not ok 1 - saving a policy failed"; exit 1; }
python3 tests/format/safetensors_check.py "$dir/p.safetensors" "$dir/want.json" "$dir/back.safetensors" > "$dir/out"
status=$?
grep -v '^1\.\.' "$dir/out"
# …and back: the file as another writer laid it out loads into the same policy.
ST_DIR="$dir" "$BUILD/moonrl" -e '
local rl = require "moonrl"
local dir = os.getenv("ST_DIR")
local a = rl.load(dir .. "/p.safetensors")
local b = rl.load(dir .. "/back.safetensors")
local pa, pb = a:params():totable(), b:params():totable()
local same = #pa == #pb
for i = 1, #pa do same = same and pa[i] == pb[i] end
print((same and "ok" or "not ok") .. " 24 - the rewritten file loads back into identical parameters")
print("1..24")
os.exit(same and 0 or 1)
' || status=1
exit $status
