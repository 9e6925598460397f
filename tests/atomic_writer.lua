-- tests/atomic_writer.lua DIR [check] — driven by tests/atomic.t.
-- Without "check": saves forever, as fast as it can, a policy checkpoint
-- (DIR/policy.safetensors) whose parameters are all the number k of the
-- save, a CSV log (DIR/log.csv) growing one row per save, and a plot, until
-- killed.  With "check": loads what a kill -9 left and verifies that each
-- file is whole: every parameter of the policy is the same k, every CSV row
-- has every column, the SVG ends with </svg>.  Prints the figures.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../scripts/?.lua;" .. here .. "../scripts/?/init.lua;" .. package.path
local rl = require "moonrl"
local log = require "moonrl.log"
local plot = require "moonrl.plot"

local dir, mode = arg[1], arg[2]
local ck, csvp, svgp = dir .. "/policy.safetensors", dir .. "/log.csv", dir .. "/curve.svg"

if mode ~= "check" then
  local p = rl.policy{obs = 8, action = rl.discrete(4), hidden = {256, 256}}
  local n = p:nparams()
  local csv = log.csv(csvp, {"k", "a", "b", "c"}, {flush_every = 1})
  local xs, ys = {}, {}
  local k = 0
  while true do
    k = k + 1
    p:set_params(rl.tensor({n}, k))
    p:save(ck)
    csv:row({k = k, a = k * 2, b = k * 3, c = "row" .. k})
    xs[#xs + 1], ys[#ys + 1] = k, k * k
    if k % 10 == 0 then plot.svg({path = svgp, series = {{x = xs, y = ys}}}) end
    if k == 1 then io.stdout:write("saving\n"); io.stdout:flush() end
  end
end

local p = assert(rl.load(ck))
local v = p:params()
local k = v[1]
for i = 1, v:numel() do
  if v[i] ~= k then error(("torn checkpoint: parameter %d is %g, parameter 1 is %g"):format(i, v[i], k)) end
end
local t = log.read_csv(csvp)
for i, r in ipairs(t.rows) do
  if r.k ~= i or r.a ~= 2 * i or r.b ~= 3 * i or r.c ~= "row" .. i then
    error(("torn log: row %d is %s,%s,%s,%s"):format(i, tostring(r.k), tostring(r.a), tostring(r.b), tostring(r.c)))
  end
end
local f = io.open(svgp, "r")
if f then
  local s = f:read("*a")
  f:close()
  if not s:find("</svg>%s*$") then error("torn plot: " .. svgp .. " does not end with </svg>") end
end
print(("checkpoint of save %d (%d parameters), log of %d rows, all whole"):format(k, v:numel(), #t.rows))
