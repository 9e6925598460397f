-- tests/lua/trainers_spec.lua — rl.ppo / rl.trpo / rl.npg: construction from
-- an env's spaces, defaults, schedules, callbacks, the step budget,
-- collect()/update() by hand, the optional variants, and argument errors.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local rl = require "moonrl"
local core = rl.core
local raises = H.raises

local function env(n, seed, id)
  return require("moonrl.vec").make(id or "CartPole-v1", {num_envs = n or 2, seed = seed or 1})
end

local function small(algo, extra)
  local o = {env = env(2, 1), seed = 1, n_steps = 16, progress = false}
  if algo == "ppo" then o.batch_size, o.epochs = 16, 2 end
  for k, v in pairs(extra or {}) do o[k] = v end
  return rl[algo](o)
end

local function same_params(a, b)
  local pa, pb = a:params(), b:params()
  if pa:numel() ~= pb:numel() then return false end
  for i = 1, pa:numel() do if pa[i] ~= pb[i] then return false end end
  return true
end

describe("trainers", function()
  it("are callable modules of rl", function()
    for _, name in ipairs({"ppo", "trpo", "npg"}) do
      assert.is_table(rl[name])
      local t = small(name)
      assert.are.equal(name, t.algo)
      t:close()
    end
  end)

  it("build policy and value from the env's spaces, seeded", function()
    local t = small("ppo", {hidden = {32}})
    assert.are.equal(4, t.policy:obs_dim())
    assert.are.equal("discrete", t.policy:action_kind())
    assert.are.equal(2, t.policy:action_n())
    assert.are.same({32}, t.policy:spec().hidden)
    assert.are.equal(4, t.value:in_dim())
    local u = small("ppo", {hidden = {32}})
    assert.is_true(same_params(t.policy, u.policy))
    local w = small("ppo", {hidden = {32}, seed = 2})
    assert.is_false(same_params(t.policy, w.policy))
    t:close(); u:close(); w:close()
  end)

  it("builds a bounded Gaussian policy for a box env", function()
    local t = rl.ppo{env = env(2, 1, "Pendulum-v1"), n_steps = 8, batch_size = 8, progress = false}
    assert.are.equal("box", t.policy:action_kind())
    local lo, hi = t.policy:bounds()
    assert.are.same({-2}, lo)
    assert.are.same({2}, hi)
    t:learn(16)
    assert.are.equal(16, t.steps_done)
    t:close()
  end)

  it("use Stable-Baselines3's defaults", function()
    local t = rl.ppo{env = env(1, 1), progress = false}
    local hp = t.hp
    assert.are.equal(2048, hp.n_steps); assert.are.equal(64, hp.batch_size)
    assert.are.equal(10, hp.epochs); assert.are.equal(0.99, hp.gamma)
    assert.are.equal(0.95, hp.gae_lambda); assert.are.equal(0.2, hp.clip)
    assert.are.equal(3e-4, hp.lr); assert.are.equal(0, hp.ent_coef)
    assert.are.equal(0.5, hp.vf_coef); assert.are.equal(0.5, hp.max_grad_norm)
    t:close()
    local r = rl.trpo{env = env(1, 1), progress = false}
    hp = r.hp
    assert.are.equal(2048, hp.n_steps); assert.are.equal(128, hp.batch_size)
    assert.are.equal(15, hp.cg_max_steps); assert.are.equal(0.1, hp.cg_damping)
    assert.are.equal(0.8, hp.line_search_shrinking_factor)
    assert.are.equal(10, hp.line_search_max_iter); assert.are.equal(10, hp.n_critic_updates)
    assert.are.equal(1e-3, hp.lr); assert.are.equal(0.01, hp.target_kl)
    r:close()
  end)

  it("accept SB3 names as aliases", function()
    local t = rl.ppo{env = env(1, 1), learning_rate = 1e-3, n_epochs = 3, clip_range = 0.1,
                     progress = false}
    assert.are.equal(1e-3, t.hp.lr); assert.are.equal(3, t.hp.epochs); assert.are.equal(0.1, t.hp.clip)
    t:close()
    raises(function() rl.ppo{env = env(1, 1), lr = 1, learning_rate = 2} end, "give one")
  end)

  it("resolve schedules from progress and pass them to the update", function()
    local seen = {}
    local t = small("ppo", {lr = function(p) seen[#seen + 1] = p; return 1e-3 * (1 - p) end})
    local lrs = {}
    t:learn(128, {on_update = function(s) lrs[#lrs + 1] = s.lr end})
    assert.are.equal(4, #lrs)                     -- 128 / (2 envs × 16 steps)
    assert.is_true(H.close(lrs[1], 1e-3 * (1 - 32 / 128)))
    assert.is_true(H.close(lrs[4], 0))
    t:close()
  end)

  it("stop when on_update returns false and respect the budget", function()
    local t = small("ppo")
    local n = 0
    t:learn(10000, {on_update = function() n = n + 1; if n == 3 then return false end end})
    assert.are.equal(3, t.updates)
    assert.are.equal(96, t.steps_done)
    t:learn(40)   -- rounded up to whole rollouts
    assert.are.equal(160, t.steps_done)
    t:close()
  end)

  it("report each finished episode and the window statistics", function()
    local t = small("ppo")
    local eps, last = {}, nil
    t:learn(320, {on_episode = function(ep) eps[#eps + 1] = ep["return"] end,
                  on_update = function(s) last = s end})
    assert.is_true(#eps > 0)
    local k = math.min(#eps, 20)
    local s, lo, hi = 0, math.huge, -math.huge
    for i = #eps - k + 1, #eps do s = s + eps[i]; lo = math.min(lo, eps[i]); hi = math.max(hi, eps[i]) end
    assert.is_true(H.close(last.mean_return, s / k))
    assert.are.equal(lo, last.min_return)
    assert.are.equal(hi, last.max_return)
    assert.are.equal(#eps, last.episodes)
    for _, key in ipairs({"policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "lr", "steps"}) do
      assert.is_number(last[key], key)
    end
    t:close()
  end)

  it("can be driven step by step", function()
    local t = small("trpo")
    raises(function() t:update() end, "collect() first")
    assert.are.equal(32, t:collect())
    local s = t:update()
    assert.are.equal(1, s.updates)
    assert.is_number(s.approx_kl)
    assert.is_true(s.approx_kl <= 0.01 * 1.5 + 1e-9)   -- inside the trust region
    t:close()
  end)

  it("npg takes a step of the requested KL in the quadratic model", function()
    local t = small("npg", {target_kl = 0.005})
    t:collect()
    local s = t:update()
    -- the true KL of the step is close to δ for a small step
    assert.is_true(s.approx_kl > 0.001 and s.approx_kl < 0.02, tostring(s.approx_kl))
    t:close()
  end)

  it("run the adaptive-KL PPO variant and adapt beta", function()
    local t = small("ppo", {kl_penalty = {beta = 1, target_kl = 1e-6}})
    t:collect()
    local s = t:update()
    assert.are.equal(2, s.kl_beta)   -- KL far above 1.5·target doubles β
    t:close()
  end)

  it("run TRPO's Lagrangian variant and update lambda", function()
    local t = small("trpo", {lagrangian = {lambda = 1, lambda_lr = 2, steps = 3, lr = 1e-2}})
    t:collect()
    local s = t:update()
    assert.is_true(H.close(s.lagrange_lambda, math.max(0, 1 + 2 * (s.approx_kl - 0.01)), 1e-9))
    t:close()
  end)

  it("normalise observations when asked and keep the statistics", function()
    local t = small("ppo", {normalize_obs = true})
    t:learn(64)
    -- every step's batch of 2 observations (and the reset) merged
    assert.is_true(t.obs_rms:count() >= 64)
    local st = t.obs_rms:state()
    assert.are.equal(4, #st.mean)
    for j = 1, 4 do assert.is_true(st.var[j] >= 0) end
    -- the rollout holds normalised observations (clipped to ±10)
    local o = t.rollout:field("obs"):reshape(16 * 2 * 4)
    for i = 1, o:numel() do assert.is_true(math.abs(o[i]) <= 10) end
    t:close()
  end)

  it("normalise rewards when asked (SB3 norm_reward), with gamma the trainer's", function()
    local t = small("ppo", {norm_reward = true, gamma = 0.9, clip_reward = 5})
    assert.is_not_nil(t.rew_norm)
    t:collect()
    -- CartPole pays 1 a step: stored rewards are 1/sqrt(var + eps) of the
    -- discounted returns, the same number for every env at a step
    local r = t.rollout:field("rewards"):reshape(32)
    assert.is_true(r[1] ~= 1 and r[1] > 0 and r[1] <= 5)
    local st = t.rew_norm:state()
    assert.are.equal(16 * 2 + 1e-4, st.count)
    -- the same steps replayed by hand through a fresh normaliser
    local ref = core.reward_norm(2)
    local te, tr = t.rollout:field("terminated"), t.rollout:field("truncated")
    for k = 1, 16 do
      local d = {te[k][1] ~= 0 or tr[k][1] ~= 0, te[k][2] ~= 0 or tr[k][2] ~= 0}
      local o = ref:step({1, 1}, d, 0.9, 5, 1e-8)
      assert.are.equal(o[1], r[2 * k - 1])
      assert.are.equal(o[2], r[2 * k])
    end
    assert.are.same(ref:state(), t.rew_norm:state())
    ref:close()
    t:close()
    raises(function() small("ppo", {norm_reward = true, normalize_reward = true}) end,
           "are the same")
    raises(function() rl.reinforce{env = env(1, 1), normalize_reward = true} end,
           "normalize_reward")
  end)

  it("raise clear errors for bad options", function()
    raises(function() rl.ppo{env = env(1, 1), bogus = 1} end, "unknown option 'bogus'")
    raises(function() rl.ppo{env = env(1, 1), lr = "fast"} end, "lr")
    raises(function() rl.ppo{seed = 1} end, "'env'")
    raises(function() rl.ppo(3) end, "options table expected")
    local t = small("ppo", {lr = function() return 0 / 0 end})
    raises(function() t:learn(32) end, "hyperparameter 'lr'")
    t:close()
    local u = small("ppo")
    raises(function() u:learn(-1) end, "bad argument #1 to 'learn'")
    u:close()
  end)

  it("write a CSV log of every update", function()
    local path = os.tmpname()
    local t = small("ppo", {log = path})
    t:learn(96)
    t:close()
    local csv = require("moonrl.log").read_csv(path)
    os.remove(path)
    assert.are.equal(3, #csv.rows)
    assert.are.equal(96, csv.rows[3].steps)
    assert.is_number(csv.rows[3].lr)
  end)
end)
