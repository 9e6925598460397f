-- tests/learn/run.lua — the learning checks of `make test` in TAP (run by
-- tests/learn.t inside the moonrl host).  Under the ASan build (BUILD
-- contains "asan") each check runs 2 seeds and needs 1, to keep the
-- sanitised suite's wall time modest; the TAP lines say so.  A spec with
-- fewer_steps_than = "<other spec>" adds a check that its median steps to
-- the target (over the seeds that reached it) are below the other's —
-- skipped under ASan, where 2 seeds are too few to compare medians.
local here = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
local lib = dofile(here .. "lib.lua")
local asan = (os.getenv("BUILD") or ""):find("asan") ~= nil
local checks = {"cartpole_ppo", "cartpole_trpo", "cartpole_reinforce", "cartpole_offpolicy",
                "invalid_action_ppo", "skirmish_ppo", "minigolf_ppo"}
local specs, plan = {}, 0
for i, name in ipairs(checks) do
  specs[i] = lib.load(name)
  plan = plan + 1
  if specs[i].fewer_steps_than then plan = plan + 1 end
end
print("1.." .. plan)
local failed, n = 0, 0
local results = {}

local function median_steps(res)
  local st = {}
  for _, r in ipairs(res.runs) do if r.passed then st[#st + 1] = r.steps end end
  table.sort(st)
  local k = #st
  if k == 0 then return math.huge end
  if k % 2 == 1 then return st[(k + 1) / 2] end
  return (st[k / 2] + st[k / 2 + 1]) / 2
end

for i, name in ipairs(checks) do
  local spec = specs[i]
  local seeds, need = spec.seeds, spec.need
  if asan then seeds, need = {1, 2}, 1 end
  local ok, res = pcall(lib.run, spec, seeds)
  n = n + 1
  if not ok then
    print(("not ok %d - %s %s: %s"):format(n, spec.name, spec.algo:upper(), tostring(res)))
    failed = failed + 1
  else
    results[name] = res
    local pass = res.passed >= need
    if not pass then failed = failed + 1 end
    print(("%s %d - %s %s: mean return >= %g within %d steps on %d/%d seeds (need %d)%s")
          :format(pass and "ok" or "not ok", n, spec.name, spec.algo:upper(), spec.target,
                  spec.budget, res.passed, #seeds, need, asan and " [ASan build: 2 seeds]" or ""))
    print("# " .. lib.describe(res))
  end
  local other = spec.fewer_steps_than
  if other then
    n = n + 1
    local a, b = results[name], results[other]
    local ospec = lib.load(other)
    local what = ("%s %s needs fewer env steps than %s (median to the target)")
                 :format(spec.name, spec.algo:upper(), ospec.algo:upper())
    if asan then
      print(("ok %d - %s # SKIP ASan build: 2 seeds"):format(n, what))
    elseif not a or not b then
      print(("not ok %d - %s: a run failed"):format(n, what))
      failed = failed + 1
    else
      local ma, mb = median_steps(a), median_steps(b)
      local pass = ma < mb
      if not pass then failed = failed + 1 end
      print(("%s %d - %s: %.0f vs %.0f"):format(pass and "ok" or "not ok", n, what, ma, mb))
    end
  end
end
os.exit(failed == 0 and 0 or 1)
