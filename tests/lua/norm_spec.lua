-- tests/lua/norm_spec.lua — core.rms, core.reward_norm and
-- core.rollout_set_norm (docs/CORE_API.md, "Normalisation"): the same
-- results and errors under both bindings, collect normalising in C, and a
-- normaliser closed while a rollout uses it.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local core = require "moonrl.core"
local raises = H.raises

local function near(a, b, tol)
  assert(math.abs(a - b) <= tol, ("expected %.17g, got %.17g"):format(b, a))
end

describe("core.rms", function()
  it("merges batches as SB3's RunningMeanStd and normalises", function()
    local s = core.rms(1)
    assert.are.equal(1, s:dim())
    assert.are.same({mean = {0}, var = {1}, count = 1e-4}, s:state())
    s:update({{1}, {3}})
    local tot = 2.0001
    local m, v = 4 / tot, (1e-4 + 2 + 4 * 1e-4 * 2 / tot) / tot
    local st = s:state()
    near(st.mean[1], m, 1e-15)
    near(st.var[1], v, 1e-15)
    assert.are.equal(tot, s:count())
    local y = s:normalize({{5}, {-1e6}}, 10, 1e-8)
    near(y[1][1], (5 - m) / math.sqrt(v + 1e-8), 1e-6)
    assert.are.equal(-10, y[2][1])
    -- one row in, one row out
    local z = s:normalize({5})
    assert.are.equal(1, #z:totable())
    assert.matches("RunningMeanStd %(dim 1", tostring(s))
    s:close()
    assert.matches("closed", tostring(s))
    raises(function() s:update({1}) end, "closed moonrl.RunningMeanStd")
  end)

  it("restores a state exactly and refuses hostile ones, changing nothing", function()
    local s = core.rms(2)
    s:update({{0.1, 7}, {0.3, -2}, {1e-3, 5}})
    local st = s:state()
    local t = core.rms(2)
    t:set_state(st)
    assert.are.same(st, t:state())
    raises(function() t:set_state({mean = {0 / 0, 1}, var = {1, 1}, count = 1}) end, "finite")
    raises(function() t:set_state({mean = {0, 1}, var = {1, -1}, count = 1}) end, "var >= 0")
    raises(function() t:set_state({mean = {0, 1}, var = {1, 1}, count = 0}) end, "count 0")
    raises(function() t:set_state({mean = {0, 1}, var = {1, 1}, count = 1 / 0}) end, "count")
    raises(function() t:set_state({mean = {0}, var = {1, 1}, count = 1}) end, "mean")
    raises(function() t:set_state(5) end, "table")
    assert.are.same(st, t:state())
    raises(function() t:update({{1, 0 / 0}}) end, "")
    raises(function() t:update({1, 2, 3}) end, "")
    raises(function() t:normalize({1, 2}, 0) end, "#2")
    raises(function() core.rms(0) end, "#1")
    t:reset()
    assert.are.same({mean = {0, 0}, var = {1, 1}, count = 1e-4}, t:state())
    s:close()
    t:close()
  end)
end)

describe("core.reward_norm", function()
  it("is VecNormalize's reward normalisation, and freezes with update = false", function()
    local rn = core.reward_norm(2)
    assert.are.equal(2, rn:num_envs())
    local tot = 2.0001
    local v = (1e-4 + 2 + 4 * 1e-4 * 2 / tot) / tot
    local o = rn:step({1, 3}, {false, true}, 0.5, 10, 1e-8)
    near(o[1], 1 / math.sqrt(v + 1e-8), 1e-6)
    near(o[2], 3 / math.sqrt(v + 1e-8), 1e-6)
    local st = rn:state()
    assert.are.same({1, 0}, st.ret)
    assert.are.equal(tot, st.count)
    o = rn:step({2, 4}, {0, 0}, 0.5, 0.5, 1e-8, false)
    assert.are.same({0.5, 0.5}, o:totable())
    assert.are.same(st, rn:state())
    local copy = core.reward_norm(2)
    copy:set_state(st)
    assert.are.same(st, copy:state())
    copy:set_state({mean = st.mean, var = st.var, count = st.count})
    assert.are.same({0, 0}, copy:state().ret)
    raises(function() copy:set_state({mean = 0, var = 1, count = 1, ret = {1, 0 / 0}}) end, "ret")
    assert.are.same({0, 0}, copy:state().ret)
    raises(function() rn:step({1, 0 / 0}, {0, 0}) end, "")
    raises(function() rn:step({1, 1}, {0, 0}, 2) end, "#3")
    rn:reset_returns()
    assert.are.same({0, 0}, rn:state().ret)
    rn:close()
    copy:close()
  end)
end)

describe("core.rollout_set_norm", function()
  local function setup()
    local env = require("moonrl.vec").make("Pendulum-v1", {num_envs = 2, seed = 3})
    local ro = env:rollout(8)
    local pol = core.policy{obs_dim = 3, hidden = {8},
                            action = {type = "box", n = 1, low = {-2}, high = {2}}, seed = 1}
    local val = core.net{in_dim = 3, hidden = {8}, out_dim = 1, seed = 2}
    return env, ro, pol, val
  end

  it("makes collect normalise in C, as the handles replay it", function()
    local env, ro, pol, val = setup()
    local rms, rn = core.rms(3), core.reward_norm(2)
    core.rollout_set_norm(ro, {obs = rms, reward = rn, clip_obs = 5, gamma = 0.9})
    env:collect(ro, pol, val)
    assert.are.equal(16 + 1e-4, rms:count())
    assert.are.equal(16 + 1e-4, rn:state().count)
    local obs = ro:field("obs"):reshape(48)
    for i = 1, 48 do assert.is_true(math.abs(obs[i]) <= 5) end
    -- frozen: nothing merged
    core.rollout_set_norm(ro, {obs = rms, reward = rn, update = false})
    env:collect(ro, pol, val)
    assert.are.equal(16 + 1e-4, rms:count())
    assert.are.equal(16 + 1e-4, rn:state().count)
    -- closing a normaliser detaches it; the rollout collects raw after
    rms:close()
    env:collect(ro, pol, val)
    local raw = ro:field("obs"):reshape(48)
    local big = 0
    for i = 1, 48 do if math.abs(raw[i]) > 1.0001 then big = big + 1 end end
    assert.is_true(big > 0)   -- Pendulum's angular velocity, unnormalised
    rn:close()
    env:collect(ro, pol, val)
    core.rollout_set_norm(ro, nil)
    raises(function() core.rollout_set_norm(ro, {obs = core.rms(4)}) end, "dim 4")
    raises(function() core.rollout_set_norm(5, {}) end, "Rollout")
    raises(function() core.rollout_set_norm(ro, {obs = core.rms(3), clip_obs = -1}) end, "clip")
    ro:close()
    env:close()
    pol:close()
    val:close()
  end)
end)
