-- tests/lua/agent_bg_spec.lua — rl.agent with background = true: the update
-- runs on the trainer's thread (core.bgtrain) while the game acts with the
-- last published parameters.  The update of a batch equals the sliced one
-- bit for bit; parameters change only at publish (or train_step in "auto");
-- a refused update leaves them; save/load round-trips while an update
-- runs; close while running is safe; it learns CartPole with a fixed lag.
-- Runs under Lua 5.4 and LuaJIT.  (Thread timing never decides a result:
-- where it could, the test waits with publish(true).)

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local rl = require "moonrl"
local core = rl.core
local envs = require "moonrl.envs"
local raises = H.raises

local function same(a, b)
  if a:numel() ~= b:numel() then return false end
  for i = 1, a:numel() do if a[i] ~= b[i] then return false end end
  return true
end

local function agent(extra)
  local o = {obs = 3, action = rl.discrete(3), hidden = {16}, n_steps = 32,
             batch_size = 8, epochs = 2, seed = 7}
  for k, v in pairs(extra or {}) do o[k] = v end
  return rl.agent(o)
end

-- One step of the toy world of agent_spec (reward 1 for the arg max).
local function step(ag, rng, obs)
  for j = 1, 3 do obs[j] = rng:normal() end
  local a = ag:act(obs)
  local best = 0
  for j = 2, 3 do if obs[j] > obs[best + 1] then best = j - 1 end end
  ag:observe(a == best and 1 or 0, rng:uniform() < 0.1, false)
end

