-- bench/soak.lua [SECONDS] — a long run: PPO on a CartPole env file with
-- worker threads, an instruction budget and a memory cap, while the env
-- script is rewritten on disk (picked up by reload = "auto"; every fifth
-- rewrite is broken on purpose and must be reported, not raised) and a
-- checkpoint is saved and loaded back every few seconds.
--
--   make soak                      SOAK_SECONDS (600) seconds
--   build/moonrl bench/soak.lua 60
--   (no argument, as `make bench` runs it: SOAK_SECONDS or 15 s)
--
-- Prints RSS after warm-up (the first 10% of the run, at least 5 s) and at
-- the end, the worker states' memory, and counts of updates, reloads,
-- reload failures, checkpoints and errors.  Exits 1 on any error or when
-- RSS grew by more than max(10%, 8 MiB) after warm-up.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local root = here .. "../"
package.path = root .. "scripts/?.lua;" .. root .. "scripts/?/init.lua;" .. package.path

local rl = require "moonrl"
local core = rl.core

local seconds = tonumber(arg and arg[1]) or tonumber(os.getenv("SOAK_SECONDS")) or 15
local now = core.now

local function rss_kib()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local env_file = dir .. "/SoakCartPole.lua"
local base = assert(io.open(root .. "envs/CartPole-v1.lua")):read("*a")

-- Variant k: the real CartPole with a marker comment (so the file changes);
-- a broken variant raises while loading.
local version = 0
local function write_env(broken)
  version = version + 1
  local text = "-- soak variant " .. version .. "\n" .. base
  if broken then text = "error('soak: broken variant " .. version .. " on purpose')\n" .. text end
  local ok, err = require("moonrl.log").write_atomic(env_file, text)
  assert(ok, err)
end
write_env(false)

local reloads, reload_failures, unexpected = 0, 0, {}
local expect_failure = false
local env = rl.make(env_file, {
  num_envs = 8, threads = 2, seed = 1, budget = 1000000, memory = 32 * 1024 * 1024,
  reload = "auto", reload_every = 64,
  on_reload = function(ok, err)
    if ok then
      reloads = reloads + 1
    elseif expect_failure and tostring(err):find("on purpose", 1, true) then
      reload_failures = reload_failures + 1
    else
      unexpected[#unexpected + 1] = "reload: " .. tostring(err)
    end
  end,
})
local ckpt = dir .. "/soak.safetensors"
local agent = rl.ppo{env = env, n_steps = 128, epochs = 4, minibatch_size = 256,
                     quiet = true, seed = 1, log = dir .. "/log.csv"}

local t0 = now()
local warm = math.max(5, seconds * 0.1)
local rss_warm, rss_end, t_warm
local updates, saves, errors = 0, 0, 0
local next_rewrite, next_save, rewrites = t0 + 2, t0 + 3, 0
local last_print = t0
print(("soak: %d s, PPO on %s (8 envs, 2 threads, budget 1e6, memory cap 32 MiB), RSS %.1f MiB at start")
      :format(seconds, env_file, (rss_kib() or 0) / 1024))
while now() - t0 < seconds do
  local ok, err = pcall(function()
    agent:collect()
    agent:update()
  end)
  if ok then
    updates = updates + 1
  else
    errors = errors + 1
    unexpected[#unexpected + 1] = tostring(err)
    if errors > 10 then break end
  end
  local t = now()
  if t >= next_rewrite then
    -- every fifth rewrite is broken; the next one repairs it
    rewrites = rewrites + 1
    expect_failure = rewrites % 5 == 0
    write_env(expect_failure)
    next_rewrite = t + 1
  end
  if t >= next_save then
    local sok, serr = pcall(function()
      agent:save(ckpt)
      local p = rl.load(ckpt)
      assert(p:nparams() == agent.policy:nparams())
      p:close()
    end)
    if sok then saves = saves + 1 else unexpected[#unexpected + 1] = "save: " .. tostring(serr) end
    next_save = t + 3
  end
  if not rss_warm and t - t0 >= warm then
    collectgarbage("collect")
    rss_warm, t_warm = rss_kib(), t - t0
  end
  if t - last_print >= 60 then
    last_print = t
    print(("  %4.0f s: %d updates, %d steps, RSS %.1f MiB, workers %.1f MiB, mean return %s")
          :format(t - t0, updates, agent.steps_done, (rss_kib() or 0) / 1024,
                  env.handle:memory() / 1048576, tostring(agent:episode_stats().mean_return)))
  end
end
collectgarbage("collect")
rss_end = rss_kib()
local elapsed = now() - t0
local used = env.handle:memory()
agent:close()
env:close()
os.execute("rm -rf '" .. dir .. "'")

print(("soak: %.0f s, %d updates, %d env steps, %d env rewrites: %d reloads, %d broken rewrites reported (not raised), %d checkpoints saved and loaded")
      :format(elapsed, updates, agent.steps_done, rewrites, reloads, reload_failures, saves))
print(("worker Lua states: %.1f MiB at the end"):format(used / 1048576))
local status = 0
if rss_warm and rss_end then
  local growth = rss_end - rss_warm
  local bound = math.max(rss_warm * 0.10, 8 * 1024)
  print(("RSS: %.1f MiB after warm-up (%.0f s), %.1f MiB at the end: %+.2f MiB (bound %.1f MiB)")
        :format(rss_warm / 1024, t_warm, rss_end / 1024, growth / 1024, bound / 1024))
  if growth > bound then status = 1; print("soak: FAIL, RSS grew beyond the bound") end
else
  print("RSS: not measured (no /proc/self/status, or the run was shorter than the warm-up)")
end
if #unexpected > 0 then
  status = 1
  print(("soak: FAIL, %d unexpected errors; the first:"):format(#unexpected))
  for i = 1, math.min(5, #unexpected) do print("  " .. unexpected[i]) end
end
if status == 0 then print("soak: ok") end
os.exit(status)
