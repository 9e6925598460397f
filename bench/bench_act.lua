-- bench/bench_act.lua — policy:act(flat_table) latency for a
-- 4-64-64-2 policy, in whichever binding runs it:
--   luajit bench/bench_act.lua        (the FFI binding; bench/run_all.lua runs it)
--   build/moonrl bench/bench_act.lua  (the Lua 5.4 C module)
-- Also, under LuaJIT, the same mrl_policy_act call made directly through the
-- FFI (no binding code), to show what the binding itself adds.
-- Figures, not a test: quote ratios from one run.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
if rawget(_G, "jit") then
  package.path = here .. "../bindings/luajit/?.lua;" .. here .. "../scripts/?.lua;" .. package.path
end
local core = require "moonrl.core"
local clock = os.clock
local N = tonumber(arg and arg[1]) or 2000000

-- hidden = {} (arg 2 = "linear") makes the C work tiny, so the binding's own
-- cost shows
local hidden = (arg and arg[2] == "linear") and {} or {64, 64}
local p = core.policy{obs_dim = 4, hidden = hidden, action = {type = "discrete", n = 2}, seed = 1}
local obs = {0.01, -0.02, 0.03, 0.04}

local function best_of(f, reps)
  local best = math.huge
  for _ = 1, reps do
    local t0 = clock()
    f()
    local dt = clock() - t0
    if dt < best then best = dt end
  end
  return best / N * 1e9
end

local acc = 0
local ns = best_of(function()
  for i = 1, N do
    obs[1] = (i % 7) * 0.01
    local a = p:act(obs)
    acc = acc + a
  end
end, 5)
print(("%-8s policy:act(table) %-8s %7.1f ns/call"):format(core.binding, #hidden > 0 and "4-64-64-2" or "4-2", ns))

if rawget(_G, "jit") then
  local ffi = require "ffi"
  local C = core._internal.C
  local h, o = p.h, ffi.new("float[4]")
  local a1, l1 = ffi.new("float[1]"), ffi.new("float[1]")
  local raw = best_of(function()
    for i = 1, N do
      o[0] = (i % 7) * 0.01
      o[1], o[2], o[3] = -0.02, 0.03, 0.04
      C.mrl_policy_act(h, o, 1, 0, a1, l1)
      acc = acc + a1[0]
    end
  end, 5)
  print(("%-8s raw FFI mrl_policy_act     %7.1f ns/call"):format(core.binding, raw))
  print(("%-8s binding overhead           %7.1f ns/call"):format(core.binding, ns - raw))
end
io.write("(checksum ", acc, ")\n")
