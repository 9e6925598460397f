-- busted --lua=lua5.4 tests/lua/envs_spec.lua   (also runs under LuaJIT)
-- The env loader, its sandbox and checks, the spaces helpers, the
-- generator, and the behaviour of every bundled env.

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local root = here .. "../../"
package.path = root .. "scripts/?.lua;" .. root .. "scripts/?/init.lua;" .. package.path

local envs = require "moonrl.envs"
local spaces = require "moonrl.spaces"

local FIX = here .. "fixtures/"
local ALL = {"CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0",
             "MountainCarContinuous-v0", "GridWorld", "Bandit", "InvalidAction-v0"}
-- (the other game envs of issue 15, with multi-discrete, hybrid or grid
-- spaces, are played in game_envs_spec.lua until the loader takes those)

local helper = dofile(here .. "helper.lua")
local expect_error, near, same_array = helper.raises, helper.near, helper.same_array

describe("rng", function()
  it("is deterministic per seed and the same on every interpreter", function()
    -- fixed values: the same under Lua 5.4 and LuaJIT (exact double arithmetic)
    near(envs.rng.new(0):random(), 0.14471761229097, 1e-13)
    near(envs.rng.new(1):random(), 0.80492660510902, 1e-13)
    local a, b = envs.rng.new(123), envs.rng.new(123)
    for _ = 1, 100 do assert.are.equal(a:random(), b:random()) end
    assert.are_not.equal(envs.rng.new(1):random(), envs.rng.new(2):random())
  end)

  it("draws uniforms in [0, 1) with the right moments", function()
    local r = envs.rng.new(5)
    local n, s, s2 = 20000, 0, 0
    for _ = 1, n do
      local u = r:random()
      assert(u >= 0 and u < 1)
      s, s2 = s + u, s2 + u * u
    end
    near(s / n, 0.5, 0.01)
    near(s2 / n - (s / n) ^ 2, 1 / 12, 0.003)
  end)

  it("draws normals with mean and std, integers in range", function()
    local r = envs.rng.new(9)
    local n, s, s2 = 20000, 0, 0
    for _ = 1, n do
      local z = r:normal(2, 3)
      s, s2 = s + z, s2 + z * z
    end
    near(s / n, 2, 0.1)
    near(math.sqrt(s2 / n - (s / n) ^ 2), 3, 0.1)
    local seen = {}
    for _ = 1, 1000 do
      local k = r:integer(4)
      assert(k >= 0 and k < 4 and k == math.floor(k))
      seen[k] = true
    end
    for k = 0, 3 do assert.is_true(seen[k]) end
  end)

  it("saves and restores its state", function()
    local r = envs.rng.new(3)
    r:random()
    local st = r:get_state()
    local x1, x2 = r:random(), r:normal()
    r:set_state(st)
    assert.are.equal(x1, r:random())
    assert.are.equal(x2, r:normal())
  end)

  it("rejects a non-finite seed", function()
    expect_error(function() envs.rng.new(0 / 0) end, "seed must be a finite number")
  end)
end)

