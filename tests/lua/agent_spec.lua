-- tests/lua/agent_spec.lua — rl.agent, the in-game training API: acting and
-- recording, the sliced PPO update (bit-identical however it is sliced),
-- time budgets, acting during an update (behaviour log-probs recorded at
-- acting time), refusal of non-finite updates, behaviour cloning, files,
-- several agents, no allocation per step, and learning CartPole from a game
-- loop written in Lua.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local rl = require "moonrl"
local core = rl.core
local envs = require "moonrl.envs"
local raises = H.raises

local function same_params(a, b)
  local pa, pb = a:params(), b:params()
  if pa:numel() ~= pb:numel() then return false end
  for i = 1, pa:numel() do if pa[i] ~= pb[i] then return false end end
  return true
end

local function small(extra)
  local o = {obs = 3, action = rl.discrete(3), hidden = {16}, n_steps = 32,
             batch_size = 8, epochs = 2, seed = 7}
  for k, v in pairs(extra or {}) do o[k] = v end
  return rl.agent(o)
end

-- A toy world: obs from a generator, reward 1 when the action is the index
-- of the largest of the first n observations.
local function feed(agent, steps, rng, trainer)
  local D = agent.obs_dim
  local obs = {}
  for _ = 1, steps do
    for j = 1, D do obs[j] = rng:normal() end
    local a = agent:act(obs)
    local best = 0
    for j = 2, 3 do if obs[j] > obs[best + 1] then best = j - 1 end end
    agent:observe(a == best and 1 or 0, rng:uniform() < 0.1, false)
    if trainer then trainer(agent) end
  end
  return obs
end

