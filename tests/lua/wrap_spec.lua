-- busted --lua=lua5.4 tests/lua/wrap_spec.lua   (also runs under LuaJIT)
-- The wrappers' arithmetic, on scripted stub envs and the bundled ones.

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local root = here .. "../../"
package.path = root .. "scripts/?.lua;" .. root .. "scripts/?/init.lua;" .. package.path

local wrap = require "moonrl.wrap"
local envs = require "moonrl.envs"

local helper = dofile(here .. "helper.lua")
local core = require "moonrl.core"
local expect_error, near, same_array = helper.raises, helper.near, helper.same_array

-- A scripted env: observations obs_seq[t] (t = 0 after reset), rewards
-- rew_seq[t], terminated at step term_at.
local function stub(obs_seq, rew_seq, term_at)
  local e = {
    id = "Stub", max_episode_steps = 50,
    observation_space = {type = "box", shape = {#obs_seq[1]}, low = {}, high = {}},
    action_space = {type = "box", shape = {1}, low = {-1}, high = {1}},
    actions = {},
  }
  for i = 1, #obs_seq[1] do
    e.observation_space.low[i], e.observation_space.high[i] = -math.huge, math.huge
  end
  function e:reset() self.t = 0 return obs_seq[1], {} end
  function e:set_state(s) return {s[1]} end
  function e:step(a)
    self.t = self.t + 1
    self.actions[#self.actions + 1] = a
    local o = obs_seq[self.t + 1] or obs_seq[#obs_seq]
    return o, rew_seq[self.t] or 0, self.t == term_at, false, {}
  end
  return e
end

-- Observations drawn i.i.d. from N(mean_i, std_i) per dimension.
local function gaussian_env(means, stds, seed)
  local r = envs.rng.new(seed)
  local e = {id = "Gauss", observation_space = {type = "box", shape = {#means}, low = {}, high = {}},
             action_space = {type = "discrete", n = 1}}
  for i = 1, #means do
    e.observation_space.low[i], e.observation_space.high[i] = -math.huge, math.huge
  end
  local function draw()
    local o = {}
    for i = 1, #means do o[i] = r:normal(means[i], stds[i]) end
    return o
  end
  function e:reset() return draw(), {} end
  function e:step() return draw(), 0, false, false, {} end
  return e
end

describe("wrap.potential", function()
  it("adds gamma*phi(s') - phi(s), with phi = 0 after termination", function()
    local phi = function(o) return 10 * o[1] end
    local e = wrap.potential(stub({{1}, {2}, {4}, {7}}, {1, 1, 1}, 3), phi, 0.9)
    e:reset()
    local _, r, term = e:step({0})
    near(r, 1 + 0.9 * 20 - 10)
    _, r = e:step({0})
    near(r, 1 + 0.9 * 40 - 20)
    _, r, term = e:step({0})
    assert.is_true(term)
    near(r, 1 + 0 - 40)
  end)

  it("does not zero phi on truncation", function()
    local e = wrap.potential(wrap.time_limit(stub({{1}, {2}, {3}}, {0, 0}), 2),
                             function(o) return o[1] end, 1.0)
    e:reset()
    e:step({0})
    local _, r, term, trunc = e:step({0})
    assert.is_false(term)
    assert.is_true(trunc)
    near(r, 3 - 2)
  end)

  it("telescopes: the shaped return differs by -phi(s0) when gamma = 1", function()
    local base = envs.load("CartPole-v1")
    local shaped = wrap.potential(envs.load("CartPole-v1"), function(o) return -math.abs(o[3]) end, 1.0)
    local o0 = base:reset(5)
    shaped:reset(5)
    local rb, rs, term = 0, 0, false
    while not term do
      local _, r1, t1 = base:step(1)
      local _, r2 = shaped:step(1)
      rb, rs, term = rb + r1, rs + r2, t1
    end
    near(rs, rb + math.abs(o0[3]), 1e-12)
  end)

  it("checks its arguments and phi's value", function()
    expect_error(function() wrap.potential(envs.load("CartPole-v1"), 3, 0.9) end, "bad argument #2")
    expect_error(function() wrap.potential(envs.load("CartPole-v1"), function() return 0 end, 2) end,
      "bad argument #3", "gamma")
    expect_error(function() wrap.potential({}, function() return 0 end, 0.9) end, "bad argument #1")
    local e = wrap.potential(envs.load("CartPole-v1"), function() return 0 / 0 end, 0.9)
    expect_error(function() e:reset(0) end, "potential phi returned")
  end)
end)

describe("wrap.shape_reward", function()
  it("passes the transition and uses the returned reward", function()
    local seen
    local e = wrap.shape_reward(stub({{1}, {2}}, {5}, 1), function(o, a, r, no, term, trunc, info)
      seen = {o[1], a[1], r, no[1], term, trunc, type(info)}
      return 2 * r
    end)
    e:reset()
    local _, r = e:step({0.5})
    assert.are.equal(10, r)
    same_array(seen, {1, 0.5, 5, 2, true, false, "table"})
  end)

  it("rejects a non-number from the function", function()
    local e = wrap.shape_reward(stub({{1}}, {1}), function() return "x" end)
    e:reset()
    expect_error(function() e:step({0}) end, "shape_reward function returned x")
  end)
end)

describe("RunningMeanStd", function()
  it("merges batches exactly like one pass over all the data", function()
    local data = {}
    local r = envs.rng.new(2)
    for i = 1, 101 do data[i] = {r:normal(1, 2), r:uniform(-3, 3)} end
    local one, parts = wrap.RunningMeanStd.new(2), wrap.RunningMeanStd.new(2)
    one:update_batch(data)
    local a, b = {}, {}
    for i = 1, 101 do if i <= 37 then a[#a + 1] = data[i] else b[#b + 1] = data[i] end end
    parts:update_batch(a)
    for i = 1, #b do parts:update(b[i]) end
    -- the data as the statistics see them (float32), merged into the start
    -- state mean 0, var 1, count 1e-4 by SB3's formula
    local f = {}
    for i = 1, 101 do f[i] = core.tensor(data[i]):totable() end
    for d = 1, 2 do
      local s, s2 = 0, 0
      for i = 1, 101 do s = s + f[i][d] end
      local m = s / 101
      for i = 1, 101 do s2 = s2 + (f[i][d] - m) ^ 2 end
      local tot = 101 + 1e-4
      local mean = m * 101 / tot
      local var = (1e-4 + s2 + m * m * 1e-4 * 101 / tot) / tot
      near(one.mean[d], mean, 1e-12)
      near(one.var[d], var, 1e-12)
      near(parts.mean[d], mean, 1e-12)
      near(parts.var[d], var, 1e-12)
    end
    near(parts.count, 101 + 1e-4, 1e-12)
  end)
end)

describe("wrap.normalize_obs", function()
  it("converges to mean 0, variance 1", function()
    local e = wrap.normalize_obs(gaussian_env({3, -5}, {2, 0.5}, 1))
    e:reset()
    for _ = 1, 5000 do e:step(0) end
    near(e.rms.mean[1], 3, 0.1)
    near(e.rms.mean[2], -5, 0.03)
    near(e.rms.var[1], 4, 0.3)
    near(e.rms.var[2], 0.25, 0.02)
    -- the normalised stream, with statistics frozen, is standardised
    e.training = false
    local n, s, s2 = 4000, {0, 0}, {0, 0}
    for _ = 1, n do
      local o = e:step(0)
      for d = 1, 2 do s[d], s2[d] = s[d] + o[d], s2[d] + o[d] * o[d] end
    end
    for d = 1, 2 do
      near(s[d] / n, 0, 0.06)
      near(s2[d] / n - (s[d] / n) ^ 2, 1, 0.08)
    end
  end)

  it("freezes when not training, saves and restores statistics, clips", function()
    local e = wrap.normalize_obs(gaussian_env({1}, {1}, 3), {clip = 2})
    e:reset()
    for _ = 1, 100 do e:step(0) end
    local st = e:get_stats()
    e.training = false
    for _ = 1, 100 do e:step(0) end
    same_array(e.rms.mean, st.mean)
    assert.are.equal(st.count, e.rms.count)
    local f = wrap.normalize_obs(gaussian_env({1}, {1}, 3), {training = false})
    f:set_stats({mean = {1}, var = {4}, count = 10})
    near(f:normalize({5})[1], (5 - 1) / math.sqrt(4 + 1e-8), 1e-6)  -- float32 rows
    assert.are.equal(2, e:normalize({1e6})[1])
    assert.are.equal(-2, e:normalize({-1e6})[1])
    same_array(e.observation_space.high, {2})
    expect_error(function() f:set_stats({mean = {1, 2}, var = {1}, count = 1}) end, "expected {mean")
  end)
end)

describe("wrap.scale_reward", function()
  it("divides by the running std of the discounted return", function()
    local e = wrap.scale_reward(stub({{0}}, {1, 2, 3, 4}, 3), {gamma = 0.5})
    e:reset()
    -- the same accumulation by hand, with Gymnasium's initial statistics
    local ref = wrap.RunningMeanStd.new(1)
    local g = 0
    local rewards, terms = {1, 2, 3, 4}, {false, false, true, false}
    for t = 1, 4 do
      local _, r = e:step({0})
      g = g * 0.5 * (terms[t] and 0 or 1) + rewards[t]
      ref:update({g})
      near(r, rewards[t] / math.sqrt(ref.var[1] + 1e-8), 1e-12)
    end
    -- termination at t = 3 restarts the sum there (3), then 3*0.5 + 4
    near(e.discounted, 5.5, 1e-12)
  end)

  it("brings rewards to unit scale on a long episode", function()
    local e = wrap.scale_reward(envs.load("Pendulum-v1"), {gamma = 0.99})
    e:reset(0)
    local s2, n = 0, 0
    for t = 1, 3000 do
      local _, r = e:step({0})
      if t > 1000 then s2, n = s2 + r * r, n + 1 end
    end
    -- raw Pendulum costs are up to ~16 per step, returns ~100s; scaled ones are O(0.1)
    assert(math.sqrt(s2 / n) < 1)
    assert(math.sqrt(e.rms.var[1]) > 1)
  end)
end)

describe("wrap.time_limit", function()
  it("truncates at the limit unless the env terminated", function()
    local e = wrap.time_limit(envs.load("MountainCar-v0"), 5)
    assert.are.equal(5, e.max_episode_steps)
    e:reset(0)
    for t = 1, 5 do
      local _, _, term, trunc = e:step(1)
      assert.is_false(term)
      assert.are.equal(t == 5, trunc)
    end
    e:reset()
    local _, _, _, trunc = e:step(1)
    assert.is_false(trunc)
    -- a step that terminates on the limit is terminated, not truncated
    local s = wrap.time_limit(stub({{0}}, {}, 2), 2)
    s:reset()
    s:step({0})
    local _, _, term2, trunc2 = s:step({0})
    assert.is_true(term2)
    assert.is_false(trunc2)
  end)

  it("requires reset before step and a positive integer limit", function()
    local e = wrap.time_limit(envs.load("CartPole-v1"), 3)
    expect_error(function() e:step(0) end, "call reset() before step()")
    expect_error(function() wrap.time_limit(envs.load("CartPole-v1"), 0) end, "positive integer")
    expect_error(function() wrap.time_limit(envs.load("CartPole-v1"), 2.5) end, "positive integer")
  end)
end)

describe("wrap.clip_action", function()
  it("clips box actions into the bounds", function()
    local s = stub({{0}}, {})
    local e = wrap.clip_action(s)
    e:reset()
    e:step({5}); e:step(-3); e:step({0.25})
    same_array(s.actions[1], {1})
    same_array(s.actions[2], {-1})
    same_array(s.actions[3], {0.25})
    -- on Pendulum: torque 7 clipped to 2
    local a, b = wrap.clip_action(envs.load("Pendulum-v1")), envs.load("Pendulum-v1")
    a:reset(1); b:reset(1)
    local oa, ra = a:step({7})
    local ob, rb = b:step({2})
    same_array(oa, ob)
    assert.are.equal(ra, rb)
  end)

  it("refuses discrete envs and malformed actions", function()
    expect_error(function() wrap.clip_action(envs.load("CartPole-v1")) end, "action_space must be a box")
    local e = wrap.clip_action(envs.load("Pendulum-v1"))
    e:reset(0)
    expect_error(function() e:step({1, 2}) end, "array of 1 numbers")
    expect_error(function() e:step({0 / 0}) end, "action[1]")
  end)
end)

describe("wrap.frame_stack", function()
  it("concatenates the last k observations, oldest first", function()
    local e = wrap.frame_stack(stub({{1, 10}, {2, 20}, {3, 30}, {4, 40}}, {}), 3)
    assert.are.equal(6, e.observation_space.shape[1])
    assert.are.equal(6, #e.observation_space.low)
    same_array(e:reset(), {1, 10, 1, 10, 1, 10})
    same_array(e:step({0}), {1, 10, 1, 10, 2, 20})
    same_array(e:step({0}), {1, 10, 2, 20, 3, 30})
    same_array(e:step({0}), {2, 20, 3, 30, 4, 40})
    same_array(e:reset(), {1, 10, 1, 10, 1, 10})
  end)

  it("stacks a real env's observations and bounds", function()
    local e = wrap.frame_stack(envs.load("CartPole-v1"), 4)
    local o = e:reset(0)
    assert.are.equal(16, #o)
    near(e.observation_space.high[5], 4.8)
    local o2 = e:step(1)
    for i = 1, 12 do assert.are.equal(o[i + 4], o2[i]) end
    same_array(e:set_state({0, 0, 0, 0}), {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
  end)
end)

describe("nesting", function()
  it("forwards spaces, id, unwrapped and set_state through layers", function()
    local base = envs.load("Pendulum-v1")
    local e = wrap.time_limit(wrap.clip_action(wrap.normalize_obs(base)), 7)
    assert.are.equal(base, e.unwrapped)
    assert.are.equal("Pendulum-v1", e.id)
    assert.are.equal(base.action_space, e.action_space)
    assert.are.equal(10, e.observation_space.high[1])
    assert.are.equal(7, e.max_episode_steps)
    e:reset(0)
    local o = e:set_state({0, 0})
    assert.are.equal(3, #o)
    near(base.state[1], 0)
    local n, trunc = 0, false
    while not trunc do
      local _
      _, _, _, trunc = e:step({9})
      n = n + 1
    end
    assert.are.equal(7, n)
  end)
end)
