-- tests/lua/core_spec.lua — the moonrl.core interface (docs/CORE_API.md):
-- tensors, policies, value nets, optimisers, returns/GAE, and the errors a
-- bad call raises.  Shared by every binding: no Lua 5.4-only syntax.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local core = require "moonrl.core"
local raises, close = H.raises, H.close

local function linear_policy(n, extra)
  local spec = {obs_dim = 2, hidden = {}, action = {type = "discrete", n = n or 2}, seed = 3}
  for k, v in pairs(extra or {}) do spec[k] = v end
  return core.policy(spec)
end

local function log_softmax(z)
  local m = -math.huge
  for i = 1, #z do if z[i] > m then m = z[i] end end
  local s = 0
  for i = 1, #z do s = s + math.exp(z[i] - m) end
  local out = {}
  for i = 1, #z do out[i] = z[i] - m - math.log(s) end
  return out
end

describe("moonrl.core", function()
  it("has a version and an ABI number", function()
    assert.is_string(core.version)
    assert.is_number(core.abi)
  end)

  describe("tensor", function()
    it("infers shapes from nested tables", function()
      local t = core.tensor{{1, 2, 3}, {4, 5, 6}}
      assert.same({2, 3}, t:shape())
      assert.equal(2, t:dim())
      assert.equal(6, t:numel())
      assert.equal(2, #t)
      assert.equal(6, t:get(2, 3))
      assert.same({{1, 2, 3}, {4, 5, 6}}, t:totable())
      local v = core.tensor{1.5, 2.5}
      assert.same({2}, v:shape())
      assert.equal(2.5, v[2])
      local d4 = core.tensor{{{{1}, {2}}}}
      assert.same({1, 1, 2, 1}, d4:shape())
    end)

    it("builds from a shape and a fill value, and zeros", function()
      local t = core.tensor({2, 3}, 7)
      assert.same({2, 3}, t:shape())
      assert.same({7, 7, 7}, t[2]:totable())
      local z = core.zeros(3, 2)
      assert.same({3, 2}, z:shape())
      assert.equal(0, z:sum())
      assert.same({4}, core.zeros({4}):shape())
    end)

    it("stores float32", function()
      local t = core.zeros(1)
      t[1] = 0.1
      assert.is_true(math.abs(t[1] - 0.1) < 1e-8)
      assert.is_not.equal(0.1, t[1])
    end)

    it("gives row views that share memory", function()
      local t = core.zeros(3, 2)
      local row = t[2]
      assert.same({2}, row:shape())
      row[1] = 5
      assert.equal(5, t:get(2, 1))
      t[3] = {7, 8}
      assert.same({7, 8}, t[3]:totable())
      t:set(1, 2, 9)
      assert.equal(9, t[1][2])
    end)

    it("views, reshapes and clones", function()
      local t = core.tensor{{1, 2}, {3, 4}, {5, 6}}
      local v = t:view(2, 2)
      assert.same({{3, 4}, {5, 6}}, v:totable())
      v[1][1] = 30
      assert.equal(30, t:get(2, 1))
      local r = t:reshape(6)
      assert.same({1, 2, 30, 4, 5, 6}, r:totable())
      r[6] = 60
      assert.equal(60, t:get(3, 2))
      local c = t:clone()
      c[1][1] = 100
      assert.equal(1, t:get(1, 1))
      assert.same({2, 3}, t:reshape(2, 3):shape())
    end)

    it("keeps the base of a view alive", function()
      local row = core.zeros(4, 3)[2]
      collectgarbage()
      collectgarbage()
      row[3] = 2
      assert.equal(2, row[3])
      assert.equal(2, row:sum())
    end)

    it("fills, copies and measures", function()
      local t = core.zeros(2, 2):fill(3)
      assert.equal(12, t:sum())
      t:copy{{1, 2}, {2, 0}}
      assert.equal(3, t:norm())
      local u = core.zeros(4)
      u:copy(t)
      assert.same({1, 2, 2, 0}, u:totable())
      assert.matches("moonrl.Tensor %[2%]%[2%]", tostring(t))
    end)

    it("rejects ragged tables, bad indices and bad sizes", function()
      raises(function() core.tensor{{1, 2}, {3}} end, "ragged")
      raises(function() core.tensor{{1, 2}, 3} end, "ragged")
      raises(function() core.tensor{1, "x"} end, "number")
      raises(function() core.tensor{} end, "empty")
      raises(function() core.tensor("x") end, "bad argument #1 to 'tensor'")
      local t = core.zeros(2, 3)
      raises(function() return t[3] end, "out of range")
      raises(function() return t[0] end, "out of range")
      raises(function() t:get(1, 4) end, "out of range")
      raises(function() t:get(1) end, "2 indices expected")
      raises(function() t:reshape(4) end, "cannot reshape")
      raises(function() t:view(3, 1) end, "out of range")
      raises(function() t:copy(core.zeros(5)) end, "6 elements expected")
      raises(function() t.foo = 1 end, "cannot be assigned")
      raises(function() core.zeros(1, 1, 1, 1, 1) end, "1 to 4 dimensions")
    end)
  end)

  describe("policy", function()
    it("reports its shape and parameter count", function()
      local p = core.policy{obs_dim = 4, hidden = {64, 64}, activation = "tanh",
                            action = {type = "discrete", n = 2}, seed = 1}
      assert.equal(4, p:obs_dim())
      assert.equal("discrete", p:action_kind())
      assert.equal(2, p:action_n())
      assert.equal(4 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2, p:nparams())
      local b = core.policy{obs_dim = 3, hidden = {8}, action = {type = "box", n = 2}}
      assert.equal("box", b:action_kind())
      assert.equal(3 * 8 + 8 + 8 * 2 + 2 + 2, b:nparams()) -- + log_std
      assert.matches("moonrl.Policy", tostring(p))
    end)

    it("is deterministic by seed", function()
      local spec = {obs_dim = 3, hidden = {16}, action = {type = "discrete", n = 3}, seed = 42}
      local a, b = core.policy(spec), core.policy(spec)
      assert.same(a:params():totable(), b:params():totable())
      spec.seed = 43
      assert.is_not.same(a:params():totable(), core.policy(spec):params():totable())
      local obs = {0.1, -0.2, 0.3}
      for _ = 1, 20 do assert.equal(a:act(obs), b:act(obs)) end
    end)

    it("reproduces itself from spec()", function()
      local p = core.policy{obs_dim = 3, hidden = {5, 4}, activation = "relu",
                            action = {type = "box", n = 2, low = {-1, -2}, high = {1, 2}},
                            seed = 9, init_log_std = -0.5}
      local s = p:spec()
      assert.same({5, 4}, s.hidden)
      assert.equal("relu", s.activation)
      assert.same({-1, -2}, s.action.low)
      local q = core.policy(s)
      assert.same(p:params():totable(), q:params():totable())
    end)

    it("round-trips parameters in the documented flat order", function()
      -- a linear policy: logits = W x + b, W [2][2] row-major then b
      local p = linear_policy(2)
      p:set_params{1, 2, 3, 4, 0.5, -0.5}
      assert.same({1, 2, 3, 4, 0.5, -0.5}, p:params():totable())
      local z = p:forward({1, 10}):totable()
      assert.same({1 + 20 + 0.5, 3 + 40 - 0.5}, z)
      local n = p:nparams()
      local v = core.zeros(n)
      for i = 1, n do v[i] = i / 10 end
      p:set_params(v)
      local back = p:params()
      for i = 1, n do assert.equal(v[i], back[i]) end
    end)

    it("acts on one state (integer action) and on batches (tensors)", function()
      local p = core.policy{obs_dim = 4, hidden = {8}, action = {type = "discrete", n = 3}, seed = 5}
      local a, logp = p:act({0.1, 0.2, 0.3, 0.4})
      assert.is_true(math.type == nil or math.type(a) == "integer")
      assert.is_true(a >= 0 and a < 3)
      assert.is_true(logp <= 0)
      -- deterministic: the mode of the logits
      local z = p:forward({0.1, 0.2, 0.3, 0.4}):totable()
      local best = 1
      for i = 2, 3 do if z[i] > z[best] then best = i end end
      assert.equal(best - 1, (p:act({0.1, 0.2, 0.3, 0.4}, true)))
      local obs = core.tensor{{0, 0, 0, 0}, {1, 1, 1, 1}, {2, 2, 2, 2}}
      local acts, lps = p:act(obs)
      assert.same({3, 1}, acts:shape())
      assert.same({3}, lps:shape())
      local out_a, out_l = core.zeros(3, 1), core.zeros(3)
      p:act_into(obs, out_a, out_l, true)
      local evl = p:evaluate(obs, out_a)
      for i = 1, 3 do assert.is_true(close(out_l[i], evl[i])) end
    end)

    it("acts on one state given as a table without allocating", function()
      local p = core.policy{obs_dim = 4, hidden = {8}, action = {type = "discrete", n = 3}, seed = 5}
      local obs = {0.1, 0.2, 0.3, 0.4}
      local function calls() for _ = 1, 10000 do p:act(obs) end end
      -- A first run lets LuaJIT compile the loop: its traces count as Lua
      -- memory there, once; the second run is what a game's frame costs.
      calls()
      collectgarbage()
      collectgarbage("stop")
      local before = collectgarbage("count")
      calls()
      local grown = collectgarbage("count") - before
      collectgarbage("restart")
      assert.is_true(grown < 1, ("act allocated %.1f KiB over 10000 calls"):format(grown))
    end)

    it("evaluates log-probabilities as log_softmax of the logits", function()
      local p = core.policy{obs_dim = 2, hidden = {6}, action = {type = "discrete", n = 3}, seed = 2}
      local obs = {{0.5, -1}, {2, 0.25}}
      local logits = p:forward(obs)
      local logp, ent = p:evaluate(obs, {2, 0})
      local l1, l2 = log_softmax(logits[1]:totable()), log_softmax(logits[2]:totable())
      assert.is_true(close(logp[1], l1[3]))
      assert.is_true(close(logp[2], l2[1]))
      local h = 0
      for i = 1, 3 do h = h - math.exp(l1[i]) * l1[i] end
      assert.is_true(close(ent[1], h))
    end)

    it("samples box actions inside a Gaussian around the mean", function()
      local p = core.policy{obs_dim = 3, hidden = {}, action = {type = "box", n = 2}, seed = 1,
                            init_log_std = -20}
      local mean = p:forward({1, 2, 3}):totable()
      local a, logp = p:act({1, 2, 3})
      assert.equal(2, #a)
      assert.is_number(logp)
      for i = 1, 2 do assert.is_true(math.abs(a[i] - mean[i]) < 1e-3) end
      local d = p:act({1, 2, 3}, true)
      assert.is_true(close(d[1], mean[1]))
    end)

    it("gives zero KL between equal parameters", function()
      local p = core.policy{obs_dim = 2, hidden = {4}, action = {type = "discrete", n = 2}, seed = 1}
      local th = p:params()
      local kl, mean = p:kl(th, th, {{1, 2}, {3, 4}})
      assert.same({2}, kl:shape())
      assert.is_true(math.abs(mean) < 1e-7)
    end)

    it("computes grad_weighted_logp matching central differences", function()
      local p = core.policy{obs_dim = 2, hidden = {3}, action = {type = "discrete", n = 3}, seed = 7}
      local obs, acts, w = {{0.3, -0.7}, {1.1, 0.4}}, {2, 1}, {0.5, -1.5}
      local obj = p:grad_weighted_logp(obs, acts, w)
      local g = p:grad():clone()
      local th = p:params()
      local function f(params)
        local lp = p:evaluate(obs, acts, params)
        return w[1] * lp[1] + w[2] * lp[2]
      end
      assert.is_true(close(obj, f(th), 1e-4))
      local h = 1e-2
      for k = 1, p:nparams() do
        local plus, minus = th:clone(), th:clone()
        plus[k] = th[k] + h
        minus[k] = th[k] - h
        local fd = (f(plus) - f(minus)) / (2 * h)
        assert.is_true(math.abs(fd - g[k]) < 2e-3, ("param %d: fd %g vs grad %g"):format(k, fd, g[k]))
      end
    end)

    it("returns PPO statistics and sets the gradient", function()
      local p = core.policy{obs_dim = 2, hidden = {4}, action = {type = "discrete", n = 2}, seed = 1}
      local obs = {{1, 0}, {0, 1}, {1, 1}}
      local acts = {0, 1, 1}
      local lp = p:evaluate(obs, acts)
      local s = p:ppo_loss(obs, acts, lp, {1, -1, 0.5}, {clip_eps = 0.2, ent_coef = 0.01,
                                                         normalize_advantages = false})
      for _, k in ipairs{"loss", "policy_loss", "entropy", "clip_fraction", "approx_kl"} do
        assert.is_number(s[k])
      end
      assert.equal(0, s.clip_fraction)
      assert.is_true(math.abs(s.approx_kl) < 1e-6)
      assert.is_true(p:grad():norm() > 0)
    end)
  end)

  describe("net", function()
    it("maps [N][in] to [N][out]", function()
      local n = core.net{in_dim = 3, hidden = {8}, out_dim = 2, seed = 1}
      assert.same({5, 2}, n:forward(core.zeros(5, 3)):shape())
      assert.same({2}, n:forward({1, 2, 3}):shape())
      assert.equal(3 * 8 + 8 + 8 * 2 + 2, n:nparams())
      assert.equal(3, n:spec().in_dim)
    end)

    it("backward of the squared error matches value_loss's gradient", function()
      local n = core.net{in_dim = 2, hidden = {5}, seed = 3}
      local x, tg = {{1, 2}, {-1, 0.5}, {0, 3}}, {1, -2, 0.5}
      local loss, values = n:value_loss(x, tg)
      local g1 = n:grad():clone()
      local y = n:forward(x)
      local dy, l2 = core.zeros(3, 1), 0
      for i = 1, 3 do
        local d = y[i][1] - tg[i]
        dy[i][1] = 2 * d / 3
        l2 = l2 + d * d / 3
        assert.is_true(close(values[i], y[i][1]))
      end
      assert.is_true(close(loss, l2, 1e-4))
      n:zero_grad()
      assert.equal(0, n:grad():norm())
      n:backward(dy)
      local g2 = n:grad()
      for k = 1, n:nparams() do assert.is_true(math.abs(g1[k] - g2[k]) < 1e-5) end
    end)

    it("learns a regression with Adam", function()
      local n = core.net{in_dim = 1, hidden = {16}, seed = 1}
      local x, tg = {}, {}
      for i = 1, 16 do x[i] = {i / 8 - 1}; tg[i] = 2 * (i / 8 - 1) + 0.5 end
      local opt = core.optim{kind = "adam", n = n:nparams()}
      local first = n:value_loss(x, tg)
      local last
      for _ = 1, 200 do
        last = n:value_loss(x, tg)
        opt:step(n, 0.01)
      end
      assert.equal(200, opt:steps())
      assert.is_true(last < first * 0.1, ("loss %g -> %g"):format(first, last))
    end)
  end)

  describe("optim", function()
    it("takes plain SGD steps on a tensor", function()
      local o = core.optim{kind = "sgd", n = 3}
      local th = core.tensor{1, 2, 3}
      o:step(th, {1, -1, 0.5}, 0.1)
      assert.is_true(close(th[1], 0.9) and close(th[2], 2.1) and close(th[3], 2.95))
      assert.equal("sgd", o:kind())
    end)

    it("clips gradient norms", function()
      local g = core.tensor{3, 4}
      assert.is_true(close(core.clip_grad_norm(g, 1), 5))
      assert.is_true(close(g[1], 0.6) and close(g[2], 0.8))
    end)
  end)

  describe("training routines", function()
    it("straight-through Gumbel gradient samples valid actions", function()
      local p = core.policy{obs_dim = 2, hidden = {4}, action = {type = "discrete", n = 3}, seed = 1}
      local a, obj = p:gumbel_grad({1, 2}, {0, 1, 0}, 0.5)
      assert.is_true(a >= 0 and a < 3)
      assert.equal(a == 1 and 1 or 0, obj)
      local acts = p:gumbel_grad({{1, 2}, {3, 4}}, {{0, 1, 0}, {1, 0, 0}}, 0.5)
      assert.same({2}, acts:shape())
      raises(function() p:gumbel_grad({1, 2}, {0, 1}, 0.5) end, "bad argument #2 to 'gumbel_grad'")
      raises(function() p:gumbel_grad({1, 2}, {0, 1, 0}, 0) end, "tau: expected a finite temperature > 0")
    end)

    it("fits a value network", function()
      local n = core.net{in_dim = 2, hidden = {8}, seed = 1}
      local o = core.optim{n = n:nparams()}
      local obs, tg = {}, {}
      for i = 1, 64 do obs[i] = {i / 64, 1 - i / 64}; tg[i] = i / 32 end
      local before = n:value_loss(obs, tg)
      local after = core.value_fit(n, o, obs, tg, {epochs = 50, minibatch = 16, lr = 3e-3, seed = 1})
      assert.is_true(after < before / 10, ("%g -> %g"):format(before, after))
      raises(function() core.value_fit(n, o, obs, tg, {rng = 5}) end, "bad field 'rng'")
      raises(function() core.value_fit(o, o, obs, tg) end, "moonrl.Net expected")
    end)

    if core.vecenv then
      it("runs PPO updates on a collected rollout", function()
        local env = core.vecenv{source = "CartPole-v1", num_envs = 2, threads = 0, seed = 1}
        local p = core.policy{obs_dim = 4, hidden = {16}, action = {type = "discrete", n = 2}, seed = 1}
        local v = core.net{in_dim = 4, hidden = {16}, seed = 2}
        local po, vo = core.optim{n = p:nparams()}, core.optim{n = v:nparams()}
        local ro = core.rollout{steps = 32, num_envs = 2, obs_dim = 4, action_width = 1}
        env:reset(1)
        env:collect(ro, p, v)
        ro:gae(0.99, 0.95)
        local before = p:params()
        local r = core.ppo_update(p, v, po, vo, ro, {epochs = 2, minibatch_size = 16})
        assert.equal(2, r.epochs_done)
        assert.equal(8, r.minibatches)
        assert.is_number(r.value_loss)
        assert.is_true(p:params():norm() ~= before:norm())
        raises(function() core.ppo_update(p, v, po, vo, env) end, "bad argument #5", "moonrl.Rollout")
        env:close()
      end)
    end
  end)

  describe("returns and gae", function()
    it("computes reward-to-go and the discounted return", function()
      local rtg, R = core.returns({1, 2, 3}, 0.5)
      assert.is_true(close(R, 2.75))
      local t = rtg:totable()
      assert.is_true(close(t[1], 2.75) and close(t[2], 3.5) and close(t[3], 3))
    end)

    it("computes GAE with termination", function()
      local adv, ret = core.gae({1, 1}, {0.5, 0.5}, {0.5, 0.7}, {false, true}, {false, false},
                                0.9, 0.8)
      assert.is_true(close(adv[2], 0.5) and close(adv[1], 0.95 + 0.72 * 0.5))
      assert.is_true(close(ret[1], 1.81) and close(ret[2], 1.0))
    end)

    it("bootstraps but does not continue across a truncation", function()
      local adv = core.gae({1, 1}, {0.5, 0.5}, {0.5, 0.7}, core.tensor{0, 0}, core.tensor{1, 0},
                           0.9, 0.8)
      assert.is_true(close(adv[1], 0.95) and close(adv[2], 1 + 0.63 - 0.5))
    end)
  end)

  describe("errors", function()
    local p
    before_each(function()
      p = core.policy{obs_dim = 4, hidden = {8}, action = {type = "discrete", n = 2}, seed = 1}
    end)

    it("name the argument and the expected type", function()
      raises(function() p:act("x") end,
             "bad argument #1 to 'act' (moonrl.Tensor or table of 4 numbers expected, got string)")
      raises(function() p:forward(42) end, "bad argument #1 to 'forward'")
      raises(function() p:set_params("x") end, "bad argument #1 to 'set_params'")
      raises(function() p.act(core.zeros(1), {1, 2, 3, 4}) end, "moonrl.Policy expected")
      raises(function() core.returns("x", 0.9) end, "bad argument #1 to 'returns'")
      raises(function() core.optim{n = 3}:step(core.zeros(4), core.zeros(4), 0.1) end,
             "bad argument #1 to 'step'", "3 parameters expected")
      raises(function() p:ppo_loss({{1, 2, 3, 4}}, {0}, {0}, {1}, {clip_eps = "x"}) end,
             "clip_eps")
    end)

    it("name the argument on wrong shapes", function()
      raises(function() p:act({1, 2, 3}) end, "bad argument #1 to 'act'", "4 numbers")
      raises(function() p:forward(core.zeros(2, 5)) end, "bad argument #1 to 'forward'", "[2][5]")
      raises(function() p:evaluate({{1, 2, 3, 4}}, {0, 1}) end, "bad argument #2 to 'evaluate'")
      raises(function() p:set_params(core.zeros(3)) end, "bad argument #1 to 'set_params'")
      raises(function() p:act({{1, 2, 3, 4}, {1, 2}}) end, "bad argument #1 to 'act'", "row 2")
      raises(function() core.gae({1}, {1, 2}, {1}, {false}, {false}, 0.9, 0.9) end,
             "bad argument #2 to 'gae'")
    end)

    it("refuse NaN inputs", function()
      local nan = 0 / 0
      raises(function() p:act({1, nan, 3, 4}) end, "bad argument #1 to 'act'", "finite")
      raises(function() p:act(core.tensor{1, 2, nan, 4}) end, "bad argument #1 to 'act'", "finite")
      raises(function() p:evaluate({{1, 2, 3, 4}}, {0}, core.tensor({p:nparams()}, nan)) end,
             "bad argument #3 to 'evaluate'")
      raises(function() core.returns({1, nan}, 0.9) end, "bad argument #1 to 'returns'", "finite")
      local before = p:params():totable()
      local bad = p:params()
      bad[1] = nan
      raises(function() p:set_params(bad) end, "bad argument #1 to 'set_params'")
      assert.same(before, p:params():totable())
      raises(function() p:ppo_loss({{1, 2, 3, 4}}, {0}, {0}, {math.huge}) end,
             "bad argument #4 to 'ppo_loss'")
    end)

    it("refuse out-of-range discrete actions", function()
      raises(function() p:evaluate({{1, 2, 3, 4}}, {2}) end,
             "bad argument #2 to 'evaluate'", "[0, 2)")
      raises(function() p:evaluate({{1, 2, 3, 4}}, {-1}) end, "bad argument #2 to 'evaluate'")
      raises(function() p:evaluate({{1, 2, 3, 4}}, {0.5}) end, "bad argument #2 to 'evaluate'")
      raises(function() p:grad_weighted_logp({{1, 2, 3, 4}}, {5}, {1}) end,
             "bad argument #2 to 'grad_weighted_logp'")
    end)

    it("refuse bad constructor fields", function()
      raises(function() core.policy{} end, "obs_dim")
      raises(function() core.policy{obs_dim = 2, action = {type = "discrete", n = 2},
                                    activation = "gelu"} end, "activation", "gelu")
      raises(function() core.policy{obs_dim = 2, action = {type = "beta", n = 2}} end, "type")
      raises(function() core.policy{obs_dim = 2, hidden = {0}, action = {type = "discrete", n = 2}} end,
             "hidden")
      raises(function() core.policy{obs_dim = 2, action = {type = "box", n = 2, low = {1, 1},
                                                           high = {0, 0}}} end, "low")
      raises(function() core.net{in_dim = "x"} end, "in_dim")
      raises(function() core.optim{kind = "rmsprop", n = 2} end, "kind")
    end)

    it("refuse unknown options and missing inputs", function()
      local obs, acts = {{1, 2, 3, 4}}, {0}
      raises(function() p:fvp(obs, acts, p:params(), 0.1, "exact") end, "bad argument #5 to 'fvp'")
      raises(function() p:fvp(obs, nil, p:params(), 0.1, "empirical") end,
             "bad argument #2 to 'fvp'")
      raises(function() p:pg_gradient(obs, acts, {1}, nil, nil, {0}, {estimator = "magic"}) end,
             "estimator", "magic")
      raises(function() p:pg_gradient(obs, acts, {1}, nil, nil, {0}, {estimator = "is_full"}) end,
             "estimator 'is_full' needs behavior_logp")
      raises(function() p:pg_gradient(obs, acts, {1}, nil, nil, {1}, {}) end,
             "ep_offsets must start at 0, got 1")
      raises(function() p:pg_gradient({{1, 2, 3, 4}, {1, 2, 3, 4}}, {0, 1}, {1, 1}, nil, nil,
                                      {0, 0}, {}) end, "ep_offsets must increase strictly")
      raises(function() p:pg_gradient(obs, acts, {1}, nil, nil, {2}, {}) end,
             "bad argument #6 to 'pg_gradient' (offset [1]: integer in [0, 1] expected)")
    end)

    it("make closing idempotent and use after close an error", function()
      local g = p:grad()
      p:close()
      p:close()
      assert.matches("closed", tostring(p))
      raises(function() p:act({1, 2, 3, 4}) end, "attempt to use a closed moonrl.Policy")
      raises(function() p:nparams() end, "attempt to use a closed moonrl.Policy")
      raises(function() return g[1] end, "closed moonrl.Policy")
      local n = core.net{in_dim = 1}
      n:close()
      raises(function() n:forward({1}) end, "attempt to use a closed moonrl.Net")
      local o = core.optim{n = 1}
      o:close()
      raises(function() o:step(core.zeros(1), {1}, 0.1) end, "attempt to use a closed moonrl.Optim")
    end)

    it("survive random garbage arguments with Lua errors only", function()
      -- Every method with random mixes of wrong values: each call either
      -- works or raises a string error; the host must never crash (the ASan
      -- build runs this too).
      local nan = 0 / 0
      local unpack_ = unpack or table.unpack
      local b = core.policy{obs_dim = 4, hidden = {}, seed = 2,
                            action = {type = "box", n = 2, low = -1, high = 1}}
      local n = core.net{in_dim = 4, hidden = {3}}
      local o = core.optim{n = p:nparams()}
      local vals = {0, -1, 1, 2, 1e300, nan, "x", true, {}, {1}, {1, 2, 3, 4}, {{1, 2, 3, 4}},
                    {{1, 2}, {3}}, {{1, nan, 3, 4}}, core.zeros(4), core.zeros(1, 4), core.zeros(3, 2),
                    core.zeros(p:nparams()), core.tensor({4}, nan), p, n, o, {0, 1},
                    {{0}, {1}}, {estimator = "is_full"}, {clip_eps = nan}, false}
      local methods = {
        [p] = {"forward", "act", "act_into", "evaluate", "kl", "grad_weighted_logp", "ppo_loss",
               "kl_penalty_loss", "fvp", "cg", "npg_step", "trpo_step", "pg_gradient",
               "set_params"},
        [n] = {"forward", "backward", "jvp", "value_loss", "value_loss_clipped", "set_params"},
        [o] = {"step"},
      }
      methods[b] = methods[p]
      local seed = 12345
      local function rand(k) -- a small LCG: the same sequence on every binding
        seed = (seed * 1103515245 + 12345) % 2147483648
        return 1 + seed % k
      end
      local calls = 0
      for obj, names in pairs(methods) do
        for _, name in ipairs(names) do
          for _ = 1, 300 do
            local args, k = {}, rand(8) - 1
            for i = 1, k do args[i] = vals[rand(#vals)] end
            local ok, err = pcall(obj[name], obj, unpack_(args, 1, k))
            assert(ok or type(err) == "string", name .. " raised a non-string error")
            calls = calls + 1
          end
        end
      end
      assert.is_true(calls > 10000)
      -- and the objects still work
      assert.is_number((p:act({1, 2, 3, 4})))
      assert.same({1}, n:forward({1, 2, 3, 4}):shape())
    end)

    if _VERSION == "Lua 5.4" and not rawget(_G, "jit") then
      it("closes to-be-closed variables", function()
        local chunk = assert(load([[
          local core = ...
          local q <close> = core.policy{obs_dim = 1, action = {type = "discrete", n = 2}}
          return q
        ]]))
        local q = chunk(core)
        raises(function() q:act({1}) end, "closed")
      end)
    end
  end)
end)
