-- tests/lua/ppo_job_spec.lua — the sliceable PPO engine from Lua (both
-- VMs): core.ppo_begin / job:step / job:finish / job:abort give the bits of
-- core.ppo_update however the update is sliced; abort restores; adaptive
-- KL reports its new β; a failed step is refused and restored; and the
-- in-game agent's buffer calls (core.rollout_put / rollout_outcome /
-- rollout_bootstrap / rollout_behaviour).

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local core = require "moonrl.core"
local raises = H.raises

local T, D = 24, 3

local function nets(seed)
  local p = core.policy{obs_dim = D, hidden = {8}, action = {type = "discrete", n = 2}, seed = seed}
  local v = core.net{in_dim = D, hidden = {8}, seed = seed + 1}
  return {p = p, v = v, po = core.optim{n = p:nparams()}, vo = core.optim{n = v:nparams()}}
end

local function close_all(n) n.p:close(); n.v:close(); n.po:close(); n.vo:close() end

-- A rollout of T steps of one env, filled through rollout_put/outcome by a
-- separate actor, bootstrapped with a value net, GAE on top.
local function filled(seed)
  local actor = nets(seed + 10)
  local ro = core.rollout{steps = T, num_envs = 1, obs_dim = D, action_width = 1}
  local rng = core.rng(seed)
  local obs = {}
  for t = 0, T - 1 do
    for j = 1, D do obs[j] = rng:normal() end
    local a, logp = actor.p:act(obs)
    core.rollout_put(ro, t, 0, obs, a, logp)
    core.rollout_outcome(ro, t, 0, rng:uniform(), t == 10, t == 17, t == 17 and {1, 2, 3} or nil)
  end
  core.rollout_bootstrap(ro, actor.v, {0.5, 0.5, 0.5})
  ro:gae(0.99, 0.95)
  close_all(actor)
  return ro
end

local function same(a, b)
  local x, y = a:params(), b:params()
  for i = 1, x:numel() do if x[i] ~= y[i] then return false end end
  return true
end

local CFG = {epochs = 3, minibatch_size = 5, lr = 1e-3, clip_value = 0.2, ent_coef = 0.01}

describe("core.ppo_begin", function()
  for _, kl in ipairs({false, true}) do
    it("gives core.ppo_update's bits however it is sliced" .. (kl and " (adaptive KL)" or ""), function()
      local ro = filled(1)
      local cfg = {}
      for k, x in pairs(CFG) do cfg[k] = x end
      if kl then cfg.kl_beta, cfg.kl_target = 0.5, 1e-9 end
      local a = nets(1)
      local ra = core.ppo_update(a.p, a.v, a.po, a.vo, ro, cfg)
      for _, per in ipairs({1, 4}) do
        local b = nets(1)
        local job = core.ppo_begin(b.p, b.v, b.po, b.vo, ro, cfg)
        local calls = 0
        repeat
          calls = calls + 1
          local done = job:step(per)
          assert.is_boolean(done)
        until done
        local rb = job:finish()
        assert.are.equal(math.ceil(3 * 5 / per), calls)
        assert.is_true(same(a.p, b.p) and same(a.v, b.v))
        for _, k in ipairs({"policy_loss", "value_loss", "entropy", "approx_kl", "grad_norm",
                            "minibatches", "epochs_done"}) do
          assert.are.equal(ra[k], rb[k], k)
        end
        if kl then assert.are.equal(1.0, rb.kl_beta) else assert.is_nil(rb.kl_beta) end
        raises(function() job:step() end, "finished")
        close_all(b)
      end
      close_all(a)
      ro:close()
    end)
  end

  it("restores everything on abort, and on a refused step", function()
    local ro = filled(2)
    local a, b = nets(3), nets(3)
    core.ppo_update(a.p, a.v, a.po, a.vo, ro, CFG)
    core.ppo_update(b.p, b.v, b.po, b.vo, ro, CFG)
    local job = core.ppo_begin(a.p, a.v, a.po, a.vo, ro, CFG)
    assert.is_false(job:step(4))
    local epoch, nmb, fin = job:progress()
    assert.are.equal(1, epoch); assert.are.equal(4, nmb); assert.is_false(fin)
    assert.is_false(same(a.p, b.p))
    job:abort()
    assert.is_true(same(a.p, b.p) and same(a.v, b.v))
    assert.are.equal(b.po:steps(), a.po:steps())
    job:abort()   -- idempotent
    -- a parameter turned NaN behind the job's back: refused, restored
    job = core.ppo_begin(a.p, a.v, a.po, a.vo, ro, CFG)
    job:step(2)
    a.p:params_view()[1] = 0 / 0
    local done, err = job:step(1)
    assert.is_nil(done)
    assert.truthy(err:find("update refused", 1, true), err)
    assert.is_true(same(a.p, b.p) and same(a.v, b.v))
    raises(function() job:finish() end, "finished")
    close_all(a); close_all(b); ro:close()
  end)

  it("refuses bad arguments", function()
    local ro = filled(4)
    local a = nets(5)
    raises(function() core.ppo_begin(a.p, a.v, a.po, a.vo, a.p) end, "moonrl.Rollout")
    raises(function() core.ppo_begin(a.p, a.v, a.po, a.vo, ro, {minibatch_size = T + 1}) end,
           "minibatch_size")
    raises(function() core.ppo_begin(a.p, a.v, a.po, a.vo, ro, {minibatch_size = 8, kl_beta = 1}) end,
           "kl_target")
    raises(function() core.ppo_begin(a.p, a.v, a.po, a.vo, ro, {minibatch_size = 8, rng = 3}) end,
           "bad field 'rng'")
    local job = core.ppo_begin(a.p, a.v, a.po, a.vo, ro, {minibatch_size = 8, rng = core.rng(1)})
    raises(function() job:step(-1) end, "bad argument")
    assert.is_table(job:finish())
    close_all(a); ro:close()
  end)
end)

describe("core.rollout_put and friends", function()
  it("bootstrap values like a collect, and measure staleness", function()
    local n = nets(6)
    local ro = core.rollout{steps = 3, num_envs = 1, obs_dim = D, action_width = 1}
    local rows = {{0.1, 0.2, 0.3}, {0.3, 0.2, 0.1}, {1, 0, -1}}
    for t = 0, 2 do
      local a, logp = n.p:act(rows[t + 1])
      core.rollout_put(ro, t, 0, rows[t + 1], a, logp)
      core.rollout_outcome(ro, t, 0, 1, false, t == 1, t == 1 and {9, 9, 9} or nil)
    end
    core.rollout_bootstrap(ro, n.v, {2, 2, 2})
    local nv, vals = ro:field("next_values"):reshape(3), ro:field("values"):reshape(3)
    assert.is_true(H.close(vals[1], n.v:forward(rows[1])[1], 1e-6))
    assert.is_true(H.close(nv[1], vals[2], 1e-6))
    assert.is_true(H.close(nv[2], n.v:forward({9, 9, 9})[1], 1e-6))
    assert.is_true(H.close(nv[3], n.v:forward({2, 2, 2})[1], 1e-6))
    local ratio, kl = core.rollout_behaviour(ro, n.p)
    assert.is_true(H.close(ratio, 1, 1e-5) and math.abs(kl) < 1e-5)
    raises(function() core.rollout_put(ro, 3, 0, rows[1], 0, 0) end, "outside")
    raises(function() core.rollout_outcome(ro, 0, 0, 0 / 0, false, false) end, "finite")
    raises(function() core.rollout_put(ro, 0, 0, {1, 2}, 0, 0) end, "bad argument")
    close_all(n); ro:close()
  end)
end)
