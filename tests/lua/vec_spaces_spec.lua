-- tests/lua/vec_spaces_spec.lua — the engine (moonrl.vec, moonrl.core.vecenv)
-- with the composite spaces of issue 15: multi_discrete, multi_binary and
-- hybrid actions checked and handed to the env as flat lists, grid
-- observations, and invalid-action masks from an env's action_mask(obs,
-- out) (read after every reset and step, checked, the same on worker
-- threads), then collected into a rollout with a policy that acts on them.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local core = require "moonrl.core"
local vec = require "moonrl.vec"
local raises = H.raises

-- A PPO trainer on env (8 steps of 2 envs) with normalize_obs = norm.
local function rl_ppo()
  return function(env, norm)
    return require("moonrl").ppo{env = env, env_opts = {num_envs = 2}, n_steps = 8,
                                 normalize_obs = norm, seed = 1}
  end
end

local function rows(t)
  local out = {}
  for i = 1, #t do out[i] = t[i]:totable() end
  return out
end

-- An inline env of any action space that records the action it was given.
local function recorder(action_space, extra)
  local Env = {}
  Env.__index = Env
  Env.observation_space = {type = "box", shape = {2}, low = {-1, -1}, high = {1, 1}}
  Env.action_space = action_space
  function Env.new() return setmetatable({t = 0}, Env) end
  function Env:reset() self.t = 0 return {0, 0}, {} end
  function Env:step(a)
    self.t = self.t + 1
    Env.last = a
    return {0, 0}, 0, self.t >= 5, false, {}
  end
  for k, v in pairs(extra or {}) do Env[k] = v end
  return Env
end

