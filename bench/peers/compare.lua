-- bench/peers/compare.lua — moonrl beside the Python stack (PyTorch), both
-- measured in this one run on this machine, for the README's table.
--
--   build/moonrl bench/peers/compare.lua [PPO_STEPS]     (what `make bench-peers` runs)
--
-- moonrl's three figures are measured here the way bench/run_all.lua does
-- (policy:act, bench_kernels' train b=128, PPO with CleanRL's config); the
-- peer's come from bench/peers/torch_bench.py (run with $PYTHON, default
-- /usr/bin/python3, Debian's python3-torch).  Figures, never pass/fail.
-- Writes $BUILD/peers.json.

local rl = require "moonrl"
local core = rl.core
local vec = require "moonrl.vec"

local now = core.now
local BUILD = os.getenv("BUILD") or "build"
local PYTHON = os.getenv("PYTHON") or "/usr/bin/python3"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local STEPS = tonumber(arg and arg[1]) or 100000
local REPEAT_SECS, REPEATS = 0.5, 5

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

local moon = {}
print(("== moonrl (%s, single thread) =="):format(_VERSION))

-- 1. policy:act on one observation (a Lua table): action and its log-prob.
do
  local p = core.policy{obs_dim = 4, hidden = {64, 64}, action = {type = "discrete", n = 2}, seed = 1}
  local obs = {0.01, -0.02, 0.03, 0.04}
  local acc = 0
  local chunk = 100000
  for i = 1, chunk do obs[1] = (i % 7) * 0.01; acc = acc + p:act(obs) end
  local per = {}
  for r = 1, REPEATS do
    local calls, t0, dt = 0, now(), 0
    repeat
      for i = 1, chunk do obs[1] = (i % 7) * 0.01; acc = acc + p:act(obs) end
      calls = calls + chunk
      dt = now() - t0
    until dt >= REPEAT_SECS
    per[r] = dt / calls
  end
  moon.act_us = median(per) * 1e6
  print(("act_us %.3f us/call  (policy:act(obs) from Lua, 4-64-64-2 tanh, one obs table -> " ..
         "sampled action + log-prob; median of %d repeats >= %.1f s; checksum %d)")
        :format(moon.act_us, REPEATS, REPEAT_SECS, acc))
end

-- 2. training step at minibatch 128, from bench_kernels (default kernel variant).
do
  local p = io.popen(BUILD .. "/bench/bench_kernels 2>&1", "r")
  local out = p and p:read("*a") or ""
  if p then p:close() end
  local variant = out:match("default kernel variant: (%S+)")
  local block = variant and out:match("kernels: " .. variant:gsub("%p", "%%%0") .. "\n(.-)\n\n") or ""
  local sps = block:match("4%-64%-64%-2 tanh %(policy%).-train%s+b=128%s+([%d.]+) M samples/s")
  moon.train_sps = sps and tonumber(sps) * 1e6
  print(("train_mb128_samples_per_s %s samples/s  (bench_kernels, %s kernels: C mlp_forward + " ..
         "mlp_backward from a given output gradient + Adam, grad zeroed each step)")
        :format(moon.train_sps and ("%.0f"):format(moon.train_sps) or "n/a", tostring(variant)))
end

-- 3. PPO with CleanRL's ppo.py config on CartPole-v1 (Lua env), STEPS steps.
do
  local r = dofile(here .. "../lib/cleanrl_ppo.lua")(STEPS)
  moon.ppo_sps, moon.ppo_first, moon.ppo_final = r.sps, r.first, r.final
  local dt, ut, first = r.seconds, r.update_time, r.first
  print(("ppo_cleanrl_config_sps %.0f env steps/s  (%d steps in %.2f s, update %.2f s; final mean " ..
         "of last 20 returns %.1f, first >= 475 at %s steps; CartPole-v1 in Lua, 4 envs, no threads)")
        :format(moon.ppo_sps, r.steps, dt, ut, moon.ppo_final, tostring(first)))
end

-- ------------------------------------------------------------ the peer
print("")
local json = BUILD .. "/peers_torch.json"
os.remove(json)
local cmd = ("%s -u %storch_bench.py --steps %d --json %s 2>&1"):format(PYTHON, here, STEPS, json)
local pipe = assert(io.popen(cmd, "r"))
for line in pipe:lines() do print(line) end
local ok = pipe:close()
local peer = {}
do
  local f = io.open(json, "r")
  local s = f and f:read("*a") or ""
  if f then f:close() end
  for k, v in s:gmatch('"([%w_]+)":%s*([^,\n}]+)') do
    if v ~= "null" then peer[k] = tonumber(v) or (v:gsub('^"(.*)"$', "%1")) end
  end