describe("rl.agent", function()
  it("is reachable as rl.agent and builds its networks", function()
    local ag = small()
    assert.are.equal(3, ag.policy:obs_dim())
    assert.are.equal("discrete", ag.policy:action_kind())
    assert.are.same({16}, ag.policy:spec().hidden)
    assert.are.equal(3, ag.value:in_dim())
    assert.are.equal(0, ag.steps)
    assert.is_false(ag:busy())
    assert.truthy(tostring(ag):find("moonrl.agent", 1, true))
    -- seeded: the same seed builds the same networks
    local ag2 = small()
    assert.is_true(same_params(ag.policy, ag2.policy))
    assert.is_true(same_params(ag.value, ag2.value))
    ag:close(); ag2:close()
  end)

  it("rejects bad options and calls with named errors", function()
    raises(function() rl.agent{obs = 3, action = rl.discrete(2), bogus = 1} end, "unknown option 'bogus'")
    raises(function() rl.agent{obs = 3, action = rl.discrete(2), algo = "trpo"} end, "only \"ppo\"")
    raises(function() rl.agent{action = rl.discrete(2)} end, "option 'obs'")
    raises(function() rl.agent{obs = 3} end, "option 'action'")
    raises(function() rl.agent{obs = 3, action = rl.discrete(2), n_steps = 0} end, "'n_steps' must be an integer >= 1")
    raises(function() rl.agent{obs = 3, action = rl.discrete(2), lr = "fast"} end, "option 'lr' must be a number")
    raises(function() rl.agent{obs = 3, action = rl.discrete(2), lr = 1, learning_rate = 2} end, "the same")
    local ag = small()
    raises(function() ag:observe(1, false, false) end, "observe() without a preceding act()")
    raises(function() ag:act("x") end, "bad argument #1 to 'act'")
    raises(function() ag:act({1, 2}) end, "act")
    ag:act({0, 0, 0})
    raises(function() ag:act({0, 0, 0}) end, "act() called twice")
    raises(function() ag:observe(0 / 0, false, false) end, "bad argument #1 to 'observe' (finite number expected, got")
    raises(function() ag:observe("1", false, false) end, "finite number expected, got string")
    ag:observe(1, false, false)
    raises(function() ag:train_step(-1) end, "bad argument #1 to 'train_step'")
    raises(function() ag:train_step(1, 0) end, "bad argument #2 to 'train_step'")
    raises(function() ag:record({1, 2, 3}, 5) end, "bad argument #2 to 'record' (action 0 … 2 expected, got 5)")
    raises(function() ag:record({1, 0 / 0, 3}, 1) end, "bad argument #1 to 'record'")
    raises(function() ag:pretrain() end, "needs demonstrations")
    raises(function() ag:probs(5) end, "bad argument #1 to 'probs'")
    ag:close()
  end)

  it("acts with the policy and records the behaviour log-probability", function()
    local ag = small()
    local obs = {0.5, -0.2, 0.1}
    local a, logp = ag:act(obs)
    assert.is_number(a)
    assert.is_true(a == 0 or a == 1 or a == 2)
    local lp = ag.policy:evaluate(obs, {a})
    assert.is_true(H.close(lp, logp, 1e-5))
    assert.are.equal(obs[1], ag.cur.obs[1])
    assert.are.equal(a, ag.cur.act[1])
    assert.are.equal(logp, ag.cur.logp[1])
    ag:observe(0.5, false, false)
    assert.are.equal(1, ag.steps)
    -- a greedy act takes the mode and records nothing
    local g = ag:act(obs, true)
    assert.are.equal(ag.policy:act(obs, true), g)
    ag:observe(1, true, false)
    assert.are.equal(1, ag.steps)
    assert.are.equal(1, ag.cur.n)
    -- probabilities sum to one
    local p = ag:probs(obs)
    assert.is_true(H.close(p[1] + p[2] + p[3], 1, 1e-6))
    ag:close()
  end)

  it("reports episode returns from observe", function()
    local ag = small()
    ag:act({0, 0, 0}); assert.is_nil(ag:observe(1, false, false))
    ag:act({0, 0, 0}); assert.is_nil(ag:observe(2, false, false))
    ag:act({0, 0, 0})
    local r, l = ag:observe(4, false, true)
    assert.are.equal(7, r)
    assert.are.equal(3, l)
    local st = ag:episode_stats()
    assert.are.equal(1, st.episodes)
    assert.are.equal(7, st.mean_return)
    ag:close()
  end)

  it("hands a full buffer to the update at the next act, and updates", function()
    local ag = small()
    local rng = core.rng(1)
    feed(ag, 32, rng)
    assert.is_false(ag:busy())      -- full, waiting for the bootstrap state
    assert.is_nil(ag:train_step(nil))
    local before = ag.policy:params()
    local obs = {0.3, 0.2, 0.1}
    ag:act(obs)
    ag:observe(0, false, false)
    assert.is_true(ag:busy())
    -- the bootstrap observation is the one that act() saw
    assert.are.same(obs, {ag.ready.boot[1], ag.ready.boot[2], ag.ready.boot[3]})
    local s = ag:train_step(nil)
    assert.is_table(s)
    assert.are.equal(2 * 4, s.minibatches)          -- epochs × 32/8
    assert.are.equal(2, s.epochs_done)
    assert.are.equal(1, s.updates)
    assert.are.equal(1 + 8, s.pieces)              -- one GAE piece, 8 steps
    for _, k in ipairs({"policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction",
                        "grad_norm", "explained_variance", "behaviour_ratio", "behaviour_kl"}) do
      assert.is_number(s[k], k)
      assert.is_true(s[k] == s[k], k)
    end
    -- collected with unchanged parameters: the behaviour is the policy
    assert.is_true(H.close(s.behaviour_ratio, 1, 1e-5))
    assert.is_false(same_params(ag.policy, {params = function() return before end}))
    assert.is_false(ag:busy())
    assert.are.equal(1, ag.cur.n)
    ag:close()
  end)

  it("gives bit-identical results however the update is sliced", function()
    local results = {}
    for _, pieces in ipairs({false, 1, 3}) do
      local ag = small({epochs = 3})
      local rng = core.rng(5)
      feed(ag, 33, rng)
      ag:act({0.1, 0.1, 0.1}); ag:observe(0, false, false)
      local calls = 0
      repeat
        calls = calls + 1
        local s = ag:train_step(nil, pieces or nil)
      until s
      if pieces == 1 then assert.are.equal(1 + 3 * 4, calls) end
      if pieces == 3 then assert.are.equal(5, calls) end
      if not pieces then assert.are.equal(1, calls) end
      results[#results + 1] = {ag.policy:params(), ag.value:params()}
      ag:close()
    end
    for r = 2, #results do
      for w = 1, 2 do
        local a, b = results[1][w], results[r][w]
        for i = 1, a:numel() do assert.are.equal(a[i], b[i]) end
      end
    end
  end)

  it("matches core.ppo_update's minibatch step on the same batch", function()
    -- one epoch, one minibatch of the whole batch: the shuffle cannot matter
    local ag = small({n_steps = 16, batch_size = 16, epochs = 1, vf_coef = 0.7, max_grad_norm = 0.05})
    feed(ag, 16, core.rng(3))
    ag:act({0, 0, 0}); ag:observe(0, false, false)
    -- a copy of the nets and a rollout with the agent's batch, advantages and returns
    local p2 = core.policy(ag.policy:spec()); p2:set_params(ag.policy:params())
    local v2 = core.net(ag.value:spec()); v2:set_params(ag.value:params())
    ag:train_step(nil, 1)                      -- the GAE piece
    local src = ag.upd.buf.ro
    local ro = core.rollout{steps = 16, num_envs = 1, obs_dim = 3, action_width = 1}
    for _, f in ipairs({"obs", "actions", "logp", "advantages", "returns", "values"}) do
      ro:field(f):copy(src:field(f))
    end
    local po, vo = core.optim{kind = "adam", n = p2:nparams()}, core.optim{kind = "adam", n = v2:nparams()}
    local rep = core.ppo_update(p2, v2, po, vo, ro, {epochs = 1, minibatch_size = 16, lr = 3e-4,
                                vf_coef = 0.7, max_grad_norm = 0.05})
    local s = ag:train_step(nil)
    assert.is_true(H.close(s.policy_loss, rep.policy_loss, 1e-6))
    assert.is_true(H.close(s.grad_norm, rep.grad_norm, 1e-5))
    local a, b = ag.policy:params(), p2:params()
    for i = 1, a:numel() do assert.is_true(H.close(a[i], b[i], 1e-5), "policy param " .. i) end
    a, b = ag.value:params(), v2:params()
    for i = 1, a:numel() do assert.is_true(H.close(a[i], b[i], 1e-5), "value param " .. i) end
    ro:close(); p2:close(); v2:close(); ag:close()
  end)

  it("does at least one piece and stops at the time budget", function()
    local ag = small({epochs = 10})
    feed(ag, 33, core.rng(2))
    assert.is_nil(ag:train_step(0))
    assert.is_truthy(ag.upd)
    assert.are.equal(1, ag.upd.pieces)
    assert.is_nil(ag:train_step(0))
    assert.are.equal(2, ag.upd.pieces)
    assert.is_table(ag:train_step(1e6))
    ag:close()
  end)

  it("keeps acting during an update and records the behaviour log-probs", function()
    local ag = small()
    local rng = core.rng(4)
    feed(ag, 32, rng)
    -- one piece per step: the policy changes while the second buffer fills
    local checked = 0
    feed(ag, 20, rng, function(a)
      if a:busy() then
        local n = a.cur.n
        local obs = {a.cur.obs[(n - 1) * 3 + 1], a.cur.obs[(n - 1) * 3 + 2], a.cur.obs[(n - 1) * 3 + 3]}
        -- the stored logp is that of the parameters that acted
        local lp = a.policy:evaluate(obs, {a.cur.act[n]})
        assert.is_true(H.close(lp, a.cur.logp[n], 1e-5))
        checked = checked + 1
        a:train_step(nil, 1)
      end
    end)
    assert.is_true(checked > 5)
    assert.is_false(ag:busy())
    assert.are.equal(1, ag.updates)
    feed(ag, 13, rng)
    ag:act({0, 0, 0}); ag:observe(0, false, false)
    local s = ag:finish()
    -- stale data: the ratio at the start of this update is not 1
    assert.is_true(math.abs(s.behaviour_ratio - 1) > 1e-4)
    assert.is_true(s.behaviour_kl ~= 0)
    assert.are.equal(0, ag.forced_updates)
    ag:close()
  end)

  it("finishes a running update when the second buffer fills first", function()
    local ag = small()
    local rng = core.rng(6)
    feed(ag, 33, rng)                     -- hand-over at step 33
    assert.is_true(ag:busy())
    feed(ag, 31, rng)                     -- no train_step at all
    assert.are.equal(0, ag.updates)
    assert.are.equal(32, ag.cur.n)
    feed(ag, 1, rng)                      -- the next hand-over forces it
    assert.are.equal(1, ag.forced_updates)
    assert.are.equal(1, ag.updates)
    assert.is_true(ag:busy())
    ag:finish()
    assert.are.equal(2, ag.updates)
    ag:close()
  end)

  it("refuses a non-finite update and restores networks and optimisers", function()
    -- (a) returns that overflow float32: refused before any step; (b) the
    -- parameters turn non-finite after some steps (written behind the
    -- agent's back): refused, and everything is put back as it was before
    -- the update began
    for _, case in ipairs({"overflow", "midway"}) do
      local ag = rl.agent{obs = 2, action = rl.discrete(2), hidden = {8}, n_steps = 16,
                          batch_size = 4, epochs = 2, seed = 1}
      for i = 1, 16 do
        ag:act({0.1 * i, 1})
        ag:observe(case == "overflow" and 3e38 or 1, false, false)
      end
      ag:act({0, 0}); ag:observe(0, false, false)
      local p0, v0 = ag.policy:params(), ag.value:params()
      local s, err
      if case == "midway" then
        assert.is_nil(ag:train_step(nil, 3))         -- GAE and two steps
        assert.are.equal(2, ag.policy_optim:steps())
        local pv = ag.policy:params_view()
        pv[1] = 0 / 0
      end
      s, err = ag:train_step(nil)
      assert.is_nil(s)
      assert.truthy(err:find("update refused", 1, true), err)
      assert.are.equal(err, ag.last_error)
      assert.is_false(ag:busy())
      assert.is_true(same_params(ag.policy, {params = function() return p0 end}))
      assert.is_true(same_params(ag.value, {params = function() return v0 end}))
      assert.are.equal(0, ag.policy_optim:steps())
      assert.are.equal(0, ag.value_optim:steps())
      assert.are.equal(0, ag.updates)
      -- the agent goes on: the next buffer updates normally
      for i = 1, 16 do ag:act({0.1 * i, 1}); ag:observe(1, false, false) end
      assert.is_table(ag:finish())
      ag:close()
    end
  end)

  it("works with a bounded box policy", function()
    local ag = rl.agent{obs = 2, action = rl.box(1, -0.5, 0.5), hidden = {8}, n_steps = 16,
                        batch_size = 8, epochs = 1, seed = 3, init_log_std = 1}
    local clipped = 0
    for i = 1, 17 do
      local a = ag:act({i / 17, 1})
      assert.is_table(a)
      assert.is_true(a[1] >= -0.5 and a[1] <= 0.5)
      local raw = ag.cur.act[ag.cur.n + 1]
      if raw ~= a[1] then clipped = clipped + 1 end
      ag:observe(-a[1] * a[1], false, false)
    end
    assert.is_true(clipped > 0)   -- the buffer keeps the unclipped sample
    local s = ag:finish()
    assert.is_table(s)
    assert.are.equal(2, s.minibatches)
    ag:close()
  end)

  it("pretrains from recorded play by maximum likelihood", function()
    local ag = rl.agent{obs = 2, action = rl.discrete(2), hidden = {16}, seed = 2}
    local rng = core.rng(9)
    local expert = function(o) return o[1] + 0.5 * o[2] > 0 and 1 or 0 end
    for _ = 1, 400 do
      local o = {rng:normal(), rng:normal()}
      assert.is_number(ag:record(o, expert(o)))
    end
    assert.are.equal(400, ag:demos())
    local r1 = ag:pretrain{epochs = 1, batch_size = 50, lr = 1e-2}
    local r2 = ag:pretrain{epochs = 30, batch_size = 50, lr = 1e-2}
    assert.is_true(r1.nll < math.log(2) + 1e-3)
    assert.is_true(r2.nll < r1.nll)
    assert.is_true(r2.accuracy > 0.95)
    -- greedy actions on fresh states follow the player
    local agree = 0
    for _ = 1, 200 do
      local o = {rng:normal(), rng:normal()}
      if ag.policy:act(o, true) == expert(o) then agree = agree + 1 end
    end
    assert.is_true(agree > 180)
    -- the reported nll is −mean log π over the demonstrations
    local d = ag._demo
    local obs = core.tensor(d.obs):reshape(400, 2)
    local lp = ag.policy:evaluate(obs, d.act)
    assert.is_true(H.close(-lp:sum() / 400, r2.nll, 1e-5))
    -- and PPO goes on from the pretrained policy
    feed(ag, 0, rng)
    ag:clear_demos()
    assert.are.equal(0, ag:demos())
    ag:close()
  end)

  it("saves and loads: rl.load reads the policy, agent:load resumes", function()
    local path = os.tmpname()
    local ag = small()
    feed(ag, 33, core.rng(8))
    ag:finish()
    ag:save(path)
    local p = rl.load(path)
    local rng = core.rng(11)
    for _ = 1, 20 do
      local o = {rng:normal(), rng:normal(), rng:normal()}
      assert.are.equal(ag.policy:act(o, true), p:act(o, true))
    end
    local ag2 = small({seed = 99})
    assert.is_false(same_params(ag.policy, ag2.policy))
    ag2:load(path)
    assert.is_true(same_params(ag.policy, ag2.policy))
    assert.is_true(same_params(ag.value, ag2.value))
    assert.are.equal(ag.policy_optim:steps(), ag2.policy_optim:steps())
    assert.are.equal(1, ag2.updates)
    assert.are.equal(ag.steps, ag2.steps)
    raises(function() small({n_steps = 64}):load(path) end, "steps")
    p:close(); ag:close(); ag2:close()
    os.remove(path)
  end)

  it("keeps several agents independent", function()
    local a, b = small({seed = 1}), small({seed = 2})
    local b0 = b.policy:params()
    feed(a, 33, core.rng(1))
    a:finish()
    assert.are.equal(1, a.updates)
    assert.are.equal(0, b.updates)
    assert.are.equal(0, b.steps)
    assert.is_true(same_params(b.policy, {params = function() return b0 end}))
    a:close(); b:close()
  end)

  it("allocates nothing per act/observe step (Lua 5.4 binding)", function()
    if core.binding ~= "lua54" then return end
    for _, act in ipairs({rl.discrete(3), rl.box(2, -1, 1)}) do
      local ag = rl.agent{obs = 3, action = act, hidden = {8}, n_steps = 4096, seed = 1}
      local obs = {0.1, 0.2, 0.3}
      for _ = 1, 50 do ag:act(obs); ag:observe(1, false, false) end
      collectgarbage("collect")
      collectgarbage("stop")
      local c0 = collectgarbage("count")
      for _ = 1, 1000 do ag:act(obs); ag:observe(1, false, false) end
      local c1 = collectgarbage("count")
      collectgarbage("restart")
      assert.are.equal(c0, c1)
      ag:close()
    end
  end)

  it("learns CartPole from a step-by-step game loop", function()
    local env = envs.make("CartPole-v1")
    local ag = rl.agent{obs = 4, action = rl.discrete(2), hidden = {64, 64}, n_steps = 512,
                        epochs = 10, seed = 1}
    local obs = env:reset(1)
    local first, last = {}, {}
    for _ = 1, 12000 do
      local a = ag:act(obs)
      local o, r, te, tr = env:step(a)
      local ret = ag:observe(r, te, tr)
      if ret then
        if #first < 20 then first[#first + 1] = ret end
        last[#last + 1] = ret
        obs = env:reset()
      else
        obs = o
      end
      ag:train_step(1)
    end
    local function mean(t, k)
      local s, n = 0, 0
      for i = math.max(1, #t - k + 1), #t do s, n = s + t[i], n + 1 end
      return s / n
    end
    assert.is_true(ag.updates >= 20)
    assert.is_true(mean(first, 20) < 40)
    assert.is_true(mean(last, 10) > 100, "mean of the last 10 returns " .. mean(last, 10))
    ag:close()
  end)
end)
