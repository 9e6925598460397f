-- bench/bench_bg.lua — rl.agent's background training on examples/love's
-- game logic (examples/love/game.lua, no graphics): the agent of the LÖVE
-- example (4-64-64-2 policy and critic, n_steps 512, minibatch 64, 10
-- epochs, lr 3e-4, seed 1).  Run by bench/run_all.lua (make bench), or alone:
--   BUILD=build build/moonrl bench/bench_bg.lua [frames] [pad_ms]
--   BUILD=build luajit bindings/luajit/run.lua bench/bench_bg.lua [frames] [pad_ms]
--
-- Default: the game thread's cost per frame while an update runs on the
-- trainer's thread.  A frame is one agent:act + agent:observe +
-- agent:train_step() (which polls and publishes a finished update; at a
-- buffer's end act submits it); the world step is not timed.  Only frames
-- that start while the trainer is running are counted.  Each frame is
-- padded (untimed, busy) to pad_ms (default 0.03 ms) of wall time, the
-- rest of a game's frame in miniature: without it 512 steps take less
-- than an update and act would wait for the trainer every buffer
-- ("forced waits", printed).  Prints
-- "bg_train_frame_ms_median X", "bg_train_frame_ms_p99 Y" (and the max).
--
--   ... bench/bench_bg.lua --compare [seeds] [budget_ms] [frame_ms] [steps_per_frame]
-- Frames until the mean of the last 10 returns reaches TARGET (150), for
-- sliced training (train_step(budget_ms) per frame, the example's mode)
-- and background training (train_step() per frame), seeds 1 … seeds.
-- Every frame of both is padded (busy) to frame_ms of wall time, as
-- drawing would fill it.  Defaults: 5 seeds, 0.5 ms of 2 ms (the example's
-- 4 ms of a 16.7 ms frame, scaled down 8×), 10 steps per frame as
-- tests/love.t.  budget_ms = frame_ms gives the sliced update the whole
-- frame (the background thread then has no more time than it).  The
-- background thread runs on another core.  Slow: not run by run_all.lua.

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../examples/love/?.lua;" .. here .. "../scripts/?.lua;" ..
               here .. "../scripts/?/init.lua;" .. package.path
local rl = require "moonrl"
local Game = require "game"
local envs = require "moonrl.envs"
local now = rl.core.now

local function new_agent(seed, background)
  return rl.agent{obs = Game.OBS, action = rl.discrete(Game.ACTIONS), hidden = {64, 64},
                  algo = "ppo", n_steps = 512, batch_size = 64, epochs = 10, lr = 3e-4,
                  seed = seed, background = background}
end

local TARGET, CAP = 150, 4000

local function compare(seeds, budget_ms, frame_ms, spf)
  local function run(seed, background)
    local ag = new_agent(seed, background)
    local world = Game.new(envs.rng.new(seed))
    local obs = world:reset()
    local returns = {}
    local sum10 = 0
    local seen, lag = 0, 0   -- frames from a buffer's hand-over to its update acting
    for frame = 1, CAP do
      local t0 = now()
      for _ = 1, spf do
        local a = ag:act(obs)
        local o, r, te, tr = world:step(a)
        local ret = ag:observe(r, te, tr, tr and o or nil)
        if ret then
          returns[#returns + 1] = ret
          sum10 = sum10 + ret - (returns[#returns - 10] or 0)
          obs = world:reset()
        else
          obs = o
        end
      end
      if background then ag:train_step() else ag:train_step(budget_ms) end
      local stop = t0 + frame_ms / 1000
      while now() < stop do end     -- the rest of the frame (drawing)
      if ag.updates > seen then
        seen = ag.updates
        lag = lag + frame - (math.floor(512 * seen / spf) + 1)
      end
      if #returns >= 10 and sum10 / 10 >= TARGET then
        ag:close()
        return frame, lag / math.max(seen, 1)
      end
    end
    ag:close()
    return nil, lag / math.max(seen, 1)
  end
  local res = {sliced = {}, background = {}}
  for seed = 1, seeds do
    for _, m in ipairs({"sliced", "background"}) do
      local f, lag = run(seed, m == "background")
      res[m][seed] = f
      print(("seed %d %-10s frames to mean-10 return %d: %s (an update acts %.1f frames after its hand-over)")
            :format(seed, m, TARGET, f and tostring(f) or ("> " .. CAP), lag))
    end
  end
  for _, m in ipairs({"sliced", "background"}) do
    local t, all = {}, true
    for s = 1, seeds do
      t[s] = res[m][s] or CAP + 1
      all = all and res[m][s] ~= nil
    end
    table.sort(t)
    local sum = 0
    for s = 1, seeds do sum = sum + t[s] end
    print(("bg_frames_to_%d_%s_median %d (mean %.0f, %s)"):format(TARGET, m, t[math.floor(seeds / 2) + 1],
          sum / seeds, all and "every seed reached it" or "some seeds did not"))
  end
end

local function frame_cost(frames, pad_ms)
  local ag = new_agent(1, true)
  local world = Game.new(envs.rng.new(1))
  local obs = world:reset()
  local times, k = {}, 0
  local all = {}
  local bg = ag.bg
  pcall(collectgarbage, "generational")
  for _ = 1, frames do
    local counted = bg:poll() == "running"
    local t0 = now()
    local stop = t0 + pad_ms / 1000
    local a = ag:act(obs)
    local tw = now()
    local o, r, te, tr = world:step(a)         -- the world: not timed
    local tw2 = now()
    local ret = ag:observe(r, te, tr, tr and o or nil)
    ag:train_step()
    local dt = (now() - tw2) + (tw - t0)
    all[#all + 1] = dt
    if counted then
      k = k + 1
      times[k] = dt
    end
    if ret then obs = world:reset() else obs = o end
    while now() < stop do end
  end
  ag:finish()
  local updates, episodes, forced = ag.updates, ag.episodes, ag.forced_updates
  ag:close()
  if k == 0 then
    print("bench_bg: no frame ran during an update")
    os.exit(1)
  end
  table.sort(times)
  local function q(p) return times[math.max(1, math.ceil(p * k))] * 1000 end
  print(("bench_bg: rl.agent background, %d frames during updates (of %d), %d updates, %d episodes, %d forced waits, %s")
        :format(k, frames, updates, episodes, forced, rl.core.binding or "lua54"))
  print(("bg_train_frame_ms_median %.6f"):format(q(0.5)))
  print(("bg_train_frame_ms_p99 %.6f"):format(q(0.99)))
  print(("bg_train_frame_ms_max %.6f"):format(times[k] * 1000))
  -- every frame, those that submit a batch (rollout_behaviour + the copy) too
  table.sort(all)
  print(("bg_frame_ms_all_p99 %.6f max %.6f"):format(all[math.ceil(0.99 * #all)] * 1000,
                                                      all[#all] * 1000))
end

if arg and arg[1] == "--compare" then
  compare(tonumber(arg[2]) or 5, tonumber(arg[3]) or 0.5, tonumber(arg[4]) or 2,
          tonumber(arg[5]) or 10)
else
  frame_cost(tonumber(arg and arg[1]) or 100000, tonumber(arg and arg[2]) or 0.03)
end
