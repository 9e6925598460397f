-- tests/lua/action_spaces_spec.lua — composite actions (multi_discrete,
-- multi_binary, hybrid) and invalid-action masks through moonrl.core, the
-- same under both bindings: construction and spec(), act/evaluate/kl and
-- the losses with masks, the errors, and checkpoints of the new specs.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local core = require "moonrl.core"
local checkpoint = require "moonrl.checkpoint"
local raises, close = H.raises, H.close

local OBS = {{0.1, -0.5, 0.9}, {1.2, 0.3, -0.7}, {-0.4, 0.8, 0.2}}

local function md(seed)
  return core.policy{obs_dim = 3, hidden = {5}, action = {type = "multi_discrete", nvec = {4, 3}},
                     out_gain = 1, seed = seed or 3}
end

local function hybrid()
  return core.policy{obs_dim = 3, hidden = {6}, out_gain = 1, init_log_std = -0.2, seed = 4,
                     action = {type = "hybrid", parts = {{type = "discrete", n = 3},
                                                         {type = "box", n = 2},
                                                         {type = "multi_binary", n = 2}}}}
end

local function log_softmax_at(z, first, n, mask, a)
  local m, s = -math.huge, 0
  for j = first, first + n - 1 do
    if not mask or mask[j] == 1 then m = math.max(m, z[j]) end
  end
  for j = first, first + n - 1 do
    if not mask or mask[j] == 1 then s = s + math.exp(z[j] - m) end
  end
  return z[first + a] - m - math.log(s)
end

local function log_sigmoid(x)
  return math.min(x, 0) - math.log(1 + math.exp(-math.abs(x)))
end