describe("spaces", function()
  it("builds and validates discrete and box spaces", function()
    local d = spaces.discrete(3)
    assert.is_true(spaces.validate(d))
    assert.are.equal(1, spaces.flat_size(d))
    assert.are.equal("Discrete(3)", spaces.describe(d))
    local b = spaces.box({2, 3}, -1, {1, 2, 3, 4, 5, 6})
    assert.are.equal(6, spaces.flat_size(b))
    assert.are.equal(-1, b.low[6])
    assert.are.equal("Box(-2, 2, (1,))", spaces.describe(spaces.box(1, -2, 2)))
    expect_error(function() spaces.discrete(0) end, "n must be a positive integer")
    expect_error(function() spaces.box(2, {0}, 1) end, "low must be a number or a list of 2 numbers")
    expect_error(function() spaces.box(1, 1, 0) end, "exceeds high")
    local ok, err = spaces.validate({type = "box", shape = {2}, low = {0, 0}})
    assert.is_false(ok)
    assert.truthy(err:find("needs high", 1, true))
    ok, err = spaces.validate({type = "multibinary"})
    assert.is_false(ok)
    assert.truthy(err:find("discrete", 1, true))
  end)

  it("tests membership", function()
    local d = spaces.discrete(2)
    assert.is_true(spaces.contains(d, 0))
    assert.is_true(spaces.contains(d, 1.0))
    assert.is_false(spaces.contains(d, 2))
    assert.is_false(spaces.contains(d, 0.5))
    local b = spaces.box(2, {-1, 0}, {1, 5})
    assert.is_true(spaces.contains(b, {0, 5}))
    assert.is_false(spaces.contains(b, {0, 6}))
    assert.is_false(spaces.contains(b, {0}))
    assert.is_false(spaces.contains(b, {0, 0 / 0}))
    assert.is_true(spaces.contains(spaces.box(1, -2, 2), 1.5))
  end)

  it("samples inside the space, also with infinite bounds", function()
    local r = envs.rng.new(1)
    local b = spaces.box(4, {-1, 0, -math.huge, -math.huge}, {1, math.huge, 3, math.huge})
    for _ = 1, 500 do
      assert.is_true(spaces.contains(b, spaces.sample(b, r)))
      assert.is_true(spaces.contains(spaces.discrete(5), spaces.sample(spaces.discrete(5), r)))
    end
  end)
end)

