-- tests/learn/bench.lua — `make bench-learn`: every learning spec of
-- tests/learn/ over seeds 1–5, as a table of env, algo, budget, seeds
-- passed, median steps and wall seconds to the target, and final returns.
-- Exit status 1 when a spec passes on fewer seeds than it needs.
local here = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
local lib = dofile(here .. "lib.lua")
local names = {"cartpole_ppo", "cartpole_trpo", "cartpole_reinforce", "cartpole_offpolicy",
               "acrobot_ppo", "pendulum_ppo", "mountaincar_continuous_ppo",
               "invalid_action_ppo", "invalid_action_nomask_ppo", "skirmish_ppo", "minigolf_ppo",
               "breakout_ppo"}
-- pairs whose median steps are compared: {name, against, at most this ratio}
local ratios = {{"invalid_action_ppo", "invalid_action_nomask_ppo", 1 / 3}}
if arg and arg[1] then names = {} for i = 1, #arg do names[i] = arg[i] end end

local function median(t)
  table.sort(t)
  local n = #t
  if n == 0 then return 0 / 0 end
  if n % 2 == 1 then return t[(n + 1) / 2] end
  return (t[n / 2] + t[n / 2 + 1]) / 2
end

local rows, bad = {}, 0
local medians = {}
local fmt = "%-26s %-9s %8s %8s %7s %12s %10s %s"
print(fmt:format("env", "algo", "budget", "target", "passed", "steps (med)", "secs (med)", "final return per seed"))
for _, name in ipairs(names) do
  local spec = lib.load(name)
  local res = lib.run(spec)
  local st, secs, fin = {}, {}, {}
  for _, r in ipairs(res.runs) do
    if r.passed then st[#st + 1] = r.steps; secs[#secs + 1] = r.seconds end
    fin[#fin + 1] = ("%.0f"):format(r.final or 0 / 0)
  end
  medians[name] = #st > 0 and median(st) or nil
  local ok = res.passed >= spec.need
  if not ok then bad = bad + 1 end
  print(fmt:format(spec.name, spec.algo:upper(), spec.budget, spec.target,
                   res.passed .. "/" .. #res.runs, ("%.0f"):format(median(st)),
                   ("%.2f"):format(median(secs)), table.concat(fin, " ")))
  print("  " .. lib.describe(res))
  io.stdout:flush()
end
for _, r in ipairs(ratios) do
  local a, b = medians[r[1]], medians[r[2]]
  if a and b then
    local q = a / b
    if q > r[3] then bad = bad + 1 end
    print(("%s / %s: median steps %.0f / %.0f = %.3f (target <= %.3f) %s"):format(
      r[1], r[2], a, b, q, r[3], q <= r[3] and "met" or "NOT met"))
  end
end
os.exit(bad == 0 and 0 or 1)