describe("composite actions through the engine", function()
  it("hands a multi-discrete row to the env as a list of integers", function()
    local Env = recorder({type = "multi_discrete", nvec = {3, 2}})
    local v = vec.make(Env, {num_envs = 2})
    v:reset()
    v:step({{2, 1}, {0, 0}})
    assert.same({0, 0}, Env.last)  -- the last copy stepped
    v:step({{2, 1}, {1, 1}})
    assert.same({1, 1}, Env.last)
    assert.equal(math.type and "integer" or "number", math.type and math.type(Env.last[1]) or "number")
    raises(function() v:step({{3, 1}, {0, 0}}) end, "action 3 of part 1 of env 0 is not an index in [0, 3)")
    raises(function() v:step({{0.5, 1}, {0, 0}}) end, "not an index")
    v:close()
  end)

  it("checks multi-binary bits and clips hybrid box parts to their bounds", function()
    local B = recorder({type = "multi_binary", n = 3})
    local v = vec.make(B, {num_envs = 1})
    v:reset()
    v:step({{1, 0, 1}})
    assert.same({1, 0, 1}, B.last)
    raises(function() v:step({{1, 2, 1}}) end, "bit 2 of part 1 of env 0 is 2 (expected 0 or 1)")
    v:close()
    local Hy = recorder({type = "hybrid", parts = {{type = "discrete", n = 4},
                                                  {type = "box", shape = {2}, low = {-1, 0}, high = {1, 2}}}})
    local w = vec.make(Hy, {num_envs = 1})
    w:reset()
    w:step({{3, 5, -5}})
    assert.same({3, 1, 0}, Hy.last)  -- the box part clipped, the index kept
    raises(function() w:step({{1, 0 / 0, 0}}) end, "nan")
    w:close()
  end)

  it("refuses a malformed composite space, naming the field", function()
    raises(function() vec.make(recorder({type = "multi_discrete", nvec = {3, 0}})) end, "nvec")
    raises(function() vec.make(recorder({type = "hybrid", parts = {{type = "box", shape = {2, 2}, low = 0, high = 1}}})) end,
           "1-D box")
  end)

  it("takes grid observations as flat C-major arrays", function()
    local v = vec.make("MinAtar-Breakout-v0", {num_envs = 2, seed = 3})
    assert.equal(400, v.obs_dim)
    local o = v:reset()
    assert.equal(400, #o[1])
    local ones = 0
    for j = 1, 400 do ones = ones + o[1][j] end
    assert.is_true(ones >= 30)  -- three rows of bricks, the paddle, the ball
    v:close()
  end)
end)

describe("invalid-action masks", function()
  it("reads the env's action_mask after every reset and step, the same on threads", function()
    local function run(threads)
      local v = vec.make("InvalidAction-v0", {num_envs = 4, threads = threads, seed = 2})
      local obs = v:reset()
      local m = v:masks()
      assert.equal(4, #m)
      assert.equal(50, #m[1])
      local seq = {rows(m)}
      for t = 1, 6 do
        -- the mask is the observation's second half (the env says so)
        for i = 1, 4 do
          for a = 1, 50 do assert.equal(obs[i][50 + a], m[i][a]) end
        end
        local acts = {}
        for i = 1, 4 do
          for a = 1, 50 do if m[i][a] == 1 then acts[i] = a - 1 break end end
        end
        obs = v:step(acts)
        seq[#seq + 1] = rows(m)
      end
      v:close()
      return seq
    end
    assert.same(run(0), run(2))
  end)

  it("is off with masks = false and for envs without action_mask", function()
    local v = vec.make("InvalidAction-v0", {num_envs = 2, masks = false})
    v:reset()
    assert.is_nil(v:masks())
    v:close()
    local w = vec.make("CartPole-v1", {num_envs = 2})
    w:reset()
    assert.is_nil(w:masks())
    w:close()
  end)

  it("gives multi-discrete masks per component, concatenated", function()
    local v = vec.make("Skirmish-v0", {num_envs = 2, seed = 1})
    v:reset()
    assert.equal(9, #v:masks()[1])  -- 3 + 2 + 4
    v:close()
  end)

  it("names the env and copy when action_mask returns something wrong", function()
    local function env_with(mask)
      return recorder({type = "discrete", n = 3}, {action_mask = function() return mask end})
    end
    raises(function() vec.make(env_with({1, 1})):reset() end, "action_mask returned 2 numbers (expected 3")
    raises(function() vec.make(env_with({0, 0, 0})):reset() end, "copy 0", "no valid action")
    raises(function() vec.make(env_with({1, 0.5, 0})):reset() end, "mask entry 2 = 0.5")
    raises(function() vec.make(env_with("x")):reset() end, "action_mask returned string")
    local MD = recorder({type = "multi_discrete", nvec = {2, 2}},
                        {action_mask = function() return {1, 0, 0, 0} end})
    raises(function() vec.make(MD):reset() end, "no valid action in part 2")
  end)

  it("are collected with the actions a policy draws under them", function()
    local v = vec.make("InvalidAction-v0", {num_envs = 4, seed = 5, threads = 2})
    local p = core.policy{obs_dim = v.obs_dim, hidden = {16}, action = {type = "discrete", n = 50}, seed = 1}
    local r = v:rollout(32)
    v:reset()
    -- before each step the engine reads the masks it then acts with: every
    -- action collected is valid under the observation it was taken in
    v:collect(r, p)
    local obs, act, masks = r:field("obs"), r:field("actions"), r:masks()
    assert.equal(50, #masks[1][1])
    for t = 1, 32 do
      for i = 1, 4 do
        local a = act[t][i][1]
        assert.equal(1, obs[t][i][50 + a + 1])
        assert.equal(1, masks[t][i][a + 1])
        for j = 1, 50 do assert.equal(obs[t][i][50 + j], masks[t][i][j]) end
      end
    end
    r:close()
    v:close()
  end)

  it("are kept per step by a rollout filled one transition at a time", function()
    local r = core.rollout and core.rollout{steps = 2, num_envs = 1, obs_dim = 2, action_width = 1}
      or vec.make("InvalidAction-v0", {num_envs = 1}):rollout(2)
    assert.is_nil(r:masks())
    raises(function() core.rollout_put_mask(r, 0, 0, {1, 0, 1}) end, "no masks")
    core.rollout_set_mask_width(r, 3)
    assert.same({1, 1, 1}, r:masks()[2][1]:totable())
    core.rollout_put_mask(r, 1, 0, {1, 0, 1})
    assert.same({1, 0, 1}, r:masks()[2][1]:totable())
    raises(function() core.rollout_put_mask(r, 0, 0, {1, 2, 1}) end, "entry 2 of the mask is 2")
    raises(function() core.rollout_put_mask(r, 0, 0, {1, 1}) end, "rollout_put_mask")
    core.rollout_set_mask_width(r, 0)
    assert.is_nil(r:masks())
    r:close()
  end)

  it("refuses a policy that does not fit the env's actions", function()
    local v = vec.make("Skirmish-v0", {num_envs = 2, seed = 1})
    local p = core.policy{obs_dim = v.obs_dim, hidden = {8}, action = {type = "multi_discrete", nvec = {3, 2, 3}}, seed = 1}
    local r = v:rollout(4)
    v:reset()
    raises(function() v:collect(r, p) end, "does not fit")
    r:close()
    v:close()
  end)
end)

describe("dict observations", function()
  local DICT = H.root .. "tests/lua/fixtures/vec_dict.lua"

  it("are flattened in name order (hp, pos, tiles), on threads too", function()
    for _, th in ipairs({0, 2}) do
      local v = vec.make(DICT, {num_envs = 2, threads = th})
      assert.equal(7, v.obs_dim)
      local o = v:reset()
      assert.same({100, 0, 0, 1, 0, 0, 0}, o[1]:totable())
      o = v:step({1, 0})
      assert.same({99, 1, -1, 1, 0, 0, 1}, o[1]:totable())
      assert.same({99, -1, 1, 1, 0, 0, 1}, o[2]:totable())
      v:close()
    end
  end)

  it("name the part that is wrong", function()
    local function bad(obs)
      local Env = dofile(DICT)
      function Env:obs() return obs end
      return Env
    end
    raises(function() vec.make(bad({pos = {1}, hp = 1, tiles = {0, 0, 0, 0}})):reset() end,
           "obs part 'pos' of length 1 (expected 2)")
    raises(function() vec.make(bad({pos = {1, 2}, tiles = {0, 0, 0, 0}})):reset() end,
           "obs part 'hp' of type nil")
    raises(function() vec.make(bad(5)):reset() end, "obs of type number")
    -- a file env is probed at load, naming the part the same way
    raises(function() vec.make(H.root .. "tests/lua/fixtures/vec_dict_bad.lua") end,
           "vec_dict_bad.lua", "part 'tiles' must be 4 numbers")
  end)

  it("normalise only the parts a trainer names", function()
    local t = rl_ppo()(DICT, {"pos"})
    -- the rollout holds what the policy saw: hp and tiles as the env gave
    -- them, pos standardised
    t:collect()
    local obs = t.rollout:field("obs")
    local hp_raw, tiles_raw, pos_scaled = true, true, false
    for s = 1, 8 do
      for i = 1, 2 do
        local row = obs[s][i]
        hp_raw = hp_raw and row[1] == math.floor(row[1]) and row[1] > 80
        tiles_raw = tiles_raw and (row[4] == 1) and (row[5] == 0)
        if math.abs(row[2]) > 0 and math.abs(row[2]) < 3 and row[2] ~= math.floor(row[2]) then pos_scaled = true end
      end
    end
    assert.is_true(hp_raw)
    assert.is_true(tiles_raw)
    assert.is_true(pos_scaled)
    t:close()
    raises(function() rl_ppo()(DICT, {"speed"}) end, "'speed', which is not a part")
    raises(function() rl_ppo()("CartPole-v1", {"pos"}) end, "not a dict")
  end)
end)

describe("uint8 grid observations", function()
  local BYTES = H.root .. "tests/lua/fixtures/vec_bytes.lua"

  it("are read as x/255 from an array of integers or a string of bytes", function()
    for _, cfg in ipairs({{}, {string = true}}) do
      for _, th in ipairs({0, 2}) do
        local v = vec.make(BYTES, {num_envs = 2, threads = th, config = cfg})
        assert.equal(4, v.obs_dim)
        local o = v:reset()
        local want = {0, 51 / 255, 1, 0}
        for j = 1, 4 do assert.is_true(math.abs(o[1][j] - want[j]) < 1e-7) end
        o = v:step({0, 1})
        assert.is_true(math.abs(o[2][4] - 1 / 255) < 1e-7)
        v:close()
      end
    end
  end)

  it("refuse a value outside 0-255 or a string of the wrong length", function()
    local function env(obs)
      local Env = dofile(BYTES)
      function Env:obs() return obs end
      return Env
    end
    raises(function() vec.make(env({0, 1, 256, 0})):reset() end, "obs[3] = 256", "integer 0-255")
    raises(function() vec.make(env({0, 1.5, 2, 0})):reset() end, "obs[2] = 1.5")
    raises(function() vec.make(env("abc")):reset() end, "string of 3 bytes (expected 4)")
    local Bad = dofile(BYTES)
    Bad.observation_space = {type = "box", shape = {4}, low = {0, 0, 0, 0}, high = {1, 1, 1, 1},
                             dtype = "int64"}
    raises(function() vec.make(Bad) end, "dtype must be")
  end)
end)

describe("every trainer under masks", function()
  for _, algo in ipairs({"ppo", "trpo", "npg", "reinforce", "offpolicy"}) do
    it(algo .. " learns InvalidAction-v0 acting and updating under the env's masks", function()
      local rl = require "moonrl"
      local env = vec.make("InvalidAction-v0", {num_envs = 4, seed = 1})
      local t = rl[algo]{env = env, seed = 1, n_steps = 64, gamma = 0, progress = false}
      local invalid = 0
      t:learn(12000, {on_update = function()
        -- what was collected: every action valid under its mask
        local r = t.rollout
        local act, masks = r:field("actions"), r:masks()
        for s = 1, 64 do
          for i = 1, 4 do
            if masks[s][i][act[s][i][1] + 1] ~= 1 then invalid = invalid + 1 end
          end
        end
      end})
      assert.equal(0, invalid)
      -- a uniformly random valid action earns 4 of 20
      assert.is_true(t:episode_stats().mean_return > 10, algo .. ": " .. t:episode_stats().mean_return)
      t:close()
      env:close()
    end)
  end
end)

describe("multi-binary actions", function()
  it("are collected and learned: switch the bits the observation shows", function()
    local Env = {}
    Env.__index = Env
    Env.observation_space = {type = "box", shape = {4}, low = {0, 0, 0, 0}, high = {1, 1, 1, 1}}
    Env.action_space = {type = "multi_binary", n = 4}
    function Env.new() return setmetatable({}, Env) end
    function Env:draw()
      self.want = {}
      for j = 1, 4 do self.want[j] = self.rng:integer(2) end
      return {self.want[1], self.want[2], self.want[3], self.want[4]}
    end
    function Env:reset(seed)
      self.rng = self.rng or require("moonrl.envs").rng.new(seed or 0)
      self.t = 0
      return self:draw(), {}
    end
    function Env:step(a)
      local r = 0
      for j = 1, 4 do
        assert(a[j] == 0 or a[j] == 1)
        if a[j] == self.want[j] then r = r + 0.25 end
      end
      self.t = self.t + 1
      return self:draw(), r, self.t >= 10, false, {}
    end
    local rl = require "moonrl"
    local env = vec.make(Env, {num_envs = 4, seed = 3})
    local t = rl.ppo{env = env, seed = 1, n_steps = 32, batch_size = 64, lr = 3e-3, gamma = 0,
                     progress = false}
    t:learn(15000)
    -- random bits earn 5 of 10 per episode
    assert.is_true(t:episode_stats().mean_return > 8.5, "mean return " .. t:episode_stats().mean_return)
    t:close()
    env:close()
  end)
end)
