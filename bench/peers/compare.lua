-- bench/peers/compare.lua — moonrl beside the Python stack (PyTorch), both
-- measured in this one run on this machine, for the README's table.
--
--   build/moonrl bench/peers/compare.lua [PPO_STEPS]     (what `make bench-peers` runs)
--
-- moonrl's figures are measured here the way bench/run_all.lua does
-- (policy:act, bench_kernels' train b=128, PPO with CleanRL's config), and
-- the conv policy's PPO-loss training step at minibatch 256 (issue 15's
-- conv_train_vs_torch, target >= 10x: the one figure with a target); the
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

-- 4. the conv policy's training step at minibatch 256 the way a trainer takes
-- it: policy:ppo_loss (forward, the clipped surrogate with advantages
-- standardised per minibatch, backward into the policy's grad) and an Adam
-- step, from Lua.  The MinAtar-style network: 4x10x10 -> Conv2d(16, k3) ->
-- relu -> flatten -> Linear(1024, 128) -> relu -> Linear(128, 3).  CPU time
-- (os.clock), as the peer's: the machine is shared.
do
  local B, ROWS, C, HW = 256, 8, 4, 10
  local p = core.policy{obs_shape = {C, HW, HW}, conv = {{out = 16, kernel = 3, stride = 1, padding = 0}},
                        hidden = {128}, activation = "relu", action = {type = "discrete", n = 3}, seed = 1}
  local opt = core.optim{kind = "adam", n = p:nparams()}
  local g = core.rng(2)
  local X, A, OLD, ADV = {}, {}, {}, {}
  for j = 1, ROWS do
    local x, a, adv = {}, {}, {}
    for i = 1, B do
      local row = {}
      for k = 1, C * HW * HW do row[k] = g:uniform() < 0.1 and 1 or 0 end  -- sparse 0/1 grids
      x[i], a[i], adv[i] = row, math.floor(g:uniform() * 3), g:normal()
    end
    X[j], A[j], ADV[j] = core.tensor(x), core.tensor(a), core.tensor(adv)
    OLD[j] = p:evaluate(X[j], A[j])
  end
  local opts = {clip_eps = 0.2, ent_coef = 0, normalize_advantages = true}
  local function body(n)
    for i = 1, n do
      local j = i % ROWS + 1
      p:ppo_loss(X[j], A[j], OLD[j], ADV[j], opts)
      opt:step(p, 2.5e-4)
    end
  end
  body(3)
  local t0 = os.clock()
  body(3)
  local chunk = math.max(1, math.floor(3 * 0.1 / math.max(os.clock() - t0, 1e-9)))
  local per = {}
  for r = 1, REPEATS do
    local calls, t1, dt = 0, os.clock(), 0
    repeat
      body(chunk)
      calls = calls + chunk
      dt = os.clock() - t1
    until dt >= REPEAT_SECS
    per[r] = dt / calls
  end
  moon.conv_sps = B / median(per)
  print(("conv_train_b256_samples_per_s %.0f samples/s  (policy:ppo_loss + optim:step from Lua, " ..
         "4x10x10 -> Conv2d(4,16,k3) relu -> Linear(1024,128) relu -> Linear(128,3), minibatch 256, " ..
         "clip 0.2, advantages standardised; CPU time, median of %d repeats >= %.1f s)")
        :format(moon.conv_sps, REPEATS, REPEAT_SECS))
  p:close()
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
  {"conv PPO-loss train, mb 256 (samples/s)", moon.conv_sps, peer.conv_train_b256_samples_per_s_torch,
   "/s", false, 10},
}
print(("\n== moonrl vs the Python stack (one run, this machine; torch %s, %s thread) =="):format(
  tostring(peer.torch_version or "?"), tostring(peer.torch_threads or "?")))
print(("%-44s %14s %16s %14s  %s"):format("figure", "moonrl", "PyTorch stack", "moonrl faster", "target"))
for _, r in ipairs(rows) do
  local m, p = r[2], r[3]
  local ratio, x = "-", nil
  if type(m) == "number" and type(p) == "number" and m > 0 and p > 0 then
    x = r[5] and p / m or m / p
    ratio = ("%.1fx"):format(x)
  end
  local target = "-"
  if r[6] then target = (">= %gx %s"):format(r[6], x and (x >= r[6] and "met" or "NOT met") or "n/a") end
  local fm = r[4] == "steps" and tostring(m) or fmt(m, r[4])
  local fp = r[4] == "steps" and tostring(p) or fmt(p, r[4])
  print(("%-44s %14s %16s %14s  %s"):format(r[1], fm, fp, ratio, target))
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
  Steps to 475 is one seed of each, a learning figure, not a speed one.
  conv   the same network both sides (checked: equal logits, loss and gradient for equal
         parameters): 4x10x10 -> Conv2d(4,16,k3,s1,p0) -> ReLU -> flatten (C-major) ->
         Linear(1024,128) -> ReLU -> Linear(128,3), categorical; one step = forward, PPO
         clipped loss (clip 0.2, advantages standardised per minibatch, no entropy term),
         backward, Adam (lr 2.5e-4), minibatch 256 of sparse 0/1 grids.  moonrl:
         policy:ppo_loss + optim:step from Lua.  PyTorch: CleanRL's loss lines, zero_grad,
         backward, Adam.step.  Both on process CPU time (the machine is shared), one thread.]]):format(STEPS))

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
  put("conv_train_b256_samples_per_s_moonrl", moon.conv_sps)
  put("conv_train_b256_samples_per_s_torch", peer.conv_train_b256_samples_per_s_torch)
  if moon.conv_sps and peer.conv_train_b256_samples_per_s_torch then
    put("conv_train_vs_torch", moon.conv_sps / peer.conv_train_b256_samples_per_s_torch)
  else
    put("conv_train_vs_torch", nil)
  end
  put("conv_train_vs_torch_target", 10)
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
