-- tests/lua/agent_masks_spec.lua — the in-game agent (rl.agent) with the
-- action spaces of issue 15: agent:act(obs, mask) never draws a masked
-- action and learns with the masks it acted under (sliced and background),
-- and multi-discrete and hybrid agents act with flat tables.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local rl = require "moonrl"
local envs = require "moonrl.envs"
local raises = H.raises

-- Plays InvalidAction-v0 for `steps` steps with the agent, masks from the
-- env; returns the mean of the last 20 episode returns and whether every
-- action was valid.
local function play(agent, steps, seed, sync)
  local env = envs.make("InvalidAction-v0")
  local obs = env:reset(seed)
  local mask, rets, valid = {}, {}, true
  for step = 1, steps do
    -- background mode, made independent of the trainer thread's speed (an
    -- ASan build is slow): each batch's update finishes and is published
    -- before the next batch is acted
    if sync and step % 128 == 1 and step > 1 then agent:publish(true) end
    env:action_mask(obs, mask)
    local a = agent:act(obs, mask)
    valid = valid and mask[a + 1] == 1
    local r, term, trunc
    obs, r, term, trunc = env:step(a)
    local ret = agent:observe(r, term, trunc)
    agent:train_step(nil)
    if ret then
      rets[#rets + 1] = ret
      obs = env:reset()
    end
  end
  local s = 0
  for i = #rets - 19, #rets do s = s + rets[i] end
  return s / 20, valid
end

local function masked_agent(extra)
  local o = {obs = 100, action = rl.discrete(50), seed = 3, n_steps = 128, batch_size = 64,
             epochs = 4, lr = 2e-3, gamma = 0}
  for k, v in pairs(extra or {}) do o[k] = v end
  return rl.agent(o)
end

describe("rl.agent with invalid-action masks", function()
  it("never draws a masked action and learns the masked game", function()
    local agent = masked_agent()
    local mean, valid = play(agent, 30000, 1)
    assert.is_true(valid)
    assert.is_true(mean >= 19, "mean return " .. mean .. " (max 20)")
    agent:close()
  end)

  it("learns it in background mode too, the masks going with each batch", function()
    local agent = masked_agent({background = true, publish = "manual"})
    local mean, valid = play(agent, 30000, 2, true)
    agent:finish()
    assert.is_true(valid)
    assert.is_true(mean >= 19, "mean return " .. mean .. " (max 20)")
    agent:close()
  end)

  it("takes act(obs, deterministic) and act(obs, mask, deterministic)", function()
    local agent = masked_agent()
    local obs = {}
    for i = 1, 100 do obs[i] = 0 end
    local mask = {}
    for i = 1, 50 do mask[i] = 0 end
    mask[7] = 1
    assert.equal(6, agent:act(obs, mask, true))  -- the only valid action
    agent:observe(0, false, false)
    assert.equal(6, (agent:act(obs, mask)))
    agent:observe(0, false, false)
    local a = agent:act(obs, true)                -- the old form: greedy, no mask
    assert.is_true(a >= 0 and a < 50)
    agent:observe(0, false, false)
    mask[7] = 0
    local msg = raises(function() agent:act(obs, mask) end, "agent: act: masks: row 0 masks every action")
    assert.is_truthy(msg:find("agent_masks_spec.lua", 1, true), msg)  -- the caller's line
    agent:close()
  end)

  it("refuses a mask for actions that take none", function()
    local agent = rl.agent{obs = 2, action = rl.box(1, -1, 1), seed = 1}
    raises(function() agent:act({0, 0}, {1}) end, "take none")
    agent:close()
  end)
end)

describe("rl.agent with composite actions", function()
  it("acts in Skirmish-v0 (multi-discrete) under its per-component masks", function()
    local env = envs.make("Skirmish-v0")
    local agent = rl.agent{obs = env.observation_space, action = rl.multi_discrete{3, 2, 4},
                           seed = 1, n_steps = 64, batch_size = 32}
    local obs = env:reset(1)
    local mask, offs = {}, {0, 3, 5}
    local nvec = {3, 2, 4}
    for _ = 1, 300 do
      env:action_mask(obs, mask)
      local a = agent:act(obs, mask)
      for c = 1, 3 do
        assert.is_true(a[c] >= 0 and a[c] < nvec[c])
        assert.equal(1, mask[offs[c] + a[c] + 1])
      end
      local r, term, trunc
      obs, r, term, trunc = env:step(a)
      agent:observe(r, term, trunc)
      agent:train_step(nil)
      if term or trunc then obs = env:reset() end
    end
    assert.is_true(agent.updates >= 3)
    agent:close()
  end)

  it("acts in MiniGolf-v0 (hybrid) with a club index and a power", function()
    local env = envs.make("MiniGolf-v0")
    local agent = rl.agent{obs = env.observation_space,
                           action = rl.hybrid{rl.discrete(4), rl.box(1, -1, 1)}, seed = 2,
                           n_steps = 32, batch_size = 32}
    local obs = env:reset(1)
    for _ = 1, 100 do
      local a = agent:act(obs)
      assert.equal(2, #a)
      assert.is_true(a[1] == math.floor(a[1]) and a[1] >= 0 and a[1] < 4)
      local r, term, trunc
      obs, r, term, trunc = env:step(a)
      agent:observe(r, term, trunc)
      agent:train_step(nil)
      if term or trunc then obs = env:reset() end
    end
    assert.is_true(agent.updates >= 2)
    agent:close()
  end)
end)

describe("rl.agent with a bounded hybrid action", function()
  it("gives the game the box part within its bounds and learns from the sample", function()
    local agent = rl.agent{obs = 2, action = rl.hybrid{rl.discrete(3), rl.box(1, -0.1, 0.1)},
                           seed = 5, n_steps = 16, batch_size = 16, init_log_std = 1}
    local outside = 0
    for _ = 1, 40 do
      local a = agent:act({0.2, -0.3})
      assert.is_true(a[2] >= -0.1 and a[2] <= 0.1)
      local stored = agent.cur.act[(agent.cur.n) * 2 + 2]  -- the row just put
      if stored < -0.1 or stored > 0.1 then outside = outside + 1 end
      agent:observe(0, false, false)
    end
    -- with a std of e the samples leave [-0.1, 0.1] often; the buffer keeps them so
    assert.is_true(outside > 0)
    agent:close()
  end)
end)

describe("rl.agent with dict and grid observations", function()
  it("takes a dict observation as its named parts, flattened in name order", function()
    local space = rl.spaces.dict({pos = rl.spaces.box(2, -1, 1), hp = rl.spaces.box(1, 0, 1)})
    local agent = rl.agent{obs = space, action = rl.discrete(2), seed = 1, n_steps = 8, batch_size = 8}
    assert.equal(3, agent.obs_dim)
    for _ = 1, 20 do
      local a = agent:act({pos = {0.1, -0.2}, hp = 0.5})
      assert.is_true(a == 0 or a == 1)
      agent:observe(1, false, false)
      agent:train_step(nil)
    end
    -- what the buffer holds is the flat row: hp first, then pos
    local o = agent.cur.obs
    assert.equal(0.5, o[1])
    assert.is_true(math.abs(o[2] - 0.1) < 1e-7 and math.abs(o[3] + 0.2) < 1e-7)
    raises(function() agent:act({pos = {0.1}, hp = 0.5}) end, "part 'pos' must be 2 numbers")
    agent:close()
  end)

  it("puts Conv2d layers before its hidden layers for a grid observation", function()
    local grid = rl.spaces.box({2, 4, 4}, 0, 1)
    local agent = rl.agent{obs = grid, conv = {{out = 3, kernel = 3}}, hidden = {16},
                           action = rl.discrete(3), seed = 2, n_steps = 8, batch_size = 8}
    assert.equal(1, #agent.policy:spec().conv)
    local obs = {}
    for j = 1, 32 do obs[j] = (j % 3 == 0) and 1 or 0 end
    for _ = 1, 16 do
      agent:act(obs)
      agent:observe(0.5, false, false)
      agent:train_step(nil)
    end
    assert.is_true(agent.updates >= 1)
    agent:close()
  end)
end)
