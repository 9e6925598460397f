-- tests/learn/lib.lua — runs a learning spec (tests/learn/<name>.lua) over
-- seeds: for each seed, train until the mean return of the last 20
-- episodes reaches the target or the budget is spent.  Shared by
-- tests/learn/run.lua (TAP, `make test`) and tests/learn/bench.lua
-- (`make bench-learn`).
--
-- A spec returns {name, algo, env (id or env class), env_opts, budget,
-- target, need (seeds that must pass), seeds, hp = {…}, long (bench only),
-- window (episodes the mean return is over, 20; give hp.stats_window too),
-- evaluate = {env = id, episodes = n} (judge by the unshaped env's own
-- return of the greedy policy instead of the training episodes)}.
local rl = require "moonrl"
local core = rl.core

local M = {}

-- Mean return of the greedy policy over `episodes` episodes of env id.
function M.evaluate(policy, id, episodes, seed)
  local env = rl.envs.make(id)
  local s = 0
  for ep = 1, episodes do
    local obs = env:reset(seed + ep)
    local done, ret = false, 0
    while not done do
      local r, term, trunc
      obs, r, term, trunc = env:step(policy:act(obs, true))
      ret = ret + r
      done = term or trunc
    end
    s = s + ret
  end
  return s / episodes
end

-- One seed: {passed, steps, seconds, final}.
function M.run_seed(spec, seed)
  local eo = {}
  for k, v in pairs(spec.env_opts or {}) do eo[k] = v end
  eo.seed = seed
  local env = require("moonrl.vec").make(spec.env, eo)
  local o = {env = env, seed = seed, progress = false}
  for k, v in pairs(spec.hp or {}) do o[k] = v end
  local agent = rl[spec.algo](o)
  local hit
  local ev = spec.evaluate
  local t0 = core.now()
  local eval_time = 0
  agent:learn(spec.budget, {on_update = function(s)
    if ev then
      -- judge every `every` updates by the env's own (unshaped) return
      if s.updates % (ev.every or 10) == 0 then
        local t1 = core.now()
        local r = M.evaluate(agent.policy, ev.env, ev.episodes or 5, 1000 * seed)
        eval_time = eval_time + core.now() - t1
        if r >= spec.target then hit = s.steps; agent.eval_return = r; return false end
        agent.eval_return = r
      end
    elseif s.mean_return and s.episodes >= (spec.window or 20) and s.mean_return >= spec.target then
      hit = s.steps
      return false
    end
  end})
  local seconds = core.now() - t0 - eval_time
  local final = ev and agent.eval_return or agent:episode_stats().mean_return
  local res = {passed = hit ~= nil, steps = hit or agent.steps_done, seconds = seconds,
               final = final, seed = seed}
  agent:close()
  env:close()
  return res
end

function M.run(spec, seeds)
  local out = {passed = 0, runs = {}}
  for _, seed in ipairs(seeds or spec.seeds or {1, 2, 3, 4, 5}) do
    local r = M.run_seed(spec, seed)
    out.runs[#out.runs + 1] = r
    if r.passed then out.passed = out.passed + 1 end
  end
  return out
end

function M.describe(res)
  local parts = {}
  for _, r in ipairs(res.runs) do
    parts[#parts + 1] = ("seed %d: %s %d steps %.2fs (%.1f)"):format(
      r.seed, r.passed and "ok" or "FAIL", r.steps, r.seconds, r.final or 0 / 0)
  end
  return table.concat(parts, "; ")
end

-- The folder of this file, to find the specs.
M.dir = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")

function M.load(name)
  return dofile(M.dir .. name .. ".lua")
end

return M
