-- bench/bench_bg.lua — the game thread's cost per frame while a PPO update
-- of examples/love's agent (4-64-64-2 policy and critic, n_steps 512,
-- minibatch 64, 10 epochs, Adam) runs on the background trainer
-- (core.bgtrain).  Run by bench/run_all.lua (make bench), or alone:
--   BUILD=build build/moonrl bench/bench_bg.lua [frames]
--   (LuaJIT: LUA_PATH="bindings/luajit/?.lua;scripts/?.lua;;" luajit bench/bench_bg.lua)
--
-- A frame is what rl.agent does on the game thread in background mode:
-- act (policy:act on a flat table, the allocation-free path), observe (the
-- transition into a moonrl.Rollout with core.rollout_put / rollout_outcome),
-- poll the trainer and publish when it is done, and submit the full rollout
-- (copied by the call; V, bootstraps and GAE run on the thread) when the
-- trainer is free.  The world step is not timed.  Until rl.agent has a background mode, these core-level calls
-- stand in for agent:act / agent:observe.  Only frames that start while an
-- update runs are counted.  Prints "bg_train_frame_ms_median X" and
-- "bg_train_frame_ms_p99 Y" (and the max, the frame count, the updates).

local core = require "moonrl.core"
local now = core.now

local FRAMES = tonumber(arg and arg[1]) or 200000
local OBS, NA, T = 4, 2, 512
local CFG = {epochs = 10, minibatch_size = 64, lr = 3e-4, ent_coef = 0, vf_coef = 0.5,
             max_grad_norm = 0.5}

local p = core.policy{obs_dim = OBS, hidden = {64, 64}, action = {type = "discrete", n = NA}, seed = 1}
local v = core.net{in_dim = OBS, hidden = {64, 64}, out_dim = 1, seed = 2}
local po = core.optim{kind = "adam", n = p:nparams()}
local vo = core.optim{kind = "adam", n = v:nparams()}
local bg = core.bgtrain(p, v, po, vo)

-- CartPole's dynamics (examples/love/game.lua's world), untimed
local x, xd, th, thd = 0, 0, 0.02, 0
local steps_in_ep = 0
local function world_step(a)
  local f = a == 1 and 10 or -10
  local ct, st = math.cos(th), math.sin(th)
  local tmp = (f + 0.05 * thd * thd * st) / 1.1
  local tha = (9.8 * st - ct * tmp) / (0.5 * (4 / 3 - 0.1 * ct * ct / 1.1))
  local xa = tmp - 0.05 * tha * ct / 1.1
  x, xd, th, thd = x + 0.02 * xd, xd + 0.02 * xa, th + 0.02 * thd, thd + 0.02 * tha
  steps_in_ep = steps_in_ep + 1
  local term = x < -2.4 or x > 2.4 or th < -0.21 or th > 0.21
  local trunc = not term and steps_in_ep >= 500
  return 1, term, trunc
end
local function world_reset(i)
  x, xd, th, thd = 0.01 * ((i % 7) - 3), 0, 0.01 * ((i % 5) - 2), 0
  steps_in_ep = 0
end

local ro = core.rollout{steps = T, num_envs = 1, obs_dim = OBS, action_width = 1}
local boot = {0, 0, 0, 0}
local sub = {rollout = ro, boot_obs = boot, gamma = 0.99, lambda = 0.95}
local act1 = {0}

local obs = {x, xd, th, thd}
local n, times, k, updates, eps = 0, {}, 0, 0, 0
local running = false
local submit_max = 0
local r, te, tr = 0, false, false
pcall(collectgarbage, "generational")
for f = 1, FRAMES do
  obs[1], obs[2], obs[3], obs[4] = x, xd, th, thd
  local counted = running
  local t0 = now()
  -- observe the previous step's outcome, then act and record
  if n > 0 then core.rollout_outcome(ro, n - 1, 0, r, te, tr) end
  local a, lp = p:act(obs)
  -- poll, publish, submit
  local s = bg:poll()
  if s == "done" then
    bg:publish(p)
    updates = updates + 1
    s = "idle"
  end
  if n == T and s ~= "running" then
    boot[1], boot[2], boot[3], boot[4] = obs[1], obs[2], obs[3], obs[4]
    local ts = now()
    bg:submit(sub, CFG)
    ts = now() - ts
    if ts > submit_max then submit_max = ts end
    n = 0
  end
  if n < T then
    act1[1] = a
    core.rollout_put(ro, n, 0, obs, act1, lp)
    n = n + 1
  end
  running = s == "running" or n == 1
  local dt = now() - t0
  if counted then
    k = k + 1
    times[k] = dt
  end
  -- the world (untimed)
  r, te, tr = world_step(a)
  if te or tr then
    eps = eps + 1
    world_reset(f)
  end
end
bg:wait()
bg:close()
ro:close()

table.sort(times)
local function q(p_) return times[math.max(1, math.ceil(p_ * k))] * 1000 end
if k == 0 then
  print("bench_bg: no frame ran during an update")
  os.exit(1)
end
print(("bench_bg: %d frames during background updates (of %d), %d updates published, %d episodes")
      :format(k, FRAMES, updates, eps))
print(("bg_train_frame_ms_median %.6f"):format(q(0.5)))
print(("bg_train_frame_ms_p99 %.6f"):format(q(0.99)))
print(("bg_train_frame_ms_max %.6f"):format(times[k] * 1000))
print(("bg_submit_ms_max %.6f (copying the %d-step rollout)"):format(submit_max * 1000, T))