describe("rl.agent (background)", function()
  it("checks its options and reports its mode", function()
    raises(function() agent{background = 1} end, "background", "boolean")
    raises(function() agent{background = true, publish = "sometimes"} end, "publish", "manual")
    local ag = agent{background = true}
    assert.are.equal("background", ag:mode())
    assert.is_false(ag:busy())
    assert.truthy(tostring(ag):find("background", 1, true))
    local sl = agent()
    assert.are.equal("sliced", sl:mode())
    assert.is_nil(sl:publish())
    ag:close(); sl:close()
  end)

  it("gives the sliced update bit for bit when each update is published at once", function()
    -- both agents see the same world; the sliced one finishes each update
    -- right after the batch is handed over, the background one waits for
    -- it and publishes at the same step
    local sl, bg = agent(), agent{background = true, publish = "manual"}
    local r1, r2 = core.rng(3), core.rng(3)
    local o1, o2 = {}, {}
    local n = 0
    for _ = 1, 32 * 4 + 1 do
      step(sl, r1, o1)
      step(bg, r2, o2)
      if sl:busy() then
        local s1 = sl:finish()
        assert.is_true(bg:busy())
        local s2 = bg:publish(true)
        n = n + 1
        assert.is_table(s2)
        assert.is_true(s2.background)
        for _, k in ipairs({"policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction",
                            "grad_norm", "explained_variance", "behaviour_ratio", "behaviour_kl",
                            "minibatches", "epochs_done"}) do
          assert.are.equal(s1[k], s2[k], k)
        end
        assert.is_true(same(sl.policy:params(), bg.policy:params()), "policy after update " .. n)
        assert.is_true(same(sl.value:params(), bg.value:params()), "value after update " .. n)
        assert.are.equal(sl.updates, bg.updates)
      end
    end
    assert.are.equal(4, n)
    -- the lag was seen and corrected by the same ratio in both
    assert.is_true(sl.last_stats.behaviour_ratio ~= 1)
    -- switching the background agent back gives the sliced agent's moments
    bg:set_background(false)
    assert.are.equal("sliced", bg:mode())
    assert.are.equal(sl.policy_optim:steps(), bg.policy_optim:steps())
    assert.is_true(same(core.optim_state(sl.value_optim).m, core.optim_state(bg.value_optim).m))
    assert.are.equal(core.rng_state(sl.rng), core.rng_state(bg.rng))
    sl:close(); bg:close()
  end)

  it("switches modes mid-run (the T key of examples/love) and continues bit for bit", function()
    -- sl stays sliced; sw goes background while a sliced update is half
    -- done, then back to sliced while a background batch waits
    local sl, sw = agent(), agent()
    local r1, r2 = core.rng(4), core.rng(4)
    local o1, o2 = {}, {}
    for t = 1, 32 * 5 + 1 do
      step(sl, r1, o1)
      step(sw, r2, o2)
      if sl:busy() then
        if t == 33 then
          -- a third of the sliced update, then the switch finishes it
          assert.is_nil(sl:train_step(nil, 3)); assert.is_nil(sw:train_step(nil, 3))
          sl:finish()
          sw:set_background(true)
          assert.are.equal("background", sw:mode())
          assert.is_false(sw:busy())
        elseif t == 32 * 3 + 1 then
          sl:finish()
          assert.is_true(sw:busy())
          sw:set_background(false)                 -- waits, publishes, takes the state back
          assert.are.equal("sliced", sw:mode())
        else
          sl:finish()
          if sw:mode() == "background" then sw:publish(true) else sw:finish() end
        end
        assert.is_true(same(sl.policy:params(), sw.policy:params()), "policy at step " .. t)
        assert.is_true(same(sl.value:params(), sw.value:params()), "value at step " .. t)
      end
    end
    assert.are.equal(5, sl.updates)
    assert.are.equal(5, sw.updates)
    assert.are.equal(sl.policy_optim:steps(), sw.policy_optim:steps())
    sl:close(); sw:close()
  end)

  it("changes the acting parameters only at publish", function()
    for _, mode in ipairs({"auto", "manual"}) do
      local ag = agent{background = true, publish = mode}
      local rng, obs = core.rng(5), {}
      for _ = 1, 33 do step(ag, rng, obs) end       -- the 33rd act submits
      local p0 = ag.policy:params()
      ag.bg:wait()                                   -- the update is done ...
      for _ = 1, 10 do step(ag, rng, obs) end        -- ... and acting goes on unchanged
      assert.is_true(same(p0, ag.policy:params()))
      assert.are.equal(1, ag.bg:updates())           -- trained, not published
      local s = ag:train_step(2)
      if mode == "auto" then
        assert.is_table(s)                           -- train_step published
      else
        assert.is_nil(s)
        assert.is_true(same(p0, ag.policy:params()))
        s = ag:publish()
        assert.is_table(s)
      end
      assert.is_false(same(p0, ag.policy:params()))
      assert.is_nil(ag:publish())                    -- nothing new
      ag:close()
    end
  end)

  it("keeps the parameters when the update is refused, then goes on", function()
    local ag = rl.agent{obs = 2, action = rl.discrete(2), hidden = {8}, n_steps = 16,
                        batch_size = 4, epochs = 2, seed = 1, background = true}
    for i = 1, 16 do ag:act({0.1 * i, 1}); ag:observe(3e38, false, false) end
    local p0, v0 = ag.policy:params(), ag.value:params()
    ag:act({0, 0}); ag:observe(0, false, false)
    local s, err = ag:publish(true)
    assert.is_nil(s)
    assert.truthy(err:find("update refused", 1, true), err)
    assert.are.equal(err, ag.last_error)
    assert.are.equal(1, ag.failed_updates)
    assert.is_nil(ag:train_step())                  -- reported once
    assert.is_true(same(p0, ag.policy:params()))
    assert.is_true(same(v0, ag.value:params()))
    assert.are.equal(0, ag.updates)
    for i = 1, 16 do ag:act({0.1 * i, 1}); ag:observe(1, false, false) end
    assert.is_table(ag:finish())
    assert.are.equal(1, ag.updates)
    assert.is_false(same(p0, ag.policy:params()))
    ag:close()
  end)

  it("saves and loads while an update runs; the checkpoint resumes bit for bit", function()
    local path = os.tmpname()
    local ag = agent{background = true, publish = "manual"}
    local rng, obs = core.rng(8), {}
    for _ = 1, 33 do step(ag, rng, obs) end        -- an update is submitted
    local p0 = ag.policy:params()
    ag:save(path)                                   -- waits for it; publishes nothing
    assert.is_true(same(p0, ag.policy:params()))
    -- the file holds the trained parameters: those publish gives
    assert.is_table(ag:publish())
    local p = rl.load(path)
    assert.is_true(same(ag.policy:params(), p:params()))
    p:close()
    -- resumed from it, a sliced and a background agent continue alike
    -- (moments and the shuffling stream went through the file)
    local sl = agent{seed = 99}
    local b3 = agent{seed = 42, background = true, publish = "manual"}
    sl:load(path)
    b3:load(path)
    for _, x in ipairs({sl, b3}) do
      assert.is_true(same(ag.policy:params(), x.policy:params()))
      assert.is_true(same(ag.value:params(), x.value:params()))
      assert.are.equal(ag.updates, x.updates)
      assert.are.equal(ag.steps, x.steps)
    end
    local r1, r2 = core.rng(9), core.rng(9)
    local o1, o2 = {}, {}
    for _ = 1, 33 do
      step(b3, r1, o1); step(sl, r2, o2)
      if sl:busy() then sl:finish(); b3:publish(true) end
    end
    assert.are.equal(2, sl.updates)
    assert.are.equal(2, b3.updates)
    assert.is_true(same(b3.policy:params(), sl.policy:params()))
    assert.is_true(same(b3.value:params(), sl.value:params()))
    b3:close()
    -- loading into a background agent while its update runs cancels it
    local b2 = agent{background = true, seed = 5}
    for _ = 1, 33 do step(b2, rng, obs) end
    b2:load(path)
    assert.is_false(b2:busy())
    local q = rl.load(path)
    assert.is_true(same(q:params(), b2.policy:params()))
    assert.is_nil(b2:publish(true))                  -- the cancelled update is not reported
    for _ = 1, 33 do step(b2, rng, obs) end
    assert.is_table(b2:finish())
    q:close(); ag:close(); sl:close(); b2:close()
    os.remove(path)
  end)

  it("closes safely while an update runs, and pretrains in background mode", function()
    local ag = agent{background = true, n_steps = 64, batch_size = 8, epochs = 50, hidden = {64, 64}}
    local rng, obs = core.rng(2), {}
    for _ = 1, 65 do step(ag, rng, obs) end
    ag:close()
    assert.is_nil(ag.bg)
    -- behaviour cloning goes to the trainer too
    local b = agent{background = true}
    for i = 1, 40 do b:record({i % 3, 0, 0}, i % 3) end
    local before = b.policy:params()
    b:pretrain{epochs = 5}
    assert.is_false(same(before, b.policy:params()))
    local cloned = b.policy:params()
    b:set_background(false)                          -- the trainer had the cloned policy
    assert.is_true(same(cloned, b.policy:params()))
    b:close()
  end)

  it("learns CartPole while the game acts with parameters up to 128 steps stale", function()
    -- published (waiting) every 128 steps: a fixed lag, the same bits on
    -- every machine, while the thread trains between publishes
    local function run(seed)
      local env = envs.make("CartPole-v1")
      local ag = rl.agent{obs = 4, action = rl.discrete(2), hidden = {64, 64}, n_steps = 512,
                          epochs = 10, seed = seed, background = true, publish = "manual"}
      local obs = env:reset(seed)
      local first, last = {}, {}
      for t = 1, 12000 do
        local a = ag:act(obs)
        local o, r, te, tr = env:step(a)
        local ret = ag:observe(r, te, tr)
        if ret then
          if #first < 20 then first[#first + 1] = ret end
          last[#last + 1] = ret
          obs = env:reset()
        else
          obs = o
        end
        if t % 128 == 0 then ag:publish(true) end
      end
      local s = 0
      for i = #last - 9, #last do s = s + last[i] end
      local fs = 0
      for i = 1, #first do fs = fs + first[i] end
      assert.is_true(ag.updates >= 20)
      assert.is_true(fs / #first < 40)
      ag:close()
      return s / 10
    end
    for _, seed in ipairs({1, 2}) do
      local m = run(seed)
      assert.is_true(m > 100, ("seed %d: mean of the last 10 returns %.1f"):format(seed, m))
    end
  end)
end)
