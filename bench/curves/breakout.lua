-- bench/curves/breakout.lua — MinAtar-Breakout-v0 with PPO and a Conv2d
-- encoder (examples/configs/breakout_ppo.lua) over seeds 1-5: steps and
-- wall time to a mean return of 10 over the last 100 episodes, and the
-- learning curves as one picture.
--   build/moonrl bench/curves/breakout.lua [steps] [picture.svg]
-- (steps: the budget per seed, 300000 by default; each run goes on past the
-- target to show the curve.)  Not part of make bench (a few minutes; bench/*.lua
-- are, this folder is not).
local rl = require "moonrl"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local cfg = dofile(here .. "../../examples/configs/breakout_ppo.lua")
local budget = tonumber(arg and arg[1]) or 300000
local out = arg and arg[2]

local series, rows = {}, {}
for seed = 1, 5 do
  local env = rl.make(cfg.env, {num_envs = cfg.env_opts.num_envs, threads = cfg.env_opts.threads,
                                seed = seed})
  local o = {env = env, seed = seed, progress = false, conv = cfg.conv, hidden = cfg.hidden,
             activation = cfg.activation}
  for k, v in pairs(cfg.hyperparameters) do o[k] = v end
  local agent = rl.ppo(o)
  local xs, ys, hit, hit_t = {}, {}, nil, nil
  local t0 = rl.core.now()
  agent:learn(budget, {on_update = function(s)
    if s.mean_return and s.episodes >= 100 then
      xs[#xs + 1], ys[#ys + 1] = s.steps, s.mean_return
      if not hit and s.mean_return >= cfg.target then hit, hit_t = s.steps, rl.core.now() - t0 end
    end
  end})
  local secs = rl.core.now() - t0
  series[#series + 1] = {name = "seed " .. seed, x = xs, y = ys}
  rows[#rows + 1] = {seed = seed, hit = hit, hit_t = hit_t, final = ys[#ys], secs = secs,
                     steps = agent.steps_done}
  print(("seed %d: mean return (last 100 episodes) >= %g at %s steps (%s s); %.1f after %d steps, %.1f s, %.0f steps/s")
        :format(seed, cfg.target, tostring(hit), hit_t and ("%.1f"):format(hit_t) or "-",
                ys[#ys] or 0 / 0, agent.steps_done, secs, agent.steps_done / secs))
  io.stdout:flush()
  agent:close()
  env:close()
end
local hits, times = {}, {}
for _, r in ipairs(rows) do
  if r.hit then hits[#hits + 1] = r.hit; times[#times + 1] = r.hit_t end
end
table.sort(hits)
table.sort(times)
print(("breakout: %d/5 seeds reached %g; median %s steps, %s s"):format(#hits, cfg.target,
      tostring(hits[math.floor((#hits + 1) / 2)]), tostring(times[math.floor((#times + 1) / 2)])))
if out then
  rl.plot.svg{path = out, title = "MinAtar-Breakout-v0, PPO with a Conv2d encoder",
              xlabel = "env steps", ylabel = "mean return (last 100 episodes)",
              hline = cfg.target, series = series}
  print("picture: " .. out)
end
