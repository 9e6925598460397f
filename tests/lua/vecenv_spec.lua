-- tests/lua/vecenv_spec.lua — the vectorised env engine (moonrl.core.vecenv,
-- moonrl.vec): shapes, auto-reset, time limits, determinism across thread
-- counts, inline envs, rollouts, and the errors a misbehaving env script
-- raises.  Fixtures: tests/lua/fixtures/vec_*.lua.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local core = require "moonrl.core"
local raises = H.raises

if type(core.vecenv) ~= "function" then
  describe("moonrl.vec", function()
    pending("this binding of moonrl.core has no vecenv")
  end)
  return
end

local vec = require "moonrl.vec"
local FIX = H.root .. "tests/lua/fixtures/"
local COUNTER = FIX .. "vec_counter.lua"

-- Plain copies of tensors, for bit-for-bit comparisons.
local function rows(t)
  local out = {}
  for i = 1, #t do
    local r = t[i]
    if type(r) == "number" then out[i] = r else out[i] = r:totable() end
  end
  return out
end

local function stepper(n, k)
  -- a fixed pseudo-random action pattern for env i at step t
  local a = {}
  for i = 1, n do a[i] = ((i * 7 + k * 3) % 5 < 2) and 1 or 0 end
  return a
end

local function trajectory(opts, steps)
  local v = vec.make("CartPole-v1", opts)
  local seq = {rows(v:reset())}
  for t = 1, steps do
    local obs, rew, term, trunc = v:step(stepper(v.num_envs, t))
    seq[#seq + 1] = {rows(obs), rows(rew), rows(term), rows(trunc), rows(v:final_obs())}
  end
  v:close()
  return seq
end

describe("moonrl.vec", function()
  it("has the shapes of the env", function()
    local v = vec.make("CartPole-v1", {num_envs = 4, threads = 2, seed = 1})
    assert.equal(4, v.num_envs)
    assert.equal(4, v.obs_dim)
    -- worker threads under both VMs (LuaJIT: libmoonrl_luajit.so)
    local threads = 2
    assert.equal(threads, v.threads)
    assert.equal(500, v.max_episode_steps)
    assert.same({type = "discrete", n = 2}, v.action_space)
    assert.equal("box", v.observation_space.type)
    local obs = v:reset()
    assert.same({4, 4}, obs:shape())
    local o, r, te, tr = v:step({0, 1, 0, 1})
    assert.same({4, 4}, o:shape())
    assert.same({4}, r:shape())
    assert.same({4}, te:shape())
    assert.same({4}, tr:shape())
    assert.equal(1, r[1])
    assert.equal(4, v:total_steps())
    assert.matches("CartPole%-v1, 4 envs, " .. (threads > 0 and threads .. " threads" or "calling thread"), tostring(v))
    v:close()
    assert.matches("closed", tostring(v))
    raises(function() v:step({0, 0, 0, 0}) end, "closed")
    raises(function() return o[1][1] end, "closed")
  end)

  it("auto-resets ended envs, keeping the final observation", function()
    local v = vec.make(COUNTER, {num_envs = 3, seed = 10, config = {term_at = 3}})
    v:reset()
    local obs, rew, term, trunc
    for _ = 1, 3 do obs, rew, term, trunc = v:step({0, 1, 2}) end
    for i = 1, 3 do
      assert.equal(1, term[i])
      assert.equal(0, trunc[i])
      assert.same({0, 9 + i, 1}, obs[i]:totable())           -- the new episode
      assert.same({3, 9 + i, 0}, v:final_obs()[i]:totable())  -- the true last obs
    end
    local eps = v:episodes()
    assert.equal(3, #eps)
    for i = 1, 3 do
      assert.equal(3, eps[i].length)
      assert.equal(3 * (i - 1), eps[i]["return"])
    end
    assert.same({}, v:episodes())
    v:close()
  end)

  it("truncates CartPole at its registered limit of 500 steps", function()
    local v = vec.make("CartPole-v1", {num_envs = 2, threads = 1, seed = 3})
    local obs = v:reset()
    local ended_at = {}
    for t = 1, 520 do
      local a = {}
      for i = 1, 2 do   -- a balancing controller that survives 500 steps
        a[i] = (obs[i][3] + 0.5 * obs[i][4] + 0.05 * obs[i][2] + 0.01 * obs[i][1] > 0) and 1 or 0
      end
      local o, _, term, trunc = v:step(a)
      obs = o
      for i = 1, 2 do
        assert.equal(0, term[i])
        if trunc[i] == 1 then ended_at[i] = ended_at[i] or t end
      end
    end
    assert.same({500, 500}, ended_at)
    local eps = v:episodes()
    assert.equal(2, #eps)
    assert.equal(500, eps[1].length)
    assert.equal(500, eps[1]["return"])
    v:close()
  end)

  it("takes max_episode_steps as an override, false for none", function()
    local v = vec.make(COUNTER, {num_envs = 2, max_episode_steps = 4})
    v:reset()
    local term, trunc
    for _ = 1, 4 do _, _, term, trunc = v:step({1, 1}) end
    assert.equal(1, trunc[1])
    assert.equal(0, term[1])
    assert.equal(4, v:final_obs()[1][1])
    v:close()
    local w = vec.make("CartPole-v1", {max_episode_steps = false})
    assert.is_nil(w.max_episode_steps)
    w:close()
    raises(function() vec.make(COUNTER, {max_episode_steps = 0}) end, "max_episode_steps")
  end)

  it("is deterministic: same seed, same run, whatever the thread count", function()
    local a = trajectory({num_envs = 6, threads = 2, seed = 5}, 60)
    local b = trajectory({num_envs = 6, threads = 2, seed = 5}, 60)
    local c = trajectory({num_envs = 6, threads = 1, seed = 5}, 60)
    local d = trajectory({num_envs = 6, threads = 0, seed = 5}, 60)
    local e = trajectory({num_envs = 6, threads = 3, seed = 5}, 60)
    assert.same(a, b)
    assert.same(a, c)
    assert.same(a, d)
    assert.same(a, e)
    local f = trajectory({num_envs = 6, threads = 2, seed = 6}, 60)
    assert.are_not.same(a, f)
  end)

  it("seeds env i with seed + i and gives seedless resets fresh seeds", function()
    local v = vec.make(COUNTER, {num_envs = 2, seed = 40})
    local o = v:reset()
    assert.equal(40, o[1][2])
    assert.equal(41, o[2][2])
    o = v:reset()
    assert.equal(42, o[1][2])
    o = v:reset(7)
    assert.equal(8, o[2][2])
    v:close()
  end)

  it("runs an inline env table in the caller's state, clipping box actions", function()
    local Box = {}
    Box.__index = Box
    Box.observation_space = {type = "box", shape = {2}, low = {-10, -10}, high = {10, 10}}
    Box.action_space = {type = "box", shape = {2}, low = {-1, 0}, high = {1, 0.5}}
    Box.max_episode_steps = 3
    local calls = 0
    function Box.new(config) return setmetatable({scale = config.scale}, Box) end
    function Box:reset(seed) self.seed = seed or self.seed; return {0, 0}, {} end
    function Box:step(a)
      calls = calls + 1
      return {a[1] * self.scale, a[2] * self.scale}, 0.5, false, false, {}
    end
    local v = vec.make(Box, {num_envs = 2, config = {scale = 2}})
    assert.equal(2, v.action_width)
    v:reset(0)
    local obs = v:step({{-5, 0.25}, {3, 9}})
    assert.same({-2, 0.5}, obs[1]:totable())
    assert.same({2, 1}, obs[2]:totable())
    assert.equal(2, calls)             -- ran here, in this state
    v:step({{0, 0}, {0, 0}})
    local _, _, _, trunc = v:step({{0, 0}, {0, 0}})
    assert.same({1, 1}, trunc:totable())  -- the class's time limit applies
    v:close()

    -- an env object (no new) backs one env only
    local obj = Box.new({scale = 1})
    local w = vec.make(obj, {num_envs = 1})
    w:reset(1)
    assert.same({1, 0}, w:step({{1, 0}})[1]:totable())
    w:close()
    raises(function() vec.make(obj, {num_envs = 2}) end, "num_envs = 1")
  end)

  it("collects a rollout with a policy and a value net", function()
    local v = vec.make("CartPole-v1", {num_envs = 4, threads = 2, seed = 2})
    local pol = core.policy{obs_dim = 4, hidden = {16}, action = {type = "discrete", n = 2}, seed = 1}
    local val = core.net{in_dim = 4, hidden = {16}, out_dim = 1, seed = 2}
    local r = v:rollout(32)
    assert.equal(32, r:steps())
    assert.equal(4, r:num_envs())
    v:collect(r, pol, val)
    assert.same({32, 4, 4}, r:field("obs"):shape())
    assert.same({32, 4, 1}, r:field("actions"):shape())
    assert.same({32, 4}, r:field("terminated"):shape())
    assert.equal(128, r:field("rewards"):sum())
    assert.equal(128, v:total_steps())
    r:gae(0.99, 0.95)
    local adv, ret, vals = r:field("advantages"), r:field("returns"), r:field("values")
    assert.is_true(H.close(ret[1][1], adv[1][1] + vals[1][1], 1e-5))
    -- terminated steps do not bootstrap
    local term, nv = r:field("terminated"), r:field("next_values")
    for t = 1, 32 do
      for i = 1, 4 do
        if term[t][i] == 1 then assert.equal(0, nv[t][i]) end
      end
    end
    -- the same seeds collect the same rollout
    local v2 = vec.make("CartPole-v1", {num_envs = 4, threads = 0, seed = 2})
    local pol2 = core.policy{obs_dim = 4, hidden = {16}, action = {type = "discrete", n = 2}, seed = 1}
    local r2 = v2:rollout(32)
    v2:collect(r2, pol2, nil)
    assert.same(r:field("actions"):totable(), r2:field("actions"):totable())
    assert.same(r:field("obs"):totable(), r2:field("obs"):totable())
    raises(function() v:collect(r, core.policy{obs_dim = 3, action = {type = "discrete", n = 2}}) end,
           "does not fit")
    raises(function() v:collect(r, "policy") end, "moonrl.Policy")
    r:close()
    raises(function() r:steps() end, "closed")
    v:close()
    v2:close()
  end)

  describe("errors name the env and the copy, and the process survives", function()
    local function check(fail, threads, ...)
      local v = vec.make(COUNTER, {num_envs = 4, threads = threads, seed = 10, budget = 100000,
                                   config = {fail = fail, fail_seed = 13, fail_step = 2}})
      v:reset()
      v:step({0, 0, 0, 0})
      raises(function() v:step({0, 1, 2, 0}) end, "env 'vec_counter' copy 3: ", ...)
      -- the batch is left needing a reset, and says so
      raises(function() v:step({0, 0, 0, 0}) end, "reset")
      v:reset(10)
      v:step({0, 0, 0, 0})
      raises(function() v:step({0, 0, 0, 0}) end, "copy 3")
      v:close()
      v:close()  -- idempotent
    end
    for _, threads in ipairs({0, 2}) do
      it("a runtime error in the script (threads = " .. threads .. ")", function()
        check("error", threads, "vec_counter.lua:", "deliberate failure")
      end)
      it("a wrong return shape (threads = " .. threads .. ")", function()
        check("shape", threads, "obs of length 2 (expected 3)")
      end)
      it("a NaN observation (threads = " .. threads .. ")", function()
        check("nan", threads, "non-finite obs[1] = NaN")
      end)
      it("a reward that is not a number (threads = " .. threads .. ")", function()
        check("reward", threads, "reward of type string")
      end)
      it("an infinite loop stopped by the instruction budget (threads = " .. threads .. ")", function()
        check("loop", threads, "instruction budget of 100000 exceeded")
      end)
      it("a loop that catches the budget error with pcall (threads = " .. threads .. ")", function()
        check("sneaky", threads, "instruction budget of 100000 exceeded")
      end)
    end

    it("a missing env or a bad config fails at creation", function()
      raises(function() vec.make("NoSuchEnv-v0", {num_envs = 2}) end, "NoSuchEnv-v0")
      raises(function() vec.make(COUNTER, {config = {f = print}}) end, "config", "function")
      raises(function() vec.make(42) end, "bad argument #1")
    end)

    it("an error in an inline env leaves the caller's state usable", function()
      local Bad = {observation_space = {type = "box", shape = {1}}, action_space = {type = "discrete", n = 2}}
      Bad.__index = Bad
      function Bad.new() return setmetatable({}, Bad) end
      function Bad:reset() return {0} end
      function Bad:step() error("inline boom") end
      local v = vec.make(Bad, {num_envs = 2})
      v:reset()
      raises(function() v:step({0, 1}) end, "copy 0", "inline boom")
      v:close()
      local Loop = setmetatable({}, {__index = Bad})
      Loop.__index = Loop
      function Loop.new() return setmetatable({}, Loop) end
      function Loop:step() while true do end end
      local w = vec.make(Loop, {num_envs = 1, budget = 5000})
      w:reset()
      raises(function() w:step({1}) end, "instruction budget of 5000 exceeded")
      w:close()
      assert.equal(4, 2 + 2)
    end)
  end)
end)
