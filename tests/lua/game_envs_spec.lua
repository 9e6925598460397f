-- busted tests/lua/game_envs_spec.lua   (Lua 5.4 and LuaJIT)
-- The game envs of issue 15 (InvalidAction-v0, Skirmish-v0, MiniGolf-v0,
-- MinAtar-Breakout-v0), played directly: their env files run in the env
-- sandbox, as moonrl.envs loads them, but without the loader's space checks
-- (which know only discrete and 1-D box spaces until the runtime takes the
-- new ones).  Rules by hand-set states, determinism by seed, observation
-- ranges, masks, and the returns of random and scripted players.

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local helper = dofile(here .. "helper.lua")
local envs = require "moonrl.envs"
local raises, near, same_array = helper.raises, helper.near, helper.same_array

local ENV_DIR = helper.root .. "envs/"
local IDS = {"InvalidAction-v0", "Skirmish-v0", "MiniGolf-v0", "MinAtar-Breakout-v0"}

-- The Env table of an env file, run in a fresh sandbox.
local function class(id)
  local chunk = assert(loadfile(ENV_DIR .. id .. ".lua", "t", envs.sandbox_env(ENV_DIR)))
  local Env = chunk()
  for _, m in ipairs({"new", "reset", "step", "reset_into", "step_into", "set_state", "render"}) do
    assert(type(Env[m]) == "function", id .. ": Env." .. m .. " must be a function")
  end
  return Env
end

local function new(id, config) return class(id).new(config) end

local function prod(shape)
  local n = 1
  for i = 1, #shape do n = n * shape[i] end
  return n
end

-- A uniformly random element of any of the action spaces used here.
local function sample(space, r)
  if space.type == "discrete" then return r:integer(space.n) end
  if space.type == "multi_discrete" then
    local a = {}
    for i, n in ipairs(space.nvec) do a[i] = r:integer(n) end
    return a
  end
  if space.type == "box" then
    local a = {}
    for i = 1, prod(space.shape) do a[i] = r:uniform(space.low[i], space.high[i]) end
    return a
  end
  if space.type == "hybrid" then
    local a = {}
    for i, part in ipairs(space.parts) do a[i] = sample(part, r) end
    return a
  end
  error("no sampler for " .. tostring(space.type))
end

