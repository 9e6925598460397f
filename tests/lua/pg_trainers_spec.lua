-- tests/lua/pg_trainers_spec.lua — rl.reinforce and rl.offpolicy: complete
-- episodes out of vecenv rollouts (moonrl.episodes), construction, the
-- update's direction (Adam descends on −ĝ of pg_gradient), schedules, the
-- importance-sampling diagnostics, dropping batches on a low ESS, resuming,
-- `moonrl train` configs and the errors for invalid estimator/baseline pairs.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local rl = require "moonrl"
local core = rl.core
local raises = H.raises
local episodes = require "moonrl.episodes"

if type(core.vecenv) ~= "function" then
  describe("rl.reinforce / rl.offpolicy", function()
    pending("this binding of moonrl.core has no vecenv")
  end)
  return
end

local function env(n, seed, opts)
  local o = {num_envs = n or 4, seed = seed or 1}
  for k, v in pairs(opts or {}) do o[k] = v end
  return require("moonrl.vec").make("CartPole-v1", o)
end

local function make(algo, extra)
  local o = {env = env(4, 1), seed = 1, n_steps = 8, batch_episodes = 4, progress = false}
  for k, v in pairs(extra or {}) do o[k] = v end
  return rl[algo](o)
end

local function params_equal(a, b)
  if a:numel() ~= b:numel() then return false end
  for i = 1, a:numel() do if a[i] ~= b[i] then return false end end
  return true
end

local function tmpfile(name)
  return os.tmpname() .. "_" .. name
end