describe("envs.load", function()
  it("finds every bundled env by id, with well-formed spaces", function()
    local expect = {
      ["CartPole-v1"] = {4, "discrete", 2, 500},
      ["Acrobot-v1"] = {6, "discrete", 3, 500},
      ["Pendulum-v1"] = {3, "box", 1, 200},
      ["MountainCar-v0"] = {2, "discrete", 3, 200},
      ["MountainCarContinuous-v0"] = {2, "box", 1, 999},
      ["GridWorld"] = {25, "discrete", 4, 100},
      ["Bandit"] = {1, "discrete", 5, 1},
      ["InvalidAction-v0"] = {100, "discrete", 50, nil},
    }
    for _, id in ipairs(ALL) do
      local e = envs.load(id)
      local x = expect[id]
      assert.are.equal(id, e.id)
      assert.is_true(spaces.validate(e.observation_space))
      assert.is_true(spaces.validate(e.action_space))
      assert.are.equal(x[1], spaces.flat_size(e.observation_space))
      assert.are.equal(x[2], e.action_space.type)
      assert.are.equal(x[3], e.action_space.type == "discrete" and e.action_space.n
                                 or spaces.flat_size(e.action_space))
      assert.are.equal(x[4], e.max_episode_steps)
    end
  end)

  it("has Gymnasium's bounds", function()
    local cp = envs.load("CartPole-v1").observation_space
    near(cp.high[1], 4.8)
    near(cp.high[3], 2 * (12 * 2 * math.pi / 360))   -- twice the 12-degree threshold
    local ac = envs.load("Acrobot-v1").observation_space
    near(ac.high[5], 4 * math.pi)
    near(ac.high[6], 9 * math.pi)
    local pe = envs.load("Pendulum-v1")
    same_array(pe.observation_space.high, {1, 1, 8})
    same_array(pe.action_space.low, {-2})
    local mc = envs.load("MountainCarContinuous-v0")
    same_array(mc.observation_space.low, {-1.2, -0.07})
    same_array(mc.action_space.high, {1})
  end)

  it("loads a path ending in .lua and ids from opts.env_path", function()
    local e = envs.load(FIX .. "Counter.lua", {n = 2})
    assert.are.equal("Counter", e.id)
    e = envs.load("Counter", {n = 2}, {env_path = {"/nonexistent", FIX}})
    assert.are.equal(2, e.n)
    e = envs.load("Counter", nil, {env_path = "/nonexistent:" .. FIX})
    assert.are.equal(3, e.n)
    e:reset(0)
    local _, r, term = e:step(1)
    assert.are.equal(1.0, r)
    assert.is_false(term)
  end)

  it("searches $MOONRL_ENV_PATH (colon-separated)", function()
    -- os.setenv does not exist: check it in a child interpreter
    local st = os.execute("command -v lua5.4 >/dev/null 2>&1")
    if not io.popen or not (st == true or st == 0) then   -- 5.4 gives true, 5.1 gives 0
      pending("needs lua5.4 on PATH and io.popen")
      return
    end
    local code = "package.path = '" .. root .. "scripts/?.lua;' .. package.path "
      .. "local e = require('moonrl.envs').load('Counter', {n = 4}) io.write(e.id, ' ', e.n)"
    local p = io.popen("MOONRL_ENV_PATH=/nonexistent:" .. FIX .. " lua5.4 -e \"" .. code .. "\" 2>&1")
    local out = p:read("*a")
    p:close()
    assert.are.equal("Counter 4", out)
  end)

  it("runs env files in a sandbox", function()
    local e = envs.load(FIX .. "Counter.lua")
    assert.is_true(e.sandboxed)   -- no math.random, no io inside
    expect_error(function() envs.load(FIX .. "uses_os.lua") end,
      "uses_os.lua", "raised while loading", "os")
    local senv = envs.sandbox_env()
    assert.is_nil(senv.os)
    assert.is_nil(senv.io)
    assert.is_nil(senv.require)
    -- load is offered, text only, and its chunks run in the sandbox
    assert.is_nil((senv.load(string.dump(function() end))))
    assert.is_nil(senv.load("return os")())
    assert.is_nil(senv.string.dump)
    assert.is_function(senv.rng.new)
    -- a fresh copy each time: one script cannot change another's math
    senv.math.sin = nil
    assert.is_function(envs.sandbox_env().math.sin)
  end)

  it("refuses binary chunks", function()
    local path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "wb"))
    f:write(string.dump(function() return {} end))
    f:close()
    local err = expect_error(function() envs.load(path) end, "cannot load env", path)
    os.remove(path)
    assert.truthy(err:find("binary", 1, true) or err:find("mode", 1, true))
  end)

  it("reports unknown ids and bad ids", function()
    expect_error(function() envs.load("NoSuchEnv-v0") end, "unknown env 'NoSuchEnv-v0'", "searched:")
    expect_error(function() envs.load("../etc/passwd") end, "bad env id")
    expect_error(function() envs.load(FIX .. "absent.lua") end, "env file not found")
    expect_error(function() envs.load(42) end, "env id must be a non-empty string")
  end)

  it("names the file and the problem for bad env files", function()
    expect_error(function() envs.load(FIX .. "bad_syntax.lua") end,
      "cannot load env", "bad_syntax.lua")
    expect_error(function() envs.load(FIX .. "missing_step.lua") end,
      "missing_step.lua", "Env.step must be a function")
    expect_error(function() envs.load(FIX .. "returns_nothing.lua") end,
      "returns_nothing.lua", "must return the Env table")
    expect_error(function() envs.load(FIX .. "bad_space.lua") end,
      "bad_space.lua", "observation_space", "low")
    expect_error(function() envs.load(FIX .. "wrong_shape.lua") end,
      "wrong_shape.lua", "step returned reward of type boolean")
    expect_error(function() envs.load(FIX .. "nan_obs.lua") end,
      "nan_obs.lua", "non-finite obs[2]")
  end)

  it("can skip the load-time probe", function()
    local e = envs.load(FIX .. "nan_obs.lua", nil, {probe = false})
    e:reset()
    local o, r, term, trunc = e:step(0)
    expect_error(function() envs.check_step_result("nan_obs", o, r, term, trunc) end,
      "nan_obs: step returned non-finite obs[2]")
  end)

  it("make applies the registered time limit", function()
    local e = envs.make("MountainCar-v0")
    assert.are.equal(200, e.max_episode_steps)
    e:reset(1)
    local n, trunc, term = 0, false, false
    while not (trunc or term) do
      local _
      _, _, term, trunc = e:step(1)
      n = n + 1
    end
    assert.are.equal(200, n)
    assert.is_true(trunc)
    assert.is_false(term)
    local bare = envs.make("MountainCar-v0", nil, {max_episode_steps = false})
    assert.is_nil(bare.env)
  end)
end)

