-- bench/run_all.lua — every benchmark of `make bench`, and the issues'
-- figures with their targets, also written to $BUILD/bench.json:
--
--   ppo_cleanrl_config_sps         end-to-end PPO, CleanRL's CartPole config
--   solve_seconds_median           time to solve, from process start, 5 seeds
--   act_us_lua54, act_us_luajit    policy:act(obs), 4-64-64-2
--   train_mb128_samples_per_s      fwd+bwd+Adam, 4-64-64-2, minibatch 128
--   train_256wide_peak_fraction    4-256-256-2 at batch 512, share of FMA peak
--   conv_train_b256_peak_fraction  conv encoder fwd+bwd, batch 256, 10x10 grids
--   rollout_2threads_vs_plain_lua  engine (2 threads) / plain Lua loop
--   luajit_rollout_2workers_vs_1   LuaJIT env file: 2 worker states / 1
--   main_job_peak_rss_mib          peak RSS of build/moonrl examples/main.lua
--   bg_train_frame_ms_median/_p99  game-thread frame cost during a background update
--   masked_act_vs_categorical_act, multidiscrete_act_vs_categorical_act
--                                  the runtime's act with a mask / composite
--                                  action against plain categorical (…_lua54:
--                                  the same through the Lua 5.4 binding)
--
-- then a scaling table (steps/s against num_envs and hidden width, update
-- time against minibatch size), drawn to $BUILD/scaling.svg (and docs/ when
-- MOONRL_UPDATE_DOCS is set).
--
--   build/moonrl bench/run_all.lua            (what `make bench` runs)
--   build/moonrl bench/run_all.lua --quick    (shorter runs)
-- Figures, never pass/fail: "met" beside a target is information.  The
-- machines are shared and noisy; ratios come from one run.
-- Child modes (used by this script): --solve SEED, --soak SECONDS.

local rl = require "moonrl"
local core = rl.core
local vec = require "moonrl.vec"
local envs = require "moonrl.envs"

local now = core.now
local BUILD = os.getenv("BUILD") or "build"
local HOST = BUILD .. "/moonrl"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local root = here .. "../"
local mode = arg and arg[1]

-- ------------------------------------------------------------ child modes

-- Time to solve with moonrl's tuned config: prints "solved STEPS" the
-- moment the mean of the last 20 returns reaches the target, then exits.
if mode == "--solve" then
  local seed = tonumber(arg[2]) or 1
  local cfg = dofile(root .. "examples/configs/cartpole_ppo.lua")
  local eo = {}
  for k, v in pairs(cfg.env_opts or {}) do eo[k] = v end
  eo.seed = seed
  local env = vec.make(cfg.env, eo)
  local o = {env = env, seed = seed, progress = false}
  for k, v in pairs(cfg.hyperparameters) do o[k] = v end
  local agent = rl[cfg.algo](o)
  local t0 = now()
  local hit
  agent:learn(cfg.steps * 5, {on_update = function(s)
    if s.episodes >= 20 and s.mean_return and s.mean_return >= cfg.target then
      hit = s.steps
      return false
    end
  end})
  io.write(("solved %s %.4f\n"):format(hit and tostring(hit) or "no", now() - t0))
  io.stdout:flush()
  os.exit(hit and 0 or 1)
end

local function rss_kib()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")), tonumber(s:match("VmHWM:%s*(%d+)"))
end

