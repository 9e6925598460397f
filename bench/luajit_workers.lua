-- bench/luajit_workers.lua — env steps per second of an env file costing
-- ≥ 1 µs per step (bench/lib/busy_env.lua) on 1 worker state vs 2 worker
-- states (threads = 2), under whichever VM runs it:
--   luajit bindings/luajit/run.lua bench/luajit_workers.lua [seconds]
--   build/moonrl bench/luajit_workers.lua [seconds]
-- Prints "workers_2_vs_1 R" (and the rates); bench/run_all.lua reads it.
-- The env's work (BUSY_WORK, default 600 iterations) makes a step cost
-- about 1.5 us on one LuaJIT state, as 200 did before worker states
-- compiled env code (then 1.44 us; 200 now cost 0.7 us).  The ratio is
-- bounded by the fork and join of each batch (~1 us of cross-core latency
-- on a 2-vCPU VM), so it grows with the work per batch.
-- Also printed, to keep them watched: CartPole-v1 as an inline env (a class
-- in this state) and as an env file on one worker state, 8 envs each.
local core = require "moonrl.core"
local vec = require "moonrl.vec"

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local secs = tonumber(arg and arg[1]) or 1.0
local N = 8

local function rate(threads, work)
  local v = vec.make(here .. "lib/busy_env.lua", {num_envs = N, threads = threads, seed = 1,
                                                 config = {work = work}})
  v:reset()
  local acts = {}
  for i = 1, N do acts[i] = i % 2 end
  for _ = 1, 200 do v:step(acts) end  -- warm up (traces, caches)
  local steps, t0 = 0, core.now()
  repeat
    for _ = 1, 100 do v:step(acts) end
    steps = steps + 100 * N
  until core.now() - t0 >= secs
  local r = steps / (core.now() - t0)
  v:close()
  return r
end

local work = tonumber(os.getenv("BUSY_WORK")) or 600
local one = rate(1, work)
local two = rate(2, work)
print(("%s: busy env (%d iterations, %.2f us/step on one state), %d envs: " ..
       "1 worker state %.0f steps/s, 2 worker states %.0f steps/s")
      :format(core.binding, work, 1e6 / one, N, one, two))
print(("workers_2_vs_1 %.3f"):format(two / one))

-- CartPole-v1, random actions, as an inline env and as an env file
local function cartpole(source)
  local v = vec.make(source, {num_envs = N, seed = 1})
  v:reset()
  local acts, random = {}, math.random
  local function run(k)
    for _ = 1, k do
      for i = 1, N do acts[i] = random(0, 1) end
      v:step(acts)
    end
  end
  run(2000)  -- warm up
  local steps, t0 = 0, core.now()
  repeat
    run(1000)
    steps = steps + 1000 * N
  until core.now() - t0 >= secs / 2
  local r = steps / (core.now() - t0)
  v:close()
  return r
end
local envs = require "moonrl.envs"
print(("%s: CartPole-v1, %d envs: inline env %.0f steps/s, env file on one worker state " ..
       "%.0f steps/s"):format(core.binding, N, cartpole(envs.load_class("CartPole-v1")),
                             cartpole("CartPole-v1")))