describe("moonrl.episodes", function()
  it("splits time-major rollouts into the vecenv's own episodes, carrying partial ones", function()
    local v = env(3, 7)
    local p = rl.policy{obs = 4, action = rl.discrete(2), hidden = {8}, seed = 3}
    local ro = v:rollout(10)
    local acc = episodes.new(3, 4, 1)
    local want = {}
    for _ = 1, 12 do
      v:collect(ro, p)
      acc:add(ro)
      for _, ep in ipairs(v:episodes()) do want[#want + 1] = ep.length .. ":" .. ep["return"] end
    end
    local total = 12 * 10 * 3
    local got = {}
    local n = acc:count()
    assert.are.equal(#want, n)
    local b = acc:take()
    assert.are.equal(n, b.nep)
    assert.are.equal(0, acc:count())
    local m = 0
    for e = 1, b.nep do
      assert.are.equal(m, b.offsets[e])
      m = m + b.lengths[e]
      got[#got + 1] = b.lengths[e] .. ":" .. b.returns[e]
    end
    assert.are.equal(m, b.steps)
    assert.are.same({m, 4}, b.obs:shape())
    assert.are.same({m, 1}, b.actions:shape())
    assert.are.equal(m, b.rewards:numel())
    assert.are.equal(m, b.logp:numel())
    -- every step is in a complete episode or in a partial one
    assert.are.equal(total, m + acc:partial_steps())
    table.sort(want); table.sort(got)
    assert.are.same(want, got)
    -- the recorded log-probs are the acting policy's
    local lp = p:evaluate(b.obs, b.actions)
    for i = 1, m do assert.is_true(math.abs(lp[i] - b.logp[i]) < 1e-5) end
    v:close(); p:close()
  end)

  it("ends an episode at a time-limit truncation without a bootstrap", function()
    local v = env(2, 1, {max_episode_steps = 12})
    local p = rl.policy{obs = 4, action = rl.discrete(2), hidden = {8}, seed = 1}
    -- a policy that balances for 12 steps is likely; force many episodes
    local ro = v:rollout(50)
    local acc = episodes.new(2, 4, 1)
    v:collect(ro, p)
    acc:add(ro)
    local b = acc:take()
    assert.is_true(b.nep >= 8)
    for e = 1, b.nep do assert.is_true(b.lengths[e] <= 12) end
    local G = episodes.reward_to_go(b, 0.9)
    for e = 1, b.nep do
      local last = b.offsets[e] + b.lengths[e]
      assert.are.equal(1, G[last])                   -- r_T alone: nothing after it
      if b.lengths[e] >= 2 then assert.is_true(H.close(G[last - 1], 1.9)) end
    end
    assert.is_true(b.truncated >= 0 and b.truncated <= b.nep)
    v:close(); p:close()
  end)
end)

describe("rl.reinforce", function()
  it("builds from an env id or a vec env, with defaults", function()
    local t = rl.reinforce{env = "CartPole-v1", env_opts = {num_envs = 2}, seed = 2, progress = false}
    assert.are.equal("reinforce", t.algo)
    assert.are.equal("reward_to_go", t.estimator)
    assert.are.equal("value", t.baseline)
    assert.are.equal(2, t.num_envs)
    assert.are.equal(8, t.hp.batch_episodes)
    assert.are.equal(5e-3, t.hp.lr)
    t:close()
    local u = make("reinforce", {estimator = "reinforce", baseline = "mean"})
    assert.are.equal("reinforce", u.estimator)
    assert.are.equal(4, u.policy:obs_dim())
    u:close()
  end)

  it("collects complete episodes: at least batch_episodes per update", function()
    local t = make("reinforce", {batch_episodes = 5})
    local n = t:collect()
    assert.are.equal(n, t.steps_done)
    assert.are.equal(0, n % (8 * 4))
    local b = t.batch
    assert.is_true(b.nep >= 5)
    local s = t:update()
    assert.are.equal(b.nep, s.batch_episodes)
    assert.are.equal(b.steps, s.batch_steps)
    assert.is_nil(t.batch)
    raises(function() t:update() end, "needs a collect() first")
    t:close()
  end)

  it("descends on the negated pg_gradient (Adam's first step is lr·sign(ĝ))", function()
    for _, c in ipairs({{"reinforce", "none"}, {"reinforce", "mean"}, {"reinforce", "optimal"},
                        {"reward_to_go", "none"}, {"reward_to_go", "mean"},
                        {"reward_to_go", "value"}}) do
      local lr = 1e-3
      local t = make("reinforce", {estimator = c[1], baseline = c[2], lr = lr})
      t:collect()
      local b = t.batch
      local values = c[2] == "value" and core.tensor(t.value:forward(b.obs):reshape(b.steps)) or nil
      local g = t.policy:pg_gradient(b.obs, b.actions, b.rewards, nil, values, b.offsets,
                                     {estimator = c[1], baseline = c[2], gamma = 0.99})
      local before = t.policy:params()
      local s = t:update()
      local after = t.policy:params()
      local checked = 0
      for i = 1, g:numel() do
        if math.abs(g[i]) > 1e-4 then
          local want = lr * (g[i] > 0 and 1 or -1)
          assert.is_true(math.abs((after[i] - before[i]) - want) < 1e-5,
                         c[1] .. "/" .. c[2] .. " param " .. i)
          checked = checked + 1
        end
      end
      assert.is_true(checked > 10)
      assert.is_true(H.close(s.grad_norm, g:norm(), 1e-4))
      if c[2] == "value" then assert.is_number(s.value_loss) else assert.is_nil(s.value_loss) end
      t:close()
    end
  end)

  it("fits the value baseline on the returns", function()
    local t = make("reinforce", {value_lr = 1e-2, value_epochs = 10})
    local v0 = t.value:params()
    local losses = {}
    t:learn(3000, {on_update = function(s) losses[#losses + 1] = s.value_loss end})
    assert.is_false(params_equal(v0, t.value:params()))
    assert.is_true(#losses >= 2)
    t:close()
  end)

  it("normalises advantages when asked (pg_gradient's normalize_advantages)", function()
    local t = make("reinforce", {normalize_advantages = true, lr = 1e-3})
    t:collect()
    local b = t.batch
    local values = core.tensor(t.value:forward(b.obs):reshape(b.steps))
    local G = episodes.reward_to_go(b, 0.99)
    -- by hand: Â = (G − V) standardised over the steps, ĝ = Σ Â ∇log π / N
    local adv, s, q = {}, 0, 0
    for i = 1, b.steps do adv[i] = G[i] - values[i]; s = s + adv[i] end
    for i = 1, b.steps do q = q + (adv[i] - s / b.steps) ^ 2 end
    local sd = math.sqrt(q / (b.steps - 1)) + 1e-8
    for i = 1, b.steps do adv[i] = (adv[i] - s / b.steps) / sd end
    t.policy:grad_weighted_logp(b.obs, b.actions, adv, 1 / b.nep)
    local want = core.tensor(t.policy:grad())
    local got = t.policy:pg_gradient(b.obs, b.actions, b.rewards, nil, values, b.offsets,
                                     {estimator = "reward_to_go", baseline = "value", gamma = 0.99,
                                      normalize_advantages = true})
    for i = 1, want:numel() do assert.is_true(H.close(got[i], want[i], 1e-4), "param " .. i) end
    local before = t.policy:params()
    t:update()
    assert.is_false(params_equal(before, t.policy:params()))
    t:close()
  end)

  it("honours schedules (lr and batch_episodes as functions of progress)", function()
    local seen = {}
    local t = make("reinforce", {
      lr = function(p) seen[#seen + 1] = p; return 1e-3 * (1 - p) end,
      batch_episodes = function(p) return p < 0.5 and 2 or 6 end,
    })
    local st = {}
    t:learn(4000, {on_update = function(s) st[#st + 1] = s end})
    assert.is_true(#seen > 0)
    for i = 2, #st do assert.is_true(st[i].lr <= st[i - 1].lr) end
    for _, s in ipairs(st) do
      assert.is_true(H.close(s.lr, 1e-3 * (1 - math.min(s.progress, 1)), 1e-9))
    end
    -- batch sizes follow the schedule at collect time
    local late = st[#st]
    assert.is_true(late.batch_episodes >= 6)
    assert.is_true(st[1].batch_episodes >= 2)
    t:close()
  end)

  it("rejects invalid estimator/baseline choices, naming the option", function()
    local function new(o)
      return function()
        local x = {env = env(1, 1), progress = false}
        for k, v in pairs(o) do x[k] = v end
        rl.reinforce(x)
      end
    end
    raises(new{estimator = "is_full"}, "bad option 'estimator'", "is_full")
    raises(new{estimator = 3}, "bad option 'estimator'")
    raises(new{baseline = "median"}, "bad option 'baseline'", "median")
    raises(new{estimator = "reinforce", baseline = "value"}, "option 'baseline'", "\"value\"", "per-step")
    raises(new{estimator = "reward_to_go", baseline = "optimal"}, "option 'baseline'", "\"optimal\"")
    raises(new{estimator = "reinforce", baseline = "optimal", normalize_advantages = true},
           "option 'normalize_advantages'")
    raises(new{lr = "big"}, "bad option 'lr'")
    raises(new{keep = 3}, "unknown option 'keep'")
  end)

  it("resumes exactly from a checkpoint", function()
    local path = tmpfile("reinforce.safetensors")
    local a = make("reinforce")
    a:learn(1500)
    a:save(path)
    a:learn(1500)
    local b = make("reinforce", {resume = path})
    b:learn(a.steps_done - b.steps_done)
    assert.are.equal(a.steps_done, b.steps_done)
    assert.is_true(params_equal(a.policy:params(), b.policy:params()))
    assert.is_true(params_equal(a.value:params(), b.value:params()))
    a:close(); b:close()
    os.remove(path)
  end)
end)

describe("rl.offpolicy", function()
  it("builds with is_first_order and a value baseline by default", function()
    local t = make("offpolicy")
    assert.are.equal("offpolicy", t.algo)
    assert.are.equal("is_first_order", t.estimator)
    assert.are.equal("value", t.baseline)
    assert.are.equal(4, t.hp.keep); assert.are.equal(4, t.hp.reuse)
    t:close()
    local u = rl.offpolicy{env = "CartPole-v1", estimator = "is_per_decision", progress = false}
    assert.are.equal("none", u.baseline)
    u:close()
  end)

  it("reports mean_ratio, ess and KL(behaviour‖current); on fresh data they are 1, full and 0", function()
    local t = make("offpolicy", {reuse = 1, keep = 1})
    t:collect()
    local b = t.batch
    local s = t:update()
    assert.is_true(math.abs(s.mean_ratio - 1) < 1e-5)
    assert.is_true(math.abs(s.kl) < 1e-5)
    assert.is_true(math.abs(s.ess - b.steps) < 1e-2)
    assert.is_true(math.abs(s.ess_ratio - 1) < 1e-6)
    assert.are.equal(0, s.dropped)
    assert.are.equal(1, s.batches)
    assert.are.equal(1, s.policy_steps)
    t:close()
  end)

  it("reuses the last `keep` batches for `reuse` steps and the weights move off 1", function()
    local t = make("offpolicy", {keep = 3, reuse = 3, lr = 1e-2, min_ess = 0})
    local st = {}
    for _ = 1, 5 do t:collect(); st[#st + 1] = t:update() end
    for i, s in ipairs(st) do
      assert.are.equal(math.min(i, 3), s.batches)
      assert.are.equal(3, s.policy_steps)
      assert.is_true(s.ess_ratio <= 1 + 1e-9 and s.ess_ratio > 0)
      assert.is_true(s.kl_max >= s.kl)
    end
    assert.is_true(st[5].kl > 1e-4)                      -- old data, moved policy
    assert.is_true(math.abs(st[5].mean_ratio - 1) > 1e-4)
    t:close()
  end)

  it("drops a batch whose relative ESS falls below min_ess", function()
    local t = make("offpolicy", {lr = 0.5, reuse = 4, keep = 4, min_ess = 0.99,
                                 estimator = "is_per_decision"})
    local dropped, last = 0, nil
    for _ = 1, 4 do
      t:collect()
      last = t:update()
      dropped = dropped + last.dropped
      assert.is_true(last.batches <= 4)
    end
    assert.is_true(dropped > 0)
    assert.is_true(#t.buffer < 4)
    t:close()
  end)

  it("stops an update's steps once the newest batch's KL passes max_kl", function()
    local t = make("offpolicy", {lr = 0.2, reuse = 8, max_kl = 1e-6, min_ess = 0})
    t:collect()
    local s = t:update()
    assert.is_true(s.stopped_early)
    assert.is_true(s.policy_steps >= 1 and s.policy_steps < 8)
    t:close()
  end)

  it("runs every importance estimator, with clipping and self-normalisation", function()
    for _, est in ipairs({"is_trajectory", "is_per_decision", "is_full", "is_first_order"}) do
      for _, o in ipairs({{}, {weight_clip = 1.5}, {self_normalize = true}}) do
        local x = {estimator = est, baseline = "none", keep = 2, reuse = 2, min_ess = 0,
                   lr = 1e-3}
        for k, v in pairs(o) do x[k] = v end
        local t = make("offpolicy", x)
        local before = t.policy:params()
        for _ = 1, 2 do
          t:collect()
          local s = t:update()
          for _, k in ipairs({"mean_ratio", "ess", "ess_ratio", "kl", "grad_norm"}) do
            assert.is_true(s[k] == s[k] and math.abs(s[k]) < math.huge, est .. " " .. k)
          end
        end
        assert.is_false(params_equal(before, t.policy:params()), est)
        t:close()
      end
    end
  end)

  it("learns from a fixed behaviour policy", function()
    local beh = rl.policy{obs = 4, action = rl.discrete(2), seed = 9}
    local b0 = beh:params()
    local t = make("offpolicy", {behavior = beh, reuse = 2})
    local p0 = t.policy:params()
    t:collect()
    local s = t:update()
    assert.is_true(math.abs(s.mean_ratio - 1) > 1e-6 or math.abs(s.kl) > 1e-6)
    assert.is_true(params_equal(b0, beh:params()))
    assert.is_false(params_equal(p0, t.policy:params()))
    t:close(); beh:close()
  end)

  it("honours schedules of its own options", function()
    local t = make("offpolicy", {keep = function(p) return p < 0.5 and 1 or 3 end,
                                 reuse = function() return 2 end})
    local st = {}
    t:learn(3000, {on_update = function(s) st[#st + 1] = s end})
    assert.are.equal(1, st[1].batches)
    assert.are.equal(2, st[1].policy_steps)
    assert.is_true(st[#st].batches >= 2)
    t:close()
  end)

  it("rejects invalid estimator/baseline choices, naming the option", function()
    local function new(o)
      return function()
        local x = {env = env(1, 1), progress = false}
        for k, v in pairs(o) do x[k] = v end
        rl.offpolicy(x)
      end
    end
    raises(new{estimator = "reward_to_go"}, "bad option 'estimator'", "is_first_order")
    raises(new{estimator = "is_trajectory", baseline = "value"}, "option 'baseline'", "\"none\"")
    raises(new{estimator = "is_full", baseline = "mean"}, "option 'baseline'")
    raises(new{estimator = "is_first_order", baseline = "optimal"}, "option 'baseline'", "\"optimal\"")
    raises(new{estimator = "is_per_decision", normalize_advantages = true},
           "option 'normalize_advantages'")
    raises(new{behavior = 3}, "option 'behavior'")
  end)

  it("resumes exactly (save is a resume point that empties the kept batches)", function()
    local path = tmpfile("offpolicy.safetensors")
    local a = make("offpolicy")
    a:learn(1500)
    a:save(path)
    assert.are.equal(0, #a.buffer)
    a:learn(1500)
    local b = make("offpolicy", {resume = path})
    b:learn(a.steps_done - b.steps_done)
    assert.are.equal(a.steps_done, b.steps_done)
    assert.is_true(params_equal(a.policy:params(), b.policy:params()))
    a:close(); b:close()
    os.remove(path)
  end)
end)

describe("moonrl train", function()
  it("accepts algo = \"reinforce\" and \"offpolicy\"", function()
    local train = require "moonrl.cli.train"
    for _, algo in ipairs({"reinforce", "offpolicy"}) do
      local out = tmpfile("run_" .. algo)
      local agent, res = train.run({algo = algo, env = "CartPole-v1", steps = 2000, seed = 1,
                                    env_opts = {num_envs = 4}, out = out,
                                    baseline = "mean",
                                    hyperparameters = {n_steps = 8, batch_episodes = 4}},
                                   {quiet = true})
      assert.are.equal(algo, agent.algo)
      assert.are.equal("mean", agent.baseline)
      assert.is_true(res.steps >= 2000)
      local f = io.open(out .. "/log.csv")
      assert.is_not_nil(f)
      local header = f:read("*l")
      f:close()
      assert.is_truthy(header:find("batch_episodes", 1, true))
      if algo == "offpolicy" then assert.is_truthy(header:find("ess_ratio", 1, true)) end
      agent:close()
      os.execute("rm -rf '" .. out .. "'")
    end
    local ok, err = pcall(train.run, {algo = "sarsa", env = "CartPole-v1"}, {quiet = true})
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("reinforce", 1, true))
  end)
end)