describe("envs.check_step_result", function()
  it("accepts a well-formed result", function()
    envs.check_step_result("X", {1, 2}, 0.5, false, true, 2)
  end)
  it("names the env and the field", function()
    expect_error(function() envs.check_step_result("Foo-v0", 3, 0, false, false) end,
      "Foo-v0", "obs of type number")
    expect_error(function() envs.check_step_result("Foo-v0", {1, "a"}, 0, false, false) end,
      "Foo-v0", "obs[2] of type string")
    expect_error(function() envs.check_step_result("Foo-v0", {1}, 0, false, false, 2) end,
      "obs of length 1 (expected 2)")
    expect_error(function() envs.check_step_result("Foo-v0", {1, 1 / 0}, 0, false, false) end,
      "non-finite obs[2] = inf")
    expect_error(function() envs.check_step_result("Foo-v0", {1}, "1", false, false) end,
      "reward of type string")
    expect_error(function() envs.check_step_result("Foo-v0", {1}, 0 / 0, false, false) end,
      "Foo-v0: step returned non-finite reward")
    expect_error(function() envs.check_step_result("Foo-v0", {1}, 1, nil, false) end,
      "terminated of type nil")
    expect_error(function() envs.check_step_result("Foo-v0", {1}, 1, false, 0) end,
      "truncated of type number")
  end)
end)