end
if not ok or not peer.act_us_torch then
  print(("peer not measured: `%s` failed (is python3-torch installed? `apt-get install -y " ..
         "python3-torch python3-numpy`)"):format(cmd))
end

-- ------------------------------------------------------------ the table
local function fmt(v, unit)
  if type(v) ~= "number" then return "n/a" end
  if unit == "us" then return ("%.3f us"):format(v) end
  if v >= 1e6 then return ("%.2f M"):format(v / 1e6) end
  return ("%.0f"):format(v)
end
local rows = {
  -- figure, moonrl, peer, unit, lower is better
  {"policy act, 1 obs (us/call)", moon.act_us, peer.act_us_torch, "us", true},
  {"train fwd+bwd+Adam, mb 128 (samples/s)", moon.train_sps, peer.train_mb128_samples_per_s_torch, "/s"},
  {"PPO CleanRL config, CartPole (env steps/s)", moon.ppo_sps, peer.ppo_cleanrl_sps_torch, "/s"},
  {"PPO: first mean20 >= 475 (steps)", moon.ppo_first or "not reached",
   peer.ppo_cleanrl_first_475_steps_torch or "not reached", "steps"},
}
print(("\n== moonrl vs the Python stack (one run, this machine; torch %s, %s thread) =="):format(
  tostring(peer.torch_version or "?"), tostring(peer.torch_threads or "?")))
print(("%-44s %14s %16s %14s"):format("figure", "moonrl", "PyTorch stack", "moonrl faster"))
for _, r in ipairs(rows) do
  local m, p = r[2], r[3]
  local ratio = "-"
  if type(m) == "number" and type(p) == "number" and m > 0 and p > 0 then
    ratio = ("%.1fx"):format(r[5] and p / m or m / p)
  end
  local fm = r[4] == "steps" and tostring(m) or fmt(m, r[4])
  local fp = r[4] == "steps" and tostring(p) or fmt(p, r[4])
  print(("%-44s %14s %16s %14s"):format(r[1], fm, fp, ratio))
end
print(([[

What each figure is:
  act    moonrl: policy:act(obs) from Lua 5.4 on a 4-float table (sample + log-prob).
         PyTorch: torch.from_numpy(obs), no_grad net(obs), Categorical(logits).sample(),
         log_prob, .item() -- CleanRL's per-step call with one env.
  train  moonrl: bench_kernels' C loop (forward, backward from a given output gradient,
         Adam), no Lua in the loop and no loss/softmax.  PyTorch: Python loop of forward,
         Categorical log_prob, -mean(logp*adv), zero_grad, backward, Adam.step.
  PPO    both: CleanRL ppo.py's hyperparameters, 4 envs x 128 steps, %d env steps, seed 1.
         moonrl: rl.ppo on its Lua CartPole-v1.  PyTorch: a reimplementation of CleanRL's
         ppo.py loop on a Python/numpy CartPole-v1 (Gymnasium's dynamics, envs stepped one by
         one like SyncVectorEnv) -- NOT CleanRL + Gymnasium themselves.  Env steps differ a
         little: CleanRL runs steps // 512 whole iterations, moonrl rounds up.
  Steps to 475 is one seed of each, a learning figure, not a speed one.]]):format(STEPS))

do
  local parts = {}
  local function put(k, v)
    if type(v) == "number" then parts[#parts + 1] = ('  "%s": %.6g'):format(k, v)
    elseif v ~= nil then parts[#parts + 1] = ('  "%s": "%s"'):format(k, tostring(v))
    else parts[#parts + 1] = ('  "%s": null'):format(k) end
  end
  put("act_us_moonrl", moon.act_us)
  put("train_mb128_samples_per_s_moonrl", moon.train_sps)
  put("ppo_cleanrl_sps_moonrl", moon.ppo_sps)
  put("ppo_cleanrl_first_475_steps_moonrl", moon.ppo_first)
  put("ppo_cleanrl_final_mean20_moonrl", moon.ppo_final)
  put("act_us_torch", peer.act_us_torch)
  put("train_mb128_samples_per_s_torch", peer.train_mb128_samples_per_s_torch)
  put("ppo_cleanrl_sps_torch", peer.ppo_cleanrl_sps_torch)
  put("ppo_cleanrl_first_475_steps_torch", peer.ppo_cleanrl_first_475_steps_torch)
  put("ppo_cleanrl_final_mean20_torch", peer.ppo_cleanrl_final_mean20_torch)
  put("ppo_steps", STEPS)
  put("torch_version", peer.torch_version)
  table.sort(parts)
  local path = BUILD .. "/peers.json"
  local f = assert(io.open(path, "w"))
  f:write("{\n" .. table.concat(parts, ",\n") .. "\n}\n")
  f:close()
  print("written: " .. path .. " (and " .. json .. ")")
end