local function check_obs(e, obs)
  local s = e.observation_space
  assert.are.equal("box", s.type)
  assert.are.equal(prod(s.shape), #obs)
  for i = 1, #obs do
    local v = obs[i]
    assert(type(v) == "number" and v == v, "obs[" .. i .. "] is not a number")
    assert(v >= s.low[i] and v <= s.high[i],
      ("obs[%d] = %s outside [%s, %s]"):format(i, tostring(v), tostring(s.low[i]), tostring(s.high[i])))
  end
end

-- Mean return of `episodes` episodes of policy(env, obs, info) -> action,
-- each cut at `limit` steps.
local function mean_return(e, policy, episodes, limit, seed0)
  local total = 0
  for ep = 1, episodes do
    local obs, info = e:reset((seed0 or 1000) + ep)
    for _ = 1, limit do
      local o, r, term, _, inf = e:step(policy(e, obs, info))
      obs, info = o, inf
      total = total + r
      if term then break end
    end
  end
  return total / episodes
end

describe("game envs", function()
  for _, id in ipairs(IDS) do
    describe(id, function()
      it("loads in the sandbox with spaces, id and a render", function()
        local Env = class(id)
        assert.are.equal(id, Env.id)
        local e = Env.new()
        assert.is_true((require "moonrl.spaces").validate(e.observation_space))
        assert.is_string(e.action_space.type)
        assert.is_nil(e:render())
        e:reset(0)
        assert.is_string(e:render())
      end)

      it("is deterministic by seed, and reset(seed) restarts the stream", function()
        local function trace(seed)
          local e, r = new(id), envs.rng.new(5)
          local out = {}
          local obs = e:reset(seed)
          out[#out + 1] = table.concat(obs, ",")
          for _ = 1, 200 do
            local o, rew, term = e:step(sample(e.action_space, r))
            out[#out + 1] = table.concat(o, ",") .. "|" .. rew .. "|" .. tostring(term)
            if term then out[#out + 1] = table.concat(e:reset(), ",") end
          end
          return table.concat(out, "\n")
        end
        assert.are.equal(trace(7), trace(7))
        assert.are_not.equal(trace(7), trace(8))
        local a, b = new(id), new(id)
        a:reset(3); a:step(sample(a.action_space, envs.rng.new(1)))
        same_array(a:reset(9), b:reset(9))
      end)

      it("keeps observations in the declared box; step_into and reset_into agree", function()
        local e, f, r = new(id), new(id), envs.rng.new(2)
        local obs, info = e:reset(4)
        assert.is_table(info)
        check_obs(e, obs)
        local buf = {}
        f:reset_into(4, buf)
        same_array(buf, obs)
        for _ = 1, 300 do
          local a = sample(e.action_space, r)
          local o, rew, term, trunc, inf = e:step(a)
          local rew2, term2, trunc2 = f:step_into(a, buf)
          check_obs(e, o)
          same_array(buf, o)
          assert.are.equal(rew, rew2)
          assert.are.equal(term, term2)
          assert.is_false(trunc)
          assert.is_false(trunc2)
          assert.is_table(inf)
          assert(rew == rew and math.abs(rew) < 1e9)
          if term then
            e:reset(); f:reset_into(nil, buf)
          end
        end
      end)

      it("rejects a malformed action, naming the env", function()
        local e = new(id)
        e:reset(0)
        raises(function() e:step("x") end, id, "invalid action")
        raises(function() e:step({0.5, 0, 0}) end, id, "invalid action")
        raises(function() e:step(1e9) end, id, "invalid action")
        raises(function() new(id):step(sample(e.action_space, envs.rng.new(1))) end, id, "reset")
      end)
    end)
  end
end)

describe("InvalidAction-v0", function()
  local function target_policy(e) return e.target end

  it("deals n_valid valid actions, the target among them, in info, method and obs alike", function()
    local e = new("InvalidAction-v0", {n = 30, n_valid = 4})
    assert.are.equal(60, e.observation_space.shape[1])
    assert.are.equal(30, e.action_space.n)
    local obs, info = e:reset(1)
    local r = envs.rng.new(3)
    for _ = 1, 200 do
      local m = e:action_mask()
      same_array(info.action_mask, m)
      same_array(e:action_mask(obs), m)
      local count, hot = 0, 0
      for a = 1, 30 do
        assert(m[a] == 0 or m[a] == 1)
        count = count + m[a]
        hot = hot + obs[a]
      end
      assert.are.equal(4, count)
      assert.are.equal(1, hot)
      assert.are.equal(1, obs[e.target + 1])
      assert.are.equal(1, m[e.target + 1])
      local _
      obs, _, _, _, info = e:step(r:integer(30))
    end
    -- out fills a given table
    local out = {}
    assert.are.equal(out, e:action_mask(nil, out))
    raises(function() e:action_mask({1, 2}) end, "InvalidAction-v0", "60 numbers")
  end)

  it("pays 1 for the target, 0 for another valid action, invalid_reward for an invalid one", function()
    local e = new("InvalidAction-v0", {n = 10, n_valid = 3, invalid_reward = -0.5})
    e:reset(0)
    e:set_state({4, 7, 1})
    local _, rew, term, _, info = e:step(4)
    assert.are.equal(1, rew)
    assert.is_false(term)
    assert.is_false(info.invalid_action)
    e:set_state({4, 7, 1})
    _, rew, _, _, info = e:step(7)
    assert.are.equal(0, rew)
    assert.is_false(info.invalid_action)
    e:set_state({4, 7, 1})
    _, rew, _, _, info = e:step(5)
    assert.are.equal(-0.5, rew)
    assert.is_true(info.invalid_action)
    raises(function() e:set_state({1, 2, 3, 4}) end, "at most n_valid = 3")
    raises(function() e:set_state({10}) end, "action 10 is not in 0..9")
  end)

  it("ends after ep_length rounds: the target player earns the maximum, ep_length", function()
    local e = new("InvalidAction-v0")
    assert.are.equal(20, mean_return(e, target_policy, 20, 1000))
    local e2 = new("InvalidAction-v0", {ep_length = 7})
    assert.are.equal(7, mean_return(e2, target_policy, 5, 1000))
    -- a random valid action earns about ep_length / n_valid, a random action about ep_length / n
    local r = envs.rng.new(8)
    local masked = mean_return(e, function(_, _, info)
      local valid = {}
      for a = 1, #info.action_mask do
        if info.action_mask[a] == 1 then valid[#valid + 1] = a - 1 end
      end
      return valid[r:integer(#valid) + 1]
    end, 500, 1000)
    near(masked, 20 / 5, 0.3)
    local unmasked = mean_return(e, function() return r:integer(50) end, 500, 1000)
    near(unmasked, 20 / 50, 0.1)
  end)

  it("with n_valid = 1 masks every action but the target", function()
    local e = new("InvalidAction-v0", {n = 8, n_valid = 1})
    local obs, info = e:reset(5)
    for _ = 1, 50 do
      local count = 0
      for a = 1, 8 do count = count + info.action_mask[a] end
      assert.are.equal(1, count)
      assert.are.equal(1, info.action_mask[e.target + 1])
      assert.are.equal(1, obs[e.target + 1])
      local _
      obs, _, _, _, info = e:step(e.target)
    end
  end)

  it("checks its config", function()
    raises(function() new("InvalidAction-v0", {n = 1}) end, "config.n")
    raises(function() new("InvalidAction-v0", {n = 10, n_valid = 11}) end, "config.n_valid")
    raises(function() new("InvalidAction-v0", {invalid_reward = 0 / 0}) end, "invalid_reward")
  end)

  it("passes moonrl.envs' loader and probe (a discrete action, a flat box)", function()
    local e = envs.make("InvalidAction-v0", {n = 20})
    local obs, info = e:reset(1)
    assert.are.equal(40, #obs)
    assert.are.equal(20, #info.action_mask)
  end)
end)

describe("Skirmish-v0", function()
  local function greedy(e, opts)
    opts = opts or {}
    local move, jump, shoot = 1, 0, 0
    if (e.shock and not opts.never_jump) or opts.always_jump then jump = 1 end
    if not e.reloading then
      for j = 1, e.k do
        if math.abs(e.tx[j] - e.px) <= 1 then shoot = j break end
      end
      if opts.random_shot then shoot = opts.r:integer(e.k + 1) end
    end
    if not opts.stand then
      local best, bd = nil, math.huge
      for j = 1, e.k do
        local d = math.abs(e.tx[j] - e.px)
        if d < bd then best, bd = j, d end
      end
      if bd > 1 and shoot == 0 then move = e.tx[best] > e.px and 2 or 0 end
    end
    return {move, jump, shoot}
  end

  it("declares a multi-discrete action and a flat box observation", function()
    local e = new("Skirmish-v0")
    same_array(e.action_space.nvec, {3, 2, 4})
    assert.are.equal("multi_discrete", e.action_space.type)
    assert.are.equal(10 + 3 * 19 + 2, e.observation_space.shape[1])
    local e2 = new("Skirmish-v0", {width = 6, targets = 2})
    same_array(e2.action_space.nvec, {3, 2, 3})
    assert.are.equal(6 + 2 * 11 + 2, e2.observation_space.shape[1])
  end)

  it("shoots, reloads, jumps and walks by the rules", function()
    local e = new("Skirmish-v0")
    e:reset(0)
    e:set_state({5, {6, 0, 9}, false, false})
    -- a hit in range: +1, the target reappears at least 3 cells away, the gun reloads
    local obs, rew, _, _, info = e:step({1, 0, 1})
    assert.are.equal(1, rew)
    assert(math.abs(e.tx[1] - 5) >= 3)
    assert.is_true(e.reloading)
    assert.are.equal(1, obs[#obs])
    same_array(info.action_mask, {1, 1, 1, 1, 1, 1, 0, 0, 0})
    -- firing while reloading: no shot, invalid, no cost; the gun is loaded after
    e:set_state({5, {6, 0, 9}, false, true})
    _, rew, _, _, info = e:step({1, 0, 1})
    assert.are.equal(0, rew)
    assert.is_true(info.invalid_action)
    assert.are.equal(6, e.tx[1])
    assert.is_false(e.reloading)
    -- a miss: nothing, but the gun reloads
    e:set_state({5, {6, 0, 9}, false, false})
    _, rew = e:step({1, 0, 2})
    assert.are.equal(0, rew)
    assert.is_true(e.reloading)
    -- the move comes first: stepping right brings target 3 in range
    e:set_state({7, {1, 0, 9}, false, false})
    _, rew = e:step({2, 0, 3})
    assert.are.equal(1, rew)
    assert.are.equal(8, e.px)
    -- shockwave: -1 on the ground, the jump's 0.2 in the air
    e:set_state({5, {1, 0, 9}, true, false})
    _, rew = e:step({1, 0, 0})
    near(rew, -1)
    e:set_state({5, {1, 0, 9}, true, false})
    _, rew = e:step({1, 1, 0})
    near(rew, -0.2)
    e:set_state({5, {1, 0, 9}, false, false})
    _, rew = e:step({1, 1, 0})
    near(rew, -0.2)
    -- walking into the end: invalid, masked, the player stays
    obs = e:set_state({0, {5, 6, 9}, false, false})
    same_array(e:action_mask(obs), {0, 1, 1, 1, 1, 1, 1, 1, 1})
    _, _, _, _, info = e:step({0, 0, 0})
    assert.is_true(info.invalid_action)
    assert.are.equal(0, e.px)
    obs = e:set_state({9, {5, 6, 0}, false, true})
    same_array(e:action_mask(obs), {1, 1, 0, 1, 1, 1, 0, 0, 0})
  end)

  it("encodes the player, the targets' offsets and the two flags one-hot", function()
    local e = new("Skirmish-v0")
    e:reset(0)
    local obs = e:set_state({2, {0, 5, 9}, true, false})
    local sum = 0
    for i = 1, #obs do sum = sum + obs[i] end
    assert.are.equal(1 + 3 + 1, sum)
    assert.are.equal(1, obs[3])                    -- player at cell 2
    assert.are.equal(1, obs[10 + (0 - 2) + 10])    -- target 1 offset -2
    assert.are.equal(1, obs[29 + (5 - 2) + 10])    -- target 2 offset +3
    assert.are.equal(1, obs[48 + (9 - 2) + 10])    -- target 3 offset +7
    assert.are.equal(1, obs[68])                   -- shockwave
    assert.are.equal(0, obs[69])                   -- loaded
  end)

  it("always leaves every component a valid choice, the mask agreeing with the obs", function()
    local e, r = new("Skirmish-v0", {width = 5, targets = 2}), envs.rng.new(9)
    local obs, info = e:reset(2)
    for _ = 1, 2000 do
      local m = info.action_mask
      assert.are.equal(3 + 2 + 3, #m)
      same_array(e:action_mask(obs), m)
      assert(m[1] + m[2] + m[3] >= 1 and m[4] + m[5] >= 1 and m[6] + m[7] + m[8] >= 1)
      local _
      obs, _, _, _, info = e:step(sample(e.action_space, r))
    end
  end)

  it("announces shockwaves with probability 0.25", function()
    local e, r = new("Skirmish-v0"), envs.rng.new(4)
    e:reset(1)
    local n, shocks = 20000, 0
    for _ = 1, n do
      e:step(sample(e.action_space, r))
      if e.shock then shocks = shocks + 1 end
    end
    near(shocks / n, 0.25, 0.015)
  end)

  it("needs every component: a greedy player nears the target 14, each ablation falls far short", function()
    local e, r = new("Skirmish-v0"), envs.rng.new(6)
    local function score(opts) return mean_return(e, function(env) return greedy(env, opts) end, 200, 50) end
    local full = score()
    assert(full >= 13.5, "greedy player: " .. full)
    for _, ablation in ipairs({"never_jump", "always_jump", "stand", "random_shot"}) do
      local s = score({[ablation] = true, r = r})
      assert(s < 14 - 5, ablation .. ": " .. s)
    end
    local random = mean_return(e, function(env) return sample(env.action_space, r) end, 200, 50)
    assert(random < -5, "random: " .. random)
  end)
end)

describe("MiniGolf-v0", function()
  local Env = class("MiniGolf-v0")
  local function best_club(obs)
    local k, v = 0, math.huge
    for c = 0, 3 do
      if math.abs(obs[2 + c]) < v then k, v = c, math.abs(obs[2 + c]) end
    end
    return k
  end

  it("declares a hybrid action of a club and a power", function()
    local e = Env.new()
    assert.are.equal("hybrid", e.action_space.type)
    assert.are.equal("discrete", e.action_space.parts[1].type)
    assert.are.equal(4, e.action_space.parts[1].n)
    assert.are.equal("box", e.action_space.parts[2].type)
    same_array(e.action_space.parts[2].low, {-1})
    same_array(e.action_space.parts[2].high, {1})
  end)

  it("carries the ball by the club's range and the power, overshooting past the hole", function()
    local e = Env.new()
    e:reset(0)
    e:set_state({10})
    local obs, rew, term, _, info = e:step({1, 0})          -- wedge at half power: 6 m
    near(info.carry, 6)
    near(obs[1], 4 / 20)
    assert.are.equal(-1, rew)
    assert.is_false(term)
    e:set_state({10})
    _, _, _, _, info = e:step({3, {1}})                     -- driver at full power: 22 m
    near(info.carry, 22)
    near(e.d, 12)
    e:set_state({10})
    _, _, _, _, info = e:step({0, 5})                       -- the power is clipped to 1
    near(info.carry, 4)
    -- within 1 m of the hole: holed, terminated; stepping on pays nothing
    e:set_state({10})
    obs, rew, term = e:step({2, Env.exact_power(2, 10.9)})
    assert.is_true(term)
    assert.are.equal(-1, rew)
    assert.are.equal(0, obs[1])
    _, rew, term = e:step({0, 0})
    assert.are.equal(0, rew)
    assert.is_true(term)
  end)

  it("shows each club's exact power; playing it holes in one (the maximum, -1)", function()
    local e = Env.new()
    local obs = e:reset(3)
    near(obs[1 + 1], Env.exact_power(0, e.d))
    local ret = mean_return(e, function(_, o) local k = best_club(o); return {k, o[2 + k]} end, 300, 10)
    assert.are.equal(-1, ret)
  end)

  it("needs both parts: random, one club or a fixed power fall short of the target -1.4", function()
    local e, r = Env.new(), envs.rng.new(12)
    local noisy = mean_return(e, function(_, o)
      local k = best_club(o)
      return {k, o[2 + k] + r:normal(0, 0.1)}
    end, 500, 10)
    assert(noisy > -1.1, "noisy exact player: " .. noisy)
    local mid = mean_return(e, function(_, o) return {best_club(o), 0} end, 500, 10)
    assert(mid < -1.5, "fixed power: " .. mid)
    local one = mean_return(e, function(_, o) return {2, o[4]} end, 500, 10)
    assert(one < -4, "one club: " .. one)
    local random = mean_return(e, function() return {r:integer(4), r:uniform(-1, 1)} end, 500, 10)
    assert(random < -5, "random: " .. random)
  end)
end)

describe("MinAtar-Breakout-v0", function()
  local Env = class("MinAtar-Breakout-v0")
  local PADDLE, BALL, TRAIL, BRICK = 0, 100, 200, 300
  local function at(obs, ch, x, y) return obs[ch + y * 10 + x + 1] end
  local function count(obs, ch)
    local n = 0
    for i = ch + 1, ch + 100 do n = n + obs[i] end
    return n
  end
  local function still(config)
    config = config or {}
    config.sticky_p = 0
    local e = Env.new(config)
    e:reset(0)
    return e
  end

  it("observes a {4, 10, 10} grid of 0/1 in C order: paddle, ball, trail, bricks", function()
    local e = Env.new()
    same_array(e.observation_space.shape, {4, 10, 10})
    assert.are.equal(3, e.action_space.n)
    assert.are.equal(6, Env.new({full_action_set = true}).action_space.n)
    for seed = 1, 20 do
      local obs = e:reset(seed)
      assert.are.equal(400, #obs)
      assert.are.equal(1, at(obs, PADDLE, 4, 9))
      assert.are.equal(1, count(obs, PADDLE))
      assert.are.equal(1, count(obs, BALL))
      assert.are.equal(1, count(obs, TRAIL))
      assert.are.equal(30, count(obs, BRICK))
      for x = 0, 9 do
        for _, y in ipairs({1, 2, 3}) do assert.are.equal(1, at(obs, BRICK, x, y)) end
      end
      assert(at(obs, BALL, 0, 4) == 1 or at(obs, BALL, 9, 4) == 1)
    end
  end)

  it("moves the ball diagonally, the trail one step behind, the paddle by the action", function()
    local e = still()
    e:set_state({4, 2, 5, 1, 1, {}})
    local obs = e:step(2)
    assert.are.equal(1, at(obs, PADDLE, 5, 9))
    assert.are.equal(1, at(obs, BALL, 3, 6))
    assert.are.equal(1, at(obs, TRAIL, 2, 5))
    obs = e:step(1)
    assert.are.equal(1, at(obs, PADDLE, 4, 9))
    -- the paddle stops at the edges
    e:set_state({0, 2, 5, 1, 1, {}})
    obs = e:step(1)
    assert.are.equal(1, at(obs, PADDLE, 0, 9))
  end)

  it("bounces off the side and top walls", function()
    local e = still()
    e:set_state({4, 9, 5, 1, -1, {}})
    e:step(0)
    assert.are.same({8, 4, -1, -1}, {e.bx, e.by, e.dx, e.dy})
    e:set_state({4, 3, 0, -1, -1, {}})
    e:step(0)
    assert.are.same({2, 1, -1, 1}, {e.bx, e.by, e.dx, e.dy})
    e:set_state({4, 0, 0, -1, -1, {}})     -- the corner
    e:step(0)
    assert.are.same({1, 1, 1, 1}, {e.bx, e.by, e.dx, e.dy})
  end)

  it("breaks a brick for +1, reflecting the ball, which slides along the brick", function()
    local e = still()
    e:set_state({4, 5, 4, 1, -1, {{6, 3}, {1, 1}}})
    local obs, rew, term = e:step(0)
    assert.are.equal(1, rew)
    assert.is_false(term)
    assert.are.equal(0, at(obs, BRICK, 6, 3))
    assert.are.same({6, 4, 1, 1}, {e.bx, e.by, e.dx, e.dy})
    assert.are.equal(1, at(obs, TRAIL, 5, 4))
    -- a corner of two bricks: both break, the ball reverses and stays
    e:set_state({4, 5, 4, 1, -1, {{6, 3}, {6, 4}, {1, 1}}})
    obs, rew = e:step(0)
    assert.are.equal(2, rew)
    assert.are.same({5, 4, -1, 1}, {e.bx, e.by, e.dx, e.dy})
    assert.are.equal(1, count(obs, BRICK))
  end)

  it("fills three new rows when the last brick breaks", function()
    local e = still()
    e:set_state({4, 5, 4, 1, -1, {{6, 3}}})
    local obs, rew = e:step(0)
    assert.are.equal(1, rew)
    assert.are.equal(30, count(obs, BRICK))
  end)

  it("returns the ball from the paddle's near or far side, and ends at the bottom", function()
    local e = still()
    -- paddle where the ball lands: near side, back the way it came
    e:set_state({6, 5, 8, 1, 1, {{0, 1}}})
    local _, rew, term = e:step(0)
    assert.is_false(term)
    assert.are.equal(0, rew)
    assert.are.same({4, 8, -1, -1}, {e.bx, e.by, e.dx, e.dy})
    -- paddle under the ball: far side, on in the same direction
    e:set_state({5, 5, 8, 1, 1, {{0, 1}}})
    _, _, term = e:step(0)
    assert.is_false(term)
    assert.are.same({6, 8, 1, -1}, {e.bx, e.by, e.dx, e.dy})
    -- the next step goes up
    e:step(0)
    assert.are.same({7, 7}, {e.bx, e.by})
    -- missed: the ball enters the bottom row, terminated with reward 0
    e:set_state({2, 5, 8, 1, 1, {{0, 1}}})
    local obs
    obs, rew, term = e:step(0)
    assert.is_true(term)
    assert.are.equal(0, rew)
    assert.are.equal(1, at(obs, BALL, 6, 9))
    _, rew, term = e:step(2)
    assert.is_true(term)
    assert.are.equal(0, rew)
    -- at a wall, the bounce turns back inside
    e:set_state({0, 0, 8, -1, 1, {{0, 1}}})   -- aims past the wall, reflected to x = 1
    _, _, term = e:step(0)
    assert.is_false(term)                     -- the paddle under the ball: far side
    assert.are.same({1, 8, 1, -1}, {e.bx, e.by, e.dx, e.dy})
  end)

  it("repeats the previous action with probability 0.1 (sticky actions)", function()
    local e, r = Env.new(), envs.rng.new(21)
    e:reset(5)
    local last, eligible, stuck = 0, 0, 0
    for _ = 1, 30000 do
      local a = r:integer(3)
      local _, _, term, _, info = e:step(a)
      if last ~= a then
        eligible = eligible + 1
        if info.executed_action ~= a then
          assert.are.equal(last, info.executed_action)
          stuck = stuck + 1
        end
      else
        assert.are.equal(a, info.executed_action)
      end
      last = info.executed_action
      if term then e:reset(); last = 0 end
    end
    near(stuck / eligible, 0.1, 0.01)
    -- sticky_p = 0: never
    local s = still()
    for i = 1, 100 do
      local _, _, term, _, info = s:step(i % 3)
      assert.are.equal(i % 3, info.executed_action)
      if term then s:reset() end
    end
  end)

  it("takes MinAtar's 6 actions with full_action_set", function()
    local e = still({full_action_set = true})
    e:set_state({4, 2, 5, 1, 1, {}})
    local obs = e:step(3)
    assert.are.equal(1, at(obs, PADDLE, 5, 9))
    for _, a in ipairs({0, 2, 4, 5}) do
      obs = e:step(a)
      assert.are.equal(1, at(obs, PADDLE, 5, 9))
    end
    obs = e:step(1)
    assert.are.equal(1, at(obs, PADDLE, 4, 9))
    raises(function() e:step(6) end, "MinAtar-Breakout-v0", "invalid action")
  end)

  it("has a registered time limit, changed or removed by config", function()
    assert.are.equal(10000, Env.max_episode_steps)
    assert.are.equal(500, Env.new({max_episode_steps = 500}).max_episode_steps)
    assert.is_false(Env.new({max_episode_steps = false}).max_episode_steps)
    raises(function() Env.new({max_episode_steps = 0}) end, "max_episode_steps")
    raises(function() Env.new({sticky_p = 2}) end, "sticky_p")
  end)

  it("rewards a player that tracks the ball far above a random one", function()
    -- where the ball will be when it next comes down to row 8 (walls only)
    local function landing(e)
      local x, y, dx, dy = e.bx, e.by, e.dx, e.dy
      for _ = 1, 40 do
        if y == 8 and dy == 1 then return x end
        local nx = x + dx
        if nx < 0 or nx > 9 then dx = -dx; nx = x + dx end
        local ny = y + dy
        if ny < 0 then dy = 1; ny = y + 1 end
        x, y = nx, ny
      end
      return x
    end
    local function track(e)
      local t = landing(e)
      if t < e.px then return 1 elseif t > e.px then return 2 end
      return 0
    end
    local e, r = Env.new(), envs.rng.new(2)
    local tracked = mean_return(e, track, 60, 3000)
    local random = mean_return(e, function() return r:integer(3) end, 200, 3000)
    assert(tracked >= 10, "tracking player: " .. tracked)
    assert(random < 2, "random player: " .. random)
  end)
end)

describe("InvalidAction-v0 through moonrl.vec", function()
  local ok, core = pcall(require, "moonrl.core")
  if not ok or type(core.vecenv) ~= "function" then
    pending("this binding of moonrl.core has no vecenv")
    return
  end
  local vec = require "moonrl.vec"

  it("steps on worker threads as in the caller's state, bit for bit", function()
    local function run(threads)
      local v = vec.make("InvalidAction-v0", {num_envs = 3, threads = threads, seed = 4})
      assert.are.equal(100, v.obs_dim)
      local obs = v:reset()
      local out = {}
      for t = 1, 45 do
        local a = {}
        for i = 1, 3 do a[i] = (t * 7 + i * 11) % 50 end
        local o, rew, term = v:step(a)
        obs = o
        for i = 1, 3 do
          out[#out + 1] = rew[i]
          out[#out + 1] = term[i] and 1 or 0
        end
      end
      local first = obs[1]
      local row = type(first) == "table" and first or first:totable()
      for j = 1, #row do out[#out + 1] = row[j] end
      v:close()
      return out
    end
    same_array(run(2), run(0))
  end)
end)

describe("game envs played by moonrl.core policies", function()
  local ok, core = pcall(require, "moonrl.core")
  if not ok or type(core.policy) ~= "function" then
    pending("no moonrl.core")
    return
  end
  -- The policy spec of an env's action space, the way a trainer would build it.
  local function action_spec(space)
    if space.type == "hybrid" then
      local parts = {}
      for i, p in ipairs(space.parts) do
        parts[i] = p.type == "box" and {type = "box", n = prod(p.shape), low = p.low, high = p.high}
                   or {type = "discrete", n = p.n}
      end
      return {type = "hybrid", parts = parts}
    end
    return space
  end

  local function play(id, masked)
    local e = new(id)
    local okp, pol = pcall(core.policy, {obs_dim = prod(e.observation_space.shape),
                                         action = action_spec(e.action_space), seed = 3})
    if not okp then return nil, pol end
    local obs, info = e:reset(1)
    for _ = 1, 60 do
      local a
      if masked then
        local m = {}
        for j = 1, #info.action_mask do m[j] = info.action_mask[j] end
        local t = pol:act(core.tensor({obs}), false, core.tensor({m})):totable()[1]
        a = type(t) == "table" and t or {t}
        -- a masked choice is never drawn
        local base = 0
        for c, n in ipairs(e.action_space.nvec) do
          assert.are.equal(1, m[base + a[c] + 1])
          base = base + n
        end
      else
        a = pol:act(obs)
      end
      local o, r, term, trunc, inf = e:step(a)
      assert(type(r) == "number" and type(term) == "boolean" and type(trunc) == "boolean")
      obs, info = o, inf
      if term then obs, info = e:reset() end
    end
    return true
  end

  for _, id in ipairs(IDS) do
    it("steps " .. id .. " with the actions a policy of its space draws", function()
      local done, err = play(id, false)
      if not done then pending("moonrl.core takes no policy for this space yet: " .. tostring(err)) end
    end)
  end

  it("steps Skirmish-v0 with masked multi-discrete draws", function()
    local done, err = play("Skirmish-v0", true)
    if not done then pending("no masked multi-discrete policy yet: " .. tostring(err)) end
  end)
end)