describe("every env", function()
  for _, id in ipairs(ALL) do
    describe(id, function()
      it("resets deterministically by seed and continues with reset()", function()
        local a, b = envs.load(id), envs.load(id)
        same_array(a:reset(7), b:reset(7))
        same_array(a:reset(), b:reset())
        -- a seeded reset restarts the stream
        local c = envs.load(id)
        c:reset(7)
        same_array(c:reset(7), a:reset(7))
      end)

      it("returns obs, reward, terminated, truncated, info of the right types", function()
        local e = envs.load(id)
        local dim = spaces.flat_size(e.observation_space)
        local obs, info = e:reset(3)
        envs.check_reset_result(id, obs, info, dim)
        assert.is_table(info)
        local r = envs.rng.new(11)
        for _ = 1, 30 do
          local o, rew, term, trunc, inf = e:step(spaces.sample(e.action_space, r))
          envs.check_step_result(id, o, rew, term, trunc, dim)
          assert.is_false(trunc)   -- envs apply no time limit themselves
          assert.is_table(inf)
          if term then e:reset() end
        end
      end)

      it("rejects an invalid action with the env's name", function()
        local e = envs.load(id)
        e:reset(0)
        local bad = e.action_space.type == "discrete" and e.action_space.n or "x"
        expect_error(function() e:step(bad) end, id, "invalid action")
      end)
    end)
  end

  it("accept a float action with an integral value", function()
    for _, id in ipairs({"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "GridWorld", "Bandit"}) do
      local a, b = envs.load(id), envs.load(id)
      a:reset(1); b:reset(1)
      local oa, ra = a:step(1)
      local ob, rb = b:step(1.0)
      same_array(oa, ob)
      assert.are.equal(ra, rb)
    end
  end)

  it("sample initial states in Gymnasium's ranges", function()
    local cp, ac, pe, mc = envs.load("CartPole-v1"), envs.load("Acrobot-v1"),
      envs.load("Pendulum-v1"), envs.load("MountainCar-v0")
    for s = 1, 50 do
      local o = cp:reset(s)
      for i = 1, 4 do assert(o[i] >= -0.05 and o[i] <= 0.05) end
      ac:reset(s)
      for i = 1, 4 do assert(math.abs(ac.state[i]) <= 0.1) end
      pe:reset(s)
      assert(math.abs(pe.state[1]) <= math.pi and math.abs(pe.state[2]) <= 1)
      o = mc:reset(s)
      assert(o[1] >= -0.6 and o[1] <= -0.4 and o[2] == 0)
    end
  end)
end)

describe("dynamics", function()
  it("CartPole: one euler step from rest, pushing right", function()
    local e = envs.load("CartPole-v1")
    e:reset(0)
    same_array(e:set_state({0, 0, 0, 0}), {0, 0, 0, 0})
    local o, r, term, trunc = e:step(1)
    near(o[1], 0.0)
    near(o[2], 0.1951219512195122)
    near(o[3], 0.0)
    near(o[4], -0.2926829268292683)
    assert.are.equal(1.0, r)
    assert.is_false(term)
    assert.is_false(trunc)
  end)

  it("CartPole: terminates past x = 2.4, pays 1 then 0", function()
    local e = envs.load("CartPole-v1")
    e:reset(0)
    e:set_state({2.39, 1.0, 0, 0})
    local _, r, term = e:step(1)
    assert.is_true(term)
    assert.are.equal(1.0, r)
    _, r, term = e:step(1)
    assert.is_true(term)
    assert.are.equal(0.0, r)
    -- and past the angle threshold
    e:set_state({0, 0, 0.2, 1.0})
    _, _, term = e:step(0)
    assert.is_true(term)
  end)

  it("Acrobot: -1 per step, 0 and terminated with the tip high", function()
    local e = envs.load("Acrobot-v1")
    e:reset(0)
    local o, r, term = e:step(1)
    assert.are.equal(-1.0, r)
    assert.is_false(term)
    near(o[1] ^ 2 + o[2] ^ 2, 1, 1e-12)
    e:set_state({math.pi - 0.1, 0.05, 0, 0})   -- nearly straight up
    o, r, term = e:step(1)
    assert.is_true(term)
    assert.are.equal(0.0, r)
    -- angles are wrapped into [-pi, pi], velocities bounded
    e:set_state({3.1, 0, 12.5, 28})
    e:step(2)
    assert(e.state[1] >= -math.pi and e.state[1] <= math.pi)
    assert(math.abs(e.state[3]) <= 4 * math.pi and math.abs(e.state[4]) <= 9 * math.pi)
  end)

  it("Pendulum: cost, clipped torque and speed, never terminates", function()
    local e = envs.load("Pendulum-v1")
    e:reset(0)
    e:set_state({0.5, 0.2})
    local o, r, term = e:step({1.0})
    near(o[1], 0.8600245934470603)
    near(o[2], 0.5102525832038666)
    near(o[3], 0.7095691539531523)
    near(r, -0.255)
    assert.is_false(term)
    -- torque beyond 2 acts (and costs) like 2
    local a, b = envs.load("Pendulum-v1"), envs.load("Pendulum-v1")
    a:reset(0); b:reset(0)
    a:set_state({1, 0}); b:set_state({1, 0})
    local oa, ra = a:step({5})
    local ob, rb = b:step(2)
    same_array(oa, ob)
    assert.are.equal(ra, rb)
    -- the angle in the cost is normalised: 2*pi + 0.1 costs like 0.1
    a:set_state({2 * math.pi + 0.1, 0}); b:set_state({0.1, 0})
    _, ra = a:step(0)
    _, rb = b:step(0)
    near(ra, rb, 1e-12)
    a:set_state({0, 50})
    oa = a:step(0)
    assert.are.equal(8, oa[3])
  end)

  it("MountainCar: one step, the goal and the left wall", function()
    local e = envs.load("MountainCar-v0")
    e:reset(0)
    e:set_state({-0.5, 0})
    local o, r, term = e:step(2)
    near(o[1], -0.49917684300416926)
    near(o[2], 0.0008231569958307428)
    assert.are.equal(-1.0, r)
    assert.is_false(term)
    e:set_state({0.49, 0.05})
    _, r, term = e:step(2)
    assert.is_true(term)
    assert.are.equal(-1.0, r)
    e:set_state({-1.19, -0.07})
    o = e:step(0)
    assert.are.equal(-1.2, o[1])
    assert.are.equal(0, o[2])
    e:set_state({0, 1})
    o = e:step(1)
    assert.are.equal(0.07, o[2])
  end)

  it("MountainCarContinuous: 100 at the goal minus 0.1*a^2 of the raw action", function()
    local e = envs.load("MountainCarContinuous-v0")
    e:reset(0)
    e:set_state({0.44, 0.05})
    local _, r, term = e:step({0.5})
    assert.is_true(term)
    near(r, 100 - 0.025)
    e:set_state({-0.5, 0})
    _, r, term = e:step(3)   -- clipped to 1 in the dynamics, squared raw in the cost
    assert.is_false(term)
    near(r, -0.9)
    local a = envs.load("MountainCarContinuous-v0")
    a:reset(0)
    a:set_state({-0.5, 0})
    e:set_state({-0.5, 0})
    same_array(a:step(1), e:step(3))
  end)

  it("MountainCarContinuous: keeps its state in float32, as Gymnasium does", function()
    local e = envs.load("MountainCarContinuous-v0")
    e:reset(0)
    e:set_state({-0.5, 0})
    local o = e:step(1)
    -- position in [0.25, 0.5): float32 spacing 2^-25; velocity in
    -- [2^-10, 2^-9): spacing 2^-33.  A float64 result would not be a multiple.
    assert(o[1] > -0.5 and o[1] < -0.25 and o[2] > 2 ^ -10 and o[2] < 2 ^ -9)
    local p, v = o[1] * 2 ^ 25, o[2] * 2 ^ 33
    assert.are.equal(math.floor(p), p)
    assert.are.equal(math.floor(v), v)
    near(o[1], -0.5 + o[2], 2 ^ -25)   -- within float32 rounding of the float64 sum
  end)

  it("GridWorld: a deterministic walk to the goal, walls, coords, slip", function()
    local e = envs.load("GridWorld")
    local o = e:reset(0)
    assert.are.equal(1, o[1])
    local total, term, n = 0, false, 0
    for _, a in ipairs({1, 1, 1, 1, 2, 2, 2, 2}) do
      local r
      o, r, term = e:step(a)
      total, n = total + r, n + 1
      if term then break end
    end
    assert.is_true(term)
    assert.are.equal(8, n)
    assert.are.equal(1, total)
    assert.are.equal(1, o[25])
    -- walls and edges leave the agent in place
    local w = envs.load("GridWorld", {rows = 3, cols = 3, walls = {{0, 1}}, obs = "coords", step_reward = -0.1})
    assert.are.equal(2, spaces.flat_size(w.observation_space))
    w:reset(0)
    local o2, r2 = w:step(1)
    same_array(o2, {0, 0})
    assert.are.equal(-0.1, r2)
    o2 = w:step(0)
    same_array(o2, {0, 0})
    o2 = w:step(2)
    same_array(o2, {0.5, 0})
    -- slip: reproducible by seed, and it does change moves
    local s1 = envs.load("GridWorld", {slip = 0.5})
    local s2 = envs.load("GridWorld", {slip = 0.5})
    s1:reset(4); s2:reset(4)
    local slipped = 0
    for _ = 1, 50 do
      local oa, _, ta, _, ia = s1:step(1)
      local ob = s2:step(1)
      same_array(oa, ob)
      if ia.slipped then slipped = slipped + 1 end
      if ta then s1:reset(); s2:reset() end
    end
    assert(slipped > 10 and slipped < 40)
    expect_error(function() envs.load("GridWorld", {goal = {5, 5}}) end, "config.goal")
  end)

  it("Bandit: one-step episodes paying each arm's mean", function()
    local e = envs.load("Bandit", {means = {0, 1, -2}, std = 0.5})
    assert.are.equal(3, e.action_space.n)
    same_array(e:reset(1), {1})
    local n = 4000
    for arm = 0, 2 do
      local s = 0
      for _ = 1, n do
        local o, r, term, trunc = e:step(arm)
        assert.is_true(term)
        assert.is_false(trunc)
        same_array(o, {1})
        s = s + r
      end
      near(s / n, ({0, 1, -2})[arm + 1], 0.05)
    end
    local exact = envs.load("Bandit", {means = {3, 4}, std = 0})
    exact:reset(0)
    local _, r = exact:step(1)
    assert.are.equal(4, r)
    expect_error(function() envs.load("Bandit", {means = {}}) end, "config.means")
  end)
end)

describe("envs.run_trajectory", function()
  it("sets the state and steps through the actions", function()
    local t = envs.run_trajectory("CartPole-v1", {0, 0, 0, 0}, {1, 0, 1})
    assert.are.equal(3, #t.obs)
    near(t.obs[1][2], 0.1951219512195122)
    same_array(t.rewards, {1, 1, 1})
    same_array(t.terminated, {false, false, false})
    same_array(t.truncated, {false, false, false})
    local p = envs.run_trajectory("Pendulum-v1", {0.5, 0.2}, {1.0})
    near(p.rewards[1], -0.255)
    near(p.obs[1][3], 0.7095691539531523)
  end)
end)
