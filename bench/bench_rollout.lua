-- bench/bench_rollout.lua — env steps per second for CartPole-v1, run by
-- `build/moonrl bench/bench_rollout.lua` (make bench):
--   (a) a plain Lua loop calling the env objects directly, one lua_State;
--   (b) the vectorised engine (moonrl.vec), random actions, 0/1/2 threads;
--   (c) collection into a rollout with a 4-64-64-2 policy (and a value net);
--   (d) the same dynamics in C (build/bench/bench_cartpole_c), the limit.
-- Figures, not pass/fail; each runs for at least 0.5 s.  The ratios are
-- measured in this one run (the machines are shared and noisy).

local core = require "moonrl.core"
local envs = require "moonrl.envs"
local vec = require "moonrl.vec"

local MIN_TIME = 0.5
local clock = os.clock  -- CPU time of the process: wrong with threads
local function now()
  -- wall time: the engine's workers run in parallel with the caller
  if core.now then return core.now() end
  local ok, socket = pcall(require, "socket")
  if ok then return socket.gettime() end
  return nil
end

-- Wall clock from /proc/uptime (10 ms resolution, fine over ≥ 0.5 s) when
-- nothing better exists; os.clock would add the worker threads' CPU time.
local function uptime()
  local f = io.open("/proc/uptime", "r")
  if not f then return clock() end
  local s = f:read("*n")
  f:close()
  return s
end
local wall = now() and now or uptime

-- Runs body(k) (which does k env steps) until MIN_TIME has passed; returns
-- steps per second.
local function measure(body, chunk)
  body(chunk)  -- warm up
  local steps, t0 = 0, wall()
  local el
  repeat
    body(chunk)
    steps = steps + chunk
    el = wall() - t0
  until el >= MIN_TIME
  return steps / el
end

local function fmt(x) return string.format("%12.0f steps/s", x) end
local results = {}
local function report(name, sps)
  results[name] = sps
  print(string.format("  %-52s %s", name, fmt(sps)))
end

print("bench_rollout: CartPole-v1, random actions unless a policy acts")

-- (a) plain Lua loop over N env objects
local N = 8
do
  local list = {}
  for i = 1, N do
    list[i] = envs.load("CartPole-v1", nil, {probe = false})
    list[i]:reset(i)
  end
  local limit = list[1].max_episode_steps or 500
  local elapsed = {}
  for i = 1, N do elapsed[i] = 0 end
  local random = math.random
  local sps = measure(function(k)
    for _ = 1, k / N do
      for i = 1, N do
        local e = list[i]
        local _, _, term, trunc = e:step(random(0, 1))
        local t = elapsed[i] + 1
        if term or trunc or t >= limit then e:reset(); t = 0 end
        elapsed[i] = t
      end
    end
  end, 8000)
  report("(a) plain Lua loop, 8 envs, one state", sps)
end

-- (b) the engine with random actions
local function engine(n, threads)
  local v = vec.make("CartPole-v1", {num_envs = n, threads = threads, seed = 1})
  v:reset()
  local acts = {}
  local random = math.random
  local sps = measure(function(k)
    for _ = 1, k / n do
      for i = 1, n do acts[i] = random(0, 1) end
      v:step(acts)
    end
  end, 8000)
  v:close()
  return sps
end
for _, cfg in ipairs({{8, 0}, {8, 1}, {8, 2}, {16, 0}, {16, 1}, {16, 2}}) do
  report(string.format("(b) vec engine, %d envs, %d threads", cfg[1], cfg[2]),
         engine(cfg[1], cfg[2]))
end

-- (c) collection with the policy's forward pass
local function collect(n, threads, with_value)
  local v = vec.make("CartPole-v1", {num_envs = n, threads = threads, seed = 1})
  local pol = core.policy{obs_dim = 4, hidden = {64, 64}, action = {type = "discrete", n = 2}, seed = 1}
  local val = with_value and core.net{in_dim = 4, hidden = {64, 64}, out_dim = 1, seed = 2} or nil
  local T = 128
  local r = v:rollout(T)
  local sps = measure(function(k)
    for _ = 1, k / (T * n) do v:collect(r, pol, val) end
  end, T * n)
  v:close()
  r:close()
  return sps
end
for _, cfg in ipairs({{8, 0}, {8, 2}, {16, 0}, {16, 2}}) do
  report(string.format("(c) collect, policy, %d envs, %d threads", cfg[1], cfg[2]),
         collect(cfg[1], cfg[2], false))
  report(string.format("(c) collect, policy + value, %d envs, %d threads", cfg[1], cfg[2]),
         collect(cfg[1], cfg[2], true))
end

-- (d) the C limit
local build = os.getenv("BUILD") or "build"
local limit, climit
local p = io.popen(build .. "/bench/bench_cartpole_c 2>/dev/null")
if p then
  for line in p:lines() do
    local name, x = line:match("^(%S+): (%d+) steps/s")
    if name == "cartpole_c" then limit = tonumber(x) end
    if name == "collect_c" then climit = tonumber(x) end
  end
  p:close()
end
if limit then
  report("(d) C CartPole dynamics alone (the limit)", limit)
  if climit then report("(d') C CartPole + collect with policy + value, 8 envs", climit) end
else
  print("  (d) " .. build .. "/bench/bench_cartpole_c not built: no C limit")
end

print("ratios:")
local a = results["(a) plain Lua loop, 8 envs, one state"]
for _, k in ipairs({"(b) vec engine, 8 envs, 0 threads", "(b) vec engine, 8 envs, 1 threads",
                    "(b) vec engine, 8 envs, 2 threads", "(b) vec engine, 16 envs, 2 threads"}) do
  print(string.format("  %-52s %6.2f", k .. " / (a)", results[k] / a))
end
if limit then
  for _, k in ipairs({"(c) collect, policy, 8 envs, 0 threads", "(c) collect, policy, 16 envs, 2 threads",
                      "(c) collect, policy + value, 16 envs, 2 threads"}) do
    print(string.format("  %-52s %8.4f", k .. " / (d)", results[k] / limit))
  end
  print(string.format("  %-52s %8.4f", "(a) / (d)", a / limit))
end