describe("composite actions", function()
  it("multi_discrete: outputs, action width, spec round trip", function()
    local p = md()
    assert.are.equal(7, p:action_n())
    assert.are.equal(2, p:action_width())
    assert.are.equal("multi_discrete", p:action_kind())
    local spec = p:spec()
    assert.are.same({4, 3}, spec.action.nvec)
    local q = core.policy(spec)
    assert.are.equal(p:nparams(), q:nparams())
    assert.are.same(spec, q:spec())
    p:close()
    q:close()
  end)

  it("multi_discrete: log π is the sum of its parts", function()
    local p = md()
    local acts = {{2, 1}, {0, 2}, {3, 0}}
    local out = p:forward(OBS):totable()
    local lp = p:evaluate(OBS, acts):totable()
    for i = 1, 3 do
      local want = log_softmax_at(out[i], 1, 4, nil, acts[i][1]) +
                   log_softmax_at(out[i], 5, 3, nil, acts[i][2])
      assert.is_true(close(lp[i], want, 1e-5))
    end
    p:close()
  end)

  it("multi_binary: bits, Bernoulli log-probabilities", function()
    local p = core.policy{obs_dim = 3, hidden = {}, action = {type = "multi_binary", n = 4},
                          out_gain = 1, seed = 2}
    assert.are.equal("multi_binary", p:action_kind())
    assert.are.equal(4, p:action_width())
    local a, lp = p:act(OBS[1])
    assert.are.equal(4, #a)
    for j = 1, 4 do assert.is_true(a[j] == 0 or a[j] == 1) end
    local z = p:forward(OBS[1]):totable()
    local want = 0
    for j = 1, 4 do want = want + log_sigmoid(a[j] == 1 and z[j] or -z[j]) end
    assert.is_true(close(lp, want, 1e-5))
    assert.is_true(close(p:evaluate(OBS[1], a), want, 1e-5))
    raises(function() p:evaluate(OBS[1], {0, 1, 0.5, 1}) end, "expected 0 or 1")
    p:close()
  end)

  it("hybrid: flat action rows, one log_std per gaussian part", function()
    local p = hybrid()
    assert.are.equal("hybrid", p:action_kind())
    assert.are.equal(7, p:action_n())
    assert.are.equal(5, p:action_width())
    local spec = p:spec()
    assert.are.same({type = "box", n = 2}, spec.action.parts[2])
    local a, lp = p:act(OBS, false)
    assert.are.same({3, 5}, a:shape())
    local lp2 = p:evaluate(OBS, a)
    for i = 1, 3 do assert.is_true(close(lp[i], lp2[i], 1e-4)) end
    -- grad of Σ w log π and the losses run
    assert.is_true(type(p:grad_weighted_logp(OBS, a, {1, -1, 0.5})) == "number")
    local s = p:ppo_loss(OBS, a, lp, {1, -0.5, 0.2}, {clip_eps = 0.2})
    assert.is_true(s.loss == s.loss)
    local kl = p:kl(nil, nil, OBS)
    assert.are.equal(0, kl[1])
    raises(function() p:evaluate(OBS, a, nil, {{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1},
                                                 {1, 1, 1, 1, 1, 1, 1}}) end,
           "categorical parts only")
    p:close()
  end)

  it("refuses bad action specs with their field", function()
    raises(function() core.policy{obs_dim = 2, action = {type = "multi_discrete"}} end,
           "action.nvec")
    raises(function() core.policy{obs_dim = 2, action = {type = "multi_discrete", nvec = {3, 0}}} end,
           "entry 2")
    raises(function()
      core.policy{obs_dim = 2, action = {type = "hybrid", parts = {{type = "circle", n = 2}}}}
    end, "circle")
    raises(function() core.policy{obs_dim = 2, action = {type = "tuple", n = 2}} end, "tuple")
  end)
end)

describe("invalid-action masks", function()
  local masks = {{1, 0, 1, 1, 0, 1, 1}, {0, 0, 0, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 0, 0}}

  it("renormalise log π over the valid actions; one valid action gives 0", function()
    local p = md()
    local acts = {{2, 2}, {3, 0}, {1, 0}}
    local out = p:forward(OBS):totable()
    local lp, ent = p:evaluate(OBS, acts, nil, masks)
    lp, ent = lp:totable(), ent:totable()
    for i = 1, 3 do
      local want = log_softmax_at(out[i], 1, 4, masks[i], acts[i][1]) +
                   log_softmax_at(out[i], 5, 3, masks[i], acts[i][2])
      assert.is_true(close(lp[i], want, 1e-5))
    end
    -- row 3: the second part has one valid action; row 2: the first part
    assert.is_true(close(lp[2], log_softmax_at(out[2], 5, 3, masks[2], 0), 1e-5))
    p:close()
  end)

  it("act never draws a masked action", function()
    local p = core.policy{obs_dim = 3, hidden = {}, action = {type = "discrete", n = 4}, seed = 1}
    -- logits = the bias: +100 on the masked entries
    local th = p:params():totable()
    for i = 1, 12 do th[i] = 0 end
    th[13], th[14], th[15], th[16] = 100, -100, 100, -100
    p:set_params(th)
    local m = {0, 1, 0, 1}
    local obs, ms = {}, {}
    for i = 1, 500 do obs[i], ms[i] = {0, 0, 0}, m end
    local a = p:act(obs, false, ms):totable()
    local seen = {}
    for i = 1, 500 do
      local ai = a[i][1]
      assert.is_true(ai == 1 or ai == 3)
      seen[ai] = true
    end
    assert.is_true(seen[1] and seen[3])
    local one, lp1 = p:act({0, 0, 0}, false, {0, 1, 0, 1})
    assert.is_true(one == 1 or one == 3)
    assert.is_true(close(lp1, math.log(0.5), 1e-5))
    assert.are.equal(3, (p:act({0, 0, 0}, true, {0, 0, 0, 1})))
    raises(function() p:act({0, 0, 0}, false, {0, 0, 0, 0}) end, "masks every action")
    p:close()
  end)

  it("reach the losses, the KL and the Fisher product", function()
    local p = md()
    local acts = {{2, 2}, {3, 0}, {1, 0}}
    local lp = p:evaluate(OBS, acts, nil, masks)
    local obj = p:grad_weighted_logp(OBS, acts, {1, 1, 1}, 1, masks)
    assert.is_true(close(obj, lp[1] + lp[2] + lp[3], 1e-5))
    local s = p:ppo_loss(OBS, acts, lp, {1, -1, 0.5}, {clip_eps = 0.2, ent_coef = 0.01}, masks)
    assert.is_true(close(s.approx_kl, 0, 1e-6) and s.clip_fraction == 0)
    local old = p:params()
    local loss, mkl = p:kl_penalty_loss(old, OBS, acts, lp, {0, 0, 0}, 1, masks)
    assert.is_true(close(mkl, 0, 1e-9) and close(loss, 0, 1e-9))
    local kl, mean = p:kl(old, nil, OBS, masks)
    assert.are.equal(0, mean)
    assert.are.equal(3, #kl:totable())
    local v = {}
    for i = 1, p:nparams() do v[i] = 1 end
    local fv = p:fvp(OBS, nil, v, 0.1, "analytic", masks)
    assert.are.equal(p:nparams(), fv:numel())
    raises(function() p:evaluate(OBS, {{1, 2}, {3, 0}, {1, 0}}, nil, masks) end, "forbids")
    raises(function() p:evaluate(OBS, acts, nil, {{1, 1}}) end)
    p:close()
  end)

  it("reach the trust-region steps and the estimators", function()
    local p = md()
    local acts = {{2, 2}, {3, 0}, {1, 0}}
    local g, st = p:pg_gradient(OBS, acts, {1, 2, -1}, nil, nil, {0, 3},
                                {estimator = "reinforce", gamma = 1}, masks)
    assert.are.equal(2, st.mean_return)
    p:grad_weighted_logp(OBS, acts, {2 / 1, 2 / 1, 2 / 1}, 1, masks)
    local want, got = p:grad():totable(), g:totable()
    for i = 1, #want do assert.is_true(close(got[i], want[i], 1e-5)) end
    local x, xAx = p:cg(OBS, nil, g, 0.1, 20, "analytic", masks)
    assert.is_true(xAx > 0 and x:numel() == p:nparams())
    local step = p:npg_step(OBS, nil, g, 0.1, 20, 0.01, "analytic", masks)
    assert.are.equal(p:nparams(), step:numel())
    local lp = p:evaluate(OBS, acts, nil, masks)
    local before = p:params()
    local r = p:trpo_step(OBS, acts, lp, {1, -1, 0.5}, {max_kl = 0.01}, masks)
    assert.is_true(r.accepted)
    local _, mkl = p:kl(before, nil, OBS, masks)
    assert.is_true(close(mkl, r.mean_kl, 1e-6) and mkl <= 0.01)
    local u = p:npg_update(OBS, acts, {1, -1, 0.5}, 0.1, 10, 0.01, "analytic", masks)
    assert.is_true(u.mean_kl > 0 and u.mean_kl < 0.03)
    p:close()
  end)
end)

describe("checkpoints of composite policies", function()
  local function tmp(name) return os.tmpname() .. "-" .. name .. ".safetensors" end

  it("round-trip hybrid (log_std per gaussian part) and multi_discrete", function()
    for _, make in ipairs({hybrid, md}) do
      local p = make()
      local th = p:params():totable()
      th[#th] = 0.25 -- a log_std (hybrid) or a bias
      p:set_params(th)
      local path = tmp("spaces")
      checkpoint.save_policy(p, path)
      local tensors = core.st_read(path)
      if p:action_kind() == "hybrid" then
        assert.are.equal(2, tensors["policy.log_std.1"]:numel())
        assert.is_nil(tensors["policy.log_std"])
      end
      local q = checkpoint.load_policy(path)
      os.remove(path)
      assert.are.same(p:spec(), q:spec())
      H.same_array(q:params():totable(), p:params():totable())
      local a = p:act(OBS, true)
      H.same_array(q:evaluate(OBS, a):totable(), p:evaluate(OBS, a):totable())
      p:close()
      q:close()
    end
  end)
end)

describe("the golden runner on action spaces", function()
  local golden = require "moonrl.golden"
  local tol = {rtol = 1e-4, atol = 1e-6}

  -- a one-state policy_eval case of a linear policy with K outputs (all
  -- parameters 0: uniform categoricals, mean 0, logits 0)
  local function case(action, K, actions, extra)
    local c = {kind = "policy_eval", tol = tol, obs = {{1, 2}}, actions = actions,
               policy = {obs_dim = 2, hidden = {}, activation = "tanh", action = action},
               expect = {}}
    local n = 3 * K
    if action.type == "hybrid" then
      for _, part in ipairs(action.parts) do n = n + (part.dim or 0) end
    end
    c.params = {}
    for i = 1, n do c.params[i] = 0 end
    for k, v in pairs(extra or {}) do c[k] = v end
    return c
  end

  it("passes a multi_discrete case with masks", function()
    local c = case({type = "multi_discrete", nvec = {3, 2}}, 5, {{1, 1}},
                   {masks = {{1, 1, 0, 0, 1}}})
    c.expect = {logits = {{0, 0, 0, 0, 0}}, logp = {math.log(0.5)}, entropy = {math.log(2)}}
    assert.is_nil(golden.check(c))
  end)

  it("fails masks where the action type takes none, unknown keys and types", function()
    local mb = case({type = "multi_binary", n = 2}, 2, {{0, 1}}, {masks = {{1, 1}}})
    mb.expect = {logp = {2 * math.log(0.5)}}
    assert.matches("masks", golden.check(mb))
    local extra = case({type = "multi_binary", n = 2, bits = 3}, 2, {{0, 1}})
    extra.expect = {logp = {2 * math.log(0.5)}}
    assert.matches("unknown key 'bits'", golden.check(extra))
    local part = case({type = "hybrid", parts = {{type = "bernoulli", n = 2}}}, 2, {{0, 1}})
    part.expect = {logp = {0}}
    assert.matches("bernoulli", golden.check(part))
    local pol = case({type = "categorical", n = 2}, 2, {0})
    pol.policy.dropout = 0.1
    pol.expect = {logp = {math.log(0.5)}}
    assert.matches("unknown key 'dropout'", golden.check(pol))
    local g1 = {kind = "fvp", tol = tol, masks = {{1, 1}}, obs = {{1, 2}}, params = {0, 0, 0, 0, 0, 0},
                v = {0, 0, 0, 0, 0, 0}, damping = 0.1, fisher = "analytic",
                policy = {obs_dim = 2, hidden = {}, activation = "tanh",
                          action = {type = "categorical", n = 2}},
                expect = {fvp = {0, 0, 0, 0, 0, 0}}}
    assert.matches("masks", golden.check(g1))
  end)
end)

describe("one state under a mask (the game's call, no allocation)", function()
  it("never draws a masked action, greedy or sampled, and names what is wrong", function()
    local p = core.policy{obs_dim = 3, hidden = {8}, action = {type = "discrete", n = 5}, seed = 4,
                          out_gain = 10}
    local obs = {0.3, -0.2, 0.9}
    local masks = {{0, 1, 0, 0, 1}, {1, 0, 0, 0, 0}, {0, 0, 1, 1, 0}}
    for i = 1, 3000 do
      local m = masks[i % 3 + 1]
      local a, lp = p:act(obs, i % 5 == 0, m)
      assert.equal(1, m[a + 1])
      -- its log-prob is the one evaluate gives under the same mask
      if i <= 3 then
        local want = p:evaluate({obs}, {a}, nil, {m})
        close(want[1], lp, 1e-6)
      end
    end
    raises(function() p:act(obs, false, {0, 0, 0, 0, 0}) end, "masks every action")
    raises(function() p:act(obs, false, {1, 0.5, 0, 0, 0}) end, "mask")
    raises(function() p:act(obs, false, {1, 0, 0}) end, "act")           -- the wrong width
    raises(function() p:act({0 / 0, 0, 0}, false, masks[1]) end, "finite number expected at [1]")
    local md2 = core.policy{obs_dim = 3, hidden = {8}, action = {type = "multi_discrete", nvec = {2, 3}},
                            seed = 1}
    for _ = 1, 500 do
      local a = md2:act(obs, false, {0, 1, 1, 0, 0})
      assert.same({1, 0}, a)
    end
  end)
end)