-- Memory over a long run: PPO on CartPole (the main job's config) for
-- SECONDS, printing "rss T KIB" once a second.
if mode == "--soak" then
  local secs = tonumber(arg[2]) or 10
  local cfg = dofile(root .. "examples/configs/cartpole_ppo.lua")
  local env = vec.make(cfg.env, {num_envs = 8, threads = 0, seed = 1})
  local o = {env = env, seed = 1, progress = false}
  for k, v in pairs(cfg.hyperparameters) do o[k] = v end
  local agent = rl.ppo(o)
  local t0, next_t = now(), 0
  while now() - t0 < secs do
    agent:learn(5120, {on_episode = function() end})
    local t = now() - t0
    if t >= next_t then
      io.write(("rss %.1f %d\n"):format(t, (rss_kib())))
      io.stdout:flush()
      next_t = next_t + 1
    end
  end
  local cur, hwm = rss_kib()
  io.write(("rss %.1f %d\nhwm %d\n"):format(now() - t0, cur, hwm))
  os.exit(0)
end

-- ------------------------------------------------------------ helpers

local QUICK = mode == "--quick"
local figures, order, targets = {}, {}, {}

local function run(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  p:close()
  return out
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

-- key = value with the target beside it; cmp: ">=" or "<="; value nil = n/a.
local function figure(key, value, cmp, target, unit, note)
  figures[key] = value
  order[#order + 1] = key
  targets[key] = {cmp = cmp, target = target, unit = unit, note = note}
end

-- Runs body(k) (k units of work) until `secs` have passed; returns units/s.
local function rate(body, chunk, secs)
  body(chunk)
  local n, t0 = 0, now()
  repeat
    body(chunk)
    n = n + chunk
  until now() - t0 >= secs
  return n / (now() - t0)
end

print("== make bench: moonrl benchmarks (" .. (QUICK and "quick" or "full") .. ") ==")

-- ------------------------------------------------ the other benchmarks
-- C programs (build/bench/*) and bench/*.lua, with their own output; the
-- kernel figures are read from bench_kernels'.

local kern_out, conv_out, spaces_out = "", "", ""
do
  local p = io.popen("ls " .. BUILD .. "/bench/ 2>/dev/null")
  local progs = {}
  for name in p:lines() do progs[#progs + 1] = name end
  p:close()
  table.sort(progs)
  for _, name in ipairs(progs) do
    print("\n-- " .. BUILD .. "/bench/" .. name)
    local out = run(BUILD .. "/bench/" .. name)
    io.write(out)
    if name == "bench_kernels" then kern_out = out end
    if name == "bench_conv" then conv_out = out end
    if name == "bench_act_spaces" then spaces_out = out end
  end
  local l = io.popen("ls " .. here .. "*.lua 2>/dev/null")
  for path in l:lines() do
    if not path:match("run_all%.lua$") then
      print("\n-- " .. path)
      io.write(run(HOST .. " " .. path))
    end
  end
  l:close()
end

print("\n== the figures of the issues ==")

-- ---------------------------------------------------- 1. PPO end to end
-- CleanRL's ppo.py defaults on CartPole-v1: 4 envs × 128 steps, 4
-- minibatches (128), 4 epochs, lr 2.5e-4 annealed to 0, γ 0.99, λ 0.95,
-- clip 0.2, clipped value loss, entropy 0.01, vf 0.5, max grad norm 0.5,
-- separate 64-64 tanh networks, 500k steps.
do
  local r = dofile(here .. "lib/cleanrl_ppo.lua")(QUICK and 100000 or 500000)
  local sps, final, first, dt, ut = r.sps, r.final, r.first, r.seconds, r.update_time
  print(("PPO, CleanRL config: %d steps in %.2f s (collect %.2f s, update %.2f s); " ..
         "mean of last 20 returns %.1f, first >= 475 at %s steps")
        :format(r.steps, dt, dt - ut, ut, final, tostring(first)))
  figure("ppo_cleanrl_config_sps", sps, ">=", 500000, "env steps/s",
         ("final mean20 %.1f (target >= 475), first >= 475 at %s steps"):format(final, tostring(first)))
  figures.ppo_cleanrl_final_mean20 = final
end

-- ---------------------------------------------------- 2. time to solve
do
  local secs, steps = {}, {}
  for seed = 1, 5 do
    local t0 = now()
    local p = assert(io.popen(HOST .. " " .. here .. "run_all.lua --solve " .. seed, "r"))
    local line = p:read("*l") or ""
    local t = now() - t0
    p:close()
    local st, inproc = line:match("^solved (%S+) (%S+)")
    secs[seed], steps[seed] = t, tonumber(st)
    print(("time to solve, seed %d: %s steps, %.3f s from process start (%.3f s in the trainer)")
          :format(seed, tostring(st), t, tonumber(inproc) or 0 / 0))
  end
  local sorted = {}
  for i = 1, 5 do sorted[i] = steps[i] and secs[i] or math.huge end
  table.sort(sorted)
  figure("solve_seconds_median", sorted[3], "<=", 0.5, "s",
         "median of 5 seeds, from process start (examples/configs/cartpole_ppo.lua)")
end

-- ---------------------------------------------------- 3. inference
do
  local p = core.policy{obs_dim = 4, hidden = {64, 64}, action = {type = "discrete", n = 2}, seed = 1}
  local obs = {0.01, -0.02, 0.03, 0.04}
  local N = QUICK and 300000 or 2000000
  local best = math.huge
  local acc = 0
  for _ = 1, 3 do
    local t0 = now()
    for i = 1, N do
      obs[1] = (i % 7) * 0.01
      acc = acc + p:act(obs)
    end
    local dt = (now() - t0) / N
    if dt < best then best = dt end
  end
  -- allocation per call: the collector's count over calls with it stopped
  collectgarbage("collect")
  collectgarbage("stop")
  local k0 = collectgarbage("count")
  for i = 1, 100000 do obs[1] = (i % 7) * 0.01; acc = acc + p:act(obs) end
  local bytes = (collectgarbage("count") - k0) * 1024 / 100000
  collectgarbage("restart")
  print(("policy:act(obs) Lua 5.4: %.3f us/call, %.2f bytes allocated per call (checksum %d)")
        :format(best * 1e6, bytes, acc))
  figure("act_us_lua54", best * 1e6, "<=", 0.25, "us", ("%.2f bytes/call"):format(bytes))
  figures.act_bytes_per_call_lua54 = bytes

  local c_ns = kern_out:match("4%-64%-64%-2 tanh %(policy%)%s*\n%s*forward%s+b=1%s+[%d.]+ M samples/s%s+[%d.]+ GFLOP/s%s+(%d+) ns/call")
  print(("C: batch-1 forward of the 4-64-64-2 network (bench_kernels): %s ns"):format(tostring(c_ns)))
  figures.forward_b1_ns_c = tonumber(c_ns)

  local lj
  if exists(here .. "bench_act.lua") and run("command -v luajit") ~= "" then
    local out = run("BUILD=" .. BUILD .. " luajit " .. here .. "bench_act.lua " .. (QUICK and 300000 or 2000000) .. " 2>&1")
    io.write(out)
    lj = tonumber(out:match("luajit%s+policy:act%(table%) 4%-64%-64%-2%s+([%d.]+) ns/call"))
  end
  if lj then
    figure("act_us_luajit", lj / 1000, "<=", 0.13, "us", "through bindings/luajit (FFI)")
  else
    print("policy:act under LuaJIT: pending (bindings/luajit not usable here)")
    figure("act_us_luajit", nil, "<=", 0.13, "us", "pending: LuaJIT binding not usable")
  end
end

-- ------------------------------- 3b. acting in the action spaces of issue 15
-- policy:act of one observation through the binding, 4-64-64-8 (tanh): a
-- plain categorical over 8 against the same network masked (5 of 8 valid,
-- a new mask table each call's row) and as multi-discrete {2, 2, 2, 2}.
do
  local function policy(action)
    return core.policy{obs_dim = 4, hidden = {64, 64}, action = action, seed = 1}
  end
  local cat = policy({type = "discrete", n = 8})
  local md = policy({type = "multi_discrete", nvec = {2, 2, 2, 2}})
  local obs = {0.01, -0.02, 0.03, 0.04}
  local masks = {{1, 0, 1, 1, 0, 1, 0, 1}, {0, 1, 1, 0, 1, 1, 1, 0}}
  local N = QUICK and 200000 or 1000000
  local acc = 0
  local function best_of(f)
    local best = math.huge
    for _ = 1, 3 do
      local t0 = now()
      f()
      local dt = (now() - t0) / N
      if dt < best then best = dt end
    end
    return best
  end
  local t_cat = best_of(function()
    for i = 1, N do obs[1] = (i % 7) * 0.01; acc = acc + cat:act(obs) end
  end)
  local t_mask = best_of(function()
    for i = 1, N do obs[1] = (i % 7) * 0.01; acc = acc + cat:act(obs, false, masks[i % 2 + 1]) end
  end)
  local t_md = best_of(function()
    for i = 1, N do obs[1] = (i % 7) * 0.01; acc = acc + md:act(obs)[1] end
  end)
  print(("policy:act 4-64-64-8: categorical %.3f us, masked %.3f us, multi-discrete {2,2,2,2} %.3f us (checksum %d)")
        :format(t_cat * 1e6, t_mask * 1e6, t_md * 1e6, acc))
  -- the same ratios as bench_act_spaces' (the runtime), through Lua 5.4
  figure("masked_act_vs_categorical_act_lua54", t_mask / t_cat, "<=", 1.3, "x",
         "policy:act(obs, false, mask) / policy:act(obs), 4-64-64-8, through the binding")
  figure("multidiscrete_act_vs_categorical_act_lua54", t_md / t_cat, "<=", 1.3, "x",
         "multi_discrete {2,2,2,2} / categorical 8, 4-64-64-8, through the binding")
end

-- ---------------------------------------------------- 4. training kernel
do
  local peak = tonumber(kern_out:match("FMA peak[^:]*: ([%d.]+) GFLOP/s"))
  local block = kern_out:match("kernels: %S+\n(.-)\n\n") or ""
  local sps, gf = block:match("4%-64%-64%-2 tanh %(policy%).-train%s+b=128%s+([%d.]+) M samples/s%s+([%d.]+) GFLOP/s")
  local frac = block:match("4%-256%-256%-2 tanh.-train%s+b=512.-([%d.]+)%% of peak")
  sps, gf, frac = tonumber(sps), tonumber(gf), tonumber(frac)
  local pct = (gf and peak) and 100 * gf / peak or nil
  figure("train_mb128_samples_per_s", sps and sps * 1e6, ">=", 5e6, "samples/s",
         pct and ("%.1f%% of the measured FP32 FMA peak (%.1f GFLOP/s)"):format(pct, peak) or nil)
  figures.train_mb128_peak_fraction = pct and pct / 100
  figure("train_256wide_peak_fraction", frac and frac / 100, ">=", 0.60, "of peak",
         "4-256-256-2, batch 512, fwd+bwd+Adam")
  -- the conv encoder of issue 15 (bench_conv prints the fraction itself)
  figure("conv_train_b256_peak_fraction",
         tonumber(conv_out:match("conv_train_b256_peak_fraction ([%d.]+)")), ">=", 0.40,
         "of peak", "4x10x10 -> conv16 k3 -> conv32 k3, batch 256, fwd+bwd")
  -- the action spaces of issue 15 (bench_act_spaces prints the ratios)
  figure("masked_act_vs_categorical_act",
         tonumber(spaces_out:match("masked_act_vs_categorical_act ([%d.]+)")), "<=", 1.3,
         "x", "8-64-64-12, half the actions masked, the worse of batch 1 and 64")
  figure("multidiscrete_act_vs_categorical_act",
         tonumber(spaces_out:match("multidiscrete_act_vs_categorical_act ([%d.]+)")), "<=", 1.3,
         "x", "8-64-64-{4,4,4} against 8-64-64-12, the worse of batch 1 and 64")
end

-- ---------------------------------------------------- 5. rollouts
do
  local N, secs = 32, QUICK and 0.3 or 1.0
  local list, elapsed = {}, {}
  for i = 1, N do
    list[i] = envs.load("CartPole-v1", nil, {probe = false})
    list[i]:reset(i)
    elapsed[i] = 0
  end
  local random = math.random
  local plain = rate(function(k)
    for _ = 1, k / N do
      for i = 1, N do
        local e = list[i]
        local _, _, term, trunc = e:step(random(0, 1))
        local t = elapsed[i] + 1
        if term or trunc or t >= 500 then e:reset(); t = 0 end
        elapsed[i] = t
      end
    end
  end, N * 100, secs)
  local function engine(threads)
    local v = vec.make("CartPole-v1", {num_envs = N, threads = threads, seed = 1})
    v:reset()
    local acts = {}
    local r = rate(function(k)
      for _ = 1, k / N do
        for i = 1, N do acts[i] = random(0, 1) end
        v:step(acts)
      end
    end, N * 100, secs)
    v:close()
    return r
  end
  local e0, e2 = engine(0), engine(2)
  local v = vec.make("CartPole-v1", {num_envs = N, threads = 2, seed = 1})
  local pol = core.policy{obs_dim = 4, hidden = {64, 64}, action = {type = "discrete", n = 2}, seed = 1}
  local ro = v:rollout(64)
  local col = rate(function(k) for _ = 1, k / (64 * N) do v:collect(ro, pol) end end, 64 * N, secs)
  ro:close()
  v:close()
  print(("rollouts, CartPole-v1 (Lua), %d envs: plain Lua loop %.0f, engine 0 threads %.0f, " ..
         "engine 2 threads %.0f, engine 2 threads + policy forward (collect) %.0f steps/s")
        :format(N, plain, e0, e2, col))
  figure("rollout_2threads_vs_plain_lua", e2 / plain, ">=", 1.7, "x",
         ("collect with the policy = %.2fx the random-action engine (target >= 0.5, within 2x)"):format(col / e2))
  figures.rollout_policy_vs_engine = col / e2
end

-- ------------------------------------- 5b. LuaJIT env files on worker states
-- An env costing >= 1 us per step (bench/lib/busy_env.lua), 8 envs, under
-- LuaJIT: 2 worker states (threads = 2) against 1.
do
  local ratio
  if run("command -v luajit") ~= "" then
    local out = run("BUILD=" .. BUILD .. " luajit " .. root .. "bindings/luajit/run.lua " ..
                    here .. "luajit_workers.lua " .. (QUICK and 0.3 or 1.0) .. " 2>&1")
    io.write(out)
    ratio = tonumber(out:match("workers_2_vs_1 ([%d.]+)"))
  end
  figure("luajit_rollout_2workers_vs_1", ratio, ">=", 1.7, "x",
         ratio and "bench/luajit_workers.lua under LuaJIT" or "pending: LuaJIT not usable")
end

-- ---------------------------------------------------- 5b. background training
-- The game thread's cost per frame (agent:act + agent:observe +
-- agent:train_step, which publishes) while examples/love's agent, rl.agent
-- with background = true on the example's game logic, updates on its
-- trainer thread (bench/bench_bg.lua; frames padded to 0.03 ms).  The
-- frames-to-return comparison with sliced training is
-- `bench/bench_bg.lua --compare` (slow, not run here).
do
  local out = run(HOST .. " " .. here .. "bench_bg.lua " .. (QUICK and 30000 or 100000) .. " 2>&1")
  io.write(out)
  local med = tonumber(out:match("bg_train_frame_ms_median ([%d.e+-]+)"))
  local p99 = tonumber(out:match("bg_train_frame_ms_p99 ([%d.e+-]+)"))
  local mx = tonumber(out:match("bg_train_frame_ms_max ([%d.e+-]+)"))
  figure("bg_train_frame_ms_median", med, "<=", 0.05, "ms", "bench/bench_bg.lua, rl.agent background = true")
  figure("bg_train_frame_ms_p99", p99, "<=", 0.5, "ms",
         mx and ("max %.3f ms"):format(mx) or nil)
end

-- ---------------------------------------------------- 6. memory
do
  local out = run("/usr/bin/time -f 'maxrss %M' " .. HOST .. " " .. root .. "examples/main.lua 2>&1 >/dev/null")
  local kib = tonumber(out:match("maxrss (%d+)"))
  figure("main_job_peak_rss_mib", kib and kib / 1024, "<=", 32, "MiB", "build/moonrl examples/main.lua")
  local secs = tonumber(os.getenv("MOONRL_SOAK_SECONDS")) or (QUICK and 5 or 20)
  local s = run(HOST .. " " .. here .. "run_all.lua --soak " .. secs)
  local first, last, t_last
  for t, k in s:gmatch("rss ([%d.]+) (%d+)") do
    t, k = tonumber(t), tonumber(k)
    if t >= 1 and not first then first = k end
    last, t_last = k, t
  end
  local hwm = tonumber(s:match("hwm (%d+)"))
  if first and last then
    print(("memory over a %.0f s PPO run: RSS %.1f MiB at 1 s, %.1f MiB at the end (%+.2f MiB), peak %.1f MiB")
          :format(t_last, first / 1024, last / 1024, (last - first) / 1024, (hwm or 0) / 1024))
    figures.soak_rss_growth_mib = (last - first) / 1024
    figures.soak_seconds = t_last
  end
end

-- ---------------------------------------------------- scaling
print("\n== scaling ==")
local widths, nenvs = {64, 128, 256}, {1, 2, 4, 8, 16, 32, 64, 128, 256}
local scaling = {}
do
  io.write(("collect steps/s (policy + value, CartPole-v1 in Lua, threads = 2 when num_envs > 1)\n%9s"):format("num_envs"))
  for _, w in ipairs(widths) do io.write(("%14s"):format("hidden " .. w)) end
  io.write("\n")
  for _, w in ipairs(widths) do scaling[w] = {} end
  for _, n in ipairs(nenvs) do
    io.write(("%9d"):format(n))
    for _, w in ipairs(widths) do
      local v = vec.make("CartPole-v1", {num_envs = n, threads = n > 1 and 2 or 0, seed = 1})
      local pol = core.policy{obs_dim = 4, hidden = {w, w}, action = {type = "discrete", n = 2}, seed = 1}
      local val = core.net{in_dim = 4, hidden = {w, w}, out_dim = 1, seed = 2}
      local T = math.max(1, math.floor(2048 / n))
      local ro = v:rollout(T)
      local r = rate(function(k) for _ = 1, k / (T * n) do v:collect(ro, pol, val) end end,
                     T * n, QUICK and 0.1 or 0.25)
      ro:close()
      v:close()
      scaling[w][n] = r
      io.write(("%14.0f"):format(r))
      io.stdout:flush()
    end
    io.write("\n")
  end
end
local upd = {}
local mbs = {64, 128, 256, 512, 1024, 2048}
do
  print("ppo_update time against minibatch size (4-64-64-2 policy + 4-64-64-1 value, rollout 2048, 1 epoch)")
  local v = vec.make("CartPole-v1", {num_envs = 16, threads = 0, seed = 1})
  local pol = core.policy{obs_dim = 4, hidden = {64, 64}, action = {type = "discrete", n = 2}, seed = 1}
  local val = core.net{in_dim = 4, hidden = {64, 64}, out_dim = 1, seed = 2}
  local po = core.optim{kind = "adam", n = pol:nparams()}
  local vo = core.optim{kind = "adam", n = val:nparams()}
  local ro = v:rollout(128)
  v:collect(ro, pol, val)
  ro:gae(0.99, 0.95)
  print(("%10s %14s %16s"):format("minibatch", "update ms", "us per sample"))
  for _, mb in ipairs(mbs) do
    local cfg = {epochs = 1, minibatch_size = mb, lr = 0, clip_eps = 0.2, clip_value = 0.2,
                 ent_coef = 0.01, vf_coef = 0.5, max_grad_norm = 0.5}
    local per = 1 / rate(function(k) for _ = 1, k do core.ppo_update(pol, val, po, vo, ro, cfg) end end,
                         2, QUICK and 0.1 or 0.3)
    upd[mb] = per
    print(("%10d %14.3f %16.3f"):format(mb, per * 1e3, per / 2048 * 1e6))
  end
  ro:close()
  v:close()
end
do
  local plot = require "moonrl.plot"
  local series = {}
  for _, w in ipairs(widths) do
    local xs, ys = {}, {}
    for _, n in ipairs(nenvs) do xs[#xs + 1] = n; ys[#ys + 1] = scaling[w][n] end
    series[#series + 1] = {name = "hidden " .. w .. "-" .. w, x = xs, y = ys}
  end
  local a = plot.svg{title = "Collection throughput (CartPole-v1 in Lua, policy + value)",
                     xlabel = "num_envs (log scale)", ylabel = "env steps/s", series = series, logx = true}
  local xs, ys = {}, {}
  for _, mb in ipairs(mbs) do xs[#xs + 1] = mb; ys[#ys + 1] = upd[mb] / 2048 * 1e6 end
  local b = plot.svg{title = "PPO update cost against minibatch size (64-64, 1 epoch over 2048)",
                     xlabel = "minibatch size (log scale)", ylabel = "us per sample",
                     series = {{name = "policy + value", x = xs, y = ys}}, logx = true}
  local function body(s) return (s:gsub("^%s*<svg[^>]*>", ""):gsub("</svg>%s*$", "")) end
  local svg = '<svg xmlns="http://www.w3.org/2000/svg" width="720" height="840" viewBox="0 0 720 840">\n' ..
              '<g>' .. body(a) .. '</g>\n<g transform="translate(0,420)">' .. body(b) .. '</g>\n</svg>\n'
  -- Written into the build folder; the README's copy in docs/ is refreshed
  -- on request (MOONRL_UPDATE_DOCS=1), so a bench leaves the sources alone.
  local paths = {BUILD .. "/scaling.svg"}
  if os.getenv("MOONRL_UPDATE_DOCS") then paths[2] = root .. "docs/scaling.svg" end
  for _, path in ipairs(paths) do
    local ok, err = rl.core.write_file_atomic(path, svg)
    if not ok then error("cannot write " .. path .. ": " .. tostring(err)) end
    print("picture: " .. path)
  end
end

-- ---------------------------------------------------- summary + JSON
print("\n== figures and targets (issues 6, 14, 15) ==")
local function fmtv(v)
  if v == nil then return "n/a" end
  if math.abs(v) >= 1000 then return ("%.0f"):format(v) end
  if v ~= 0 and math.abs(v) < 0.1 then return ("%.3g"):format(v) end  -- µs-scale ms
  return ("%.3f"):format(v)
end
for _, k in ipairs(order) do
  local t, v = targets[k], figures[k]
  local met = v == nil and "pending" or
              ((t.cmp == ">=" and v >= t.target) or (t.cmp == "<=" and v <= t.target)) and "met" or "NOT met"
  print(("  %-32s %14s %-11s target %s %s   %s%s"):format(k, fmtv(v), t.unit, t.cmp, fmtv(t.target),
        met, t.note and ("  (" .. t.note .. ")") or ""))
end
do
  local keys = {}
  for k in pairs(figures) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = figures[k]
    parts[#parts + 1] = ('  "%s": %s'):format(k, (v == nil or v ~= v or v == math.huge) and "null" or ("%.6g"):format(v))
  end
  for _, k in ipairs(order) do
    if figures[k] == nil then parts[#parts + 1] = ('  "%s": null'):format(k) end
  end
  table.sort(parts)
  local path = BUILD .. "/bench.json"
  local f = assert(io.open(path .. ".tmp", "w"))
  f:write("{\n" .. table.concat(parts, ",\n") .. "\n}\n")
  f:close()
  assert(os.rename(path .. ".tmp", path))
  print("written: " .. path)
end
