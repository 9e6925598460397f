-- tests/lua/bgtrain_spec.lua — core.bgtrain (moonrl.BgTrain): PPO updates on a
-- background thread while the game keeps acting.  Shared by every binding.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local core = require "moonrl.core"
local raises = H.raises

local OD, NA, T = 6, 4, 128
local CFG = {epochs = 2, minibatch_size = 32, lr = 1e-3, ent_coef = 0.01}

-- the game's objects (policy, value net, two Adams), the same for a seed
local function objects(seed)
  local p = core.policy{obs_dim = OD, hidden = {32, 32}, action = {type = "discrete", n = NA},
                        seed = seed}
  local v = core.net{in_dim = OD, hidden = {32, 32}, out_dim = 1, seed = seed + 1}
  return {p = p, v = v, po = core.optim{kind = "adam", n = p:nparams()},
          vo = core.optim{kind = "adam", n = v:nparams()}}
end

local function close_all(o)
  for _, x in pairs(o) do x:close() end
end

local function same(a, b)
  local n = a:numel()
  if b:numel() ~= n then return false end
  for i = 1, n do
    if a[i] ~= b[i] then return false end
  end
  return true
end

-- T frames of a little world acted in with policy p: the batch table
local function play(p, seed)
  local s = seed
  local function rnd()
    s = (s * 1103515245 + 12345) % 2147483648
    return s / 2147483648 * 2 - 1
  end
  local b = {obs = {}, actions = {}, logp = {}, rewards = {}, terminated = {}, truncated = {}}
  local o = {}
  for i = 1, OD do o[i] = rnd() end
  for t = 1, T do
    local a, lp = p:act(o)
    local row = {}
    for i = 1, OD do row[i] = o[i] end
    b.obs[t], b.actions[t], b.logp[t] = row, a, lp
    b.rewards[t] = (a == t % NA) and 1 or 0
    b.terminated[t] = t % 37 == 0
    b.truncated[t] = t % 50 == 0
    for i = 1, OD do o[i] = rnd() end
  end
  b.boot_obs = o
  return b
end

local function wait_playing(bg, p, frames)
  local n = 0
  while bg:poll() == "running" do
    p:act({0.1, 0.2, 0.3, 0.4, 0.5, 0.6})
    n = n + 1
    if frames then frames[1] = n end
  end
  return bg:poll()
end

describe("core.bgtrain", function()
  it("trains off the game thread; publish gives what a synchronous update gives", function()
    local g, ref = objects(5), objects(5)
    local bg = core.bgtrain(g.p, g.v, g.po, g.vo)
    assert.equal("idle", bg:poll())
    assert.is_nil(bg:report())
    -- a rollout filled by hand: obs, actions, behaviour logp, values, advantages, returns
    local ro = core.rollout{steps = T, num_envs = 1, obs_dim = OD, action_width = 1}
    local b = play(g.p, 7)
    local function f(name, ...) return ro:field(name):reshape(...) end
    local obs, act, logp = f("obs", T, OD), f("actions", T), f("logp", T)
    local val, adv, ret = f("values", T), f("advantages", T), f("returns", T)
    for t = 1, T do
      obs[t] = b.obs[t]
      act[t] = b.actions[t]
      logp[t] = b.logp[t]
      val[t] = 0.1 * (t % 5)
      adv[t] = b.rewards[t] - 0.25
      ret[t] = val[t] + adv[t]
    end
    local before = g.p:params()
    bg:submit(ro, CFG)
    local frames = {0}
    assert.equal("done", wait_playing(bg, g.p, frames))
    assert.is_true(same(before, g.p:params()), "the game's policy changed before publish")
    core.ppo_update(ref.p, ref.v, ref.po, ref.vo, ro, CFG)
    bg:publish(g.p, g.v)
    assert.equal("idle", bg:poll())
    assert.is_true(same(g.p:params(), ref.p:params()), "policy differs from ppo_update")
    assert.is_true(same(g.v:params(), ref.v:params()), "value net differs from ppo_update")
    assert.is_false(same(before, g.p:params()))
    local rep = bg:report()
    assert.equal(2, rep.epochs_done)
    assert.equal(2 * T / 32, rep.minibatches)
    assert.equal(1, bg:updates())
    -- the same batch as a table of arrays
    local tb = {obs = b.obs, actions = b.actions, logp = b.logp,
                values = val, advantages = adv, returns = ret}
    bg:submit(tb, CFG)
    assert.equal("done", bg:wait())
    core.ppo_update(ref.p, ref.v, ref.po, ref.vo, ro, CFG)
    bg:publish(g.p)
    assert.is_true(same(g.p:params(), ref.p:params()))
    assert.equal(2, bg:updates())
    bg:close()
    bg:close()
    raises(function() bg:poll() end, "closed moonrl.BgTrain")
    assert.equal("moonrl.BgTrain (closed)", tostring(bg))
    ro:close()
    close_all(g)
    close_all(ref)
  end)

  it("computes values and GAE with its own critic from boot_obs, the same every run", function()
    local res = {}
    for k = 1, 2 do
      local g = objects(9)
      local bg = core.bgtrain(g.p, g.v, g.po, g.vo)
      local b = play(g.p, 3)
      b.gamma, b.lambda = 0.99, 0.95
      b.final_obs = b.obs  -- any rows: only the truncated ones are read
      bg:submit(b, CFG)
      assert.equal("done", wait_playing(bg, g.p))
      bg:publish(g.p, g.v)
      res[k] = {g.p:params(), g.v:params()}
      assert.truthy(tostring(bg):find("moonrl.BgTrain (idle, 1 updates)", 1, true))
      bg:close()
      close_all(g)
    end
    assert.is_true(same(res[1][1], res[2][1]) and same(res[1][2], res[2][2]))
  end)

  it("takes a rollout filled by rollout_put/rollout_outcome and bootstraps it on the thread", function()
    local g, ref = objects(12), objects(12)
    local bg = core.bgtrain(g.p, g.v, g.po, g.vo)
    local b = play(g.p, 4)
    local function fill(ro)
      for t = 1, T do
        core.rollout_put(ro, t - 1, 0, b.obs[t], {b.actions[t]}, b.logp[t])
        core.rollout_outcome(ro, t - 1, 0, b.rewards[t], b.terminated[t], b.truncated[t],
                             b.truncated[t] and b.obs[t] or nil)
      end
    end
    local ro = core.rollout{steps = T, num_envs = 1, obs_dim = OD, action_width = 1}
    fill(ro)
    bg:submit({rollout = ro, boot_obs = b.boot_obs, gamma = 0.9, lambda = 0.8}, CFG)
    -- the rollout was copied: the game may refill it at once
    fill(ro)
    core.rollout_bootstrap(ro, ref.v, b.boot_obs)
    ro:gae(0.9, 0.8)
    core.ppo_update(ref.p, ref.v, ref.po, ref.vo, ro, CFG)
    assert.equal("done", wait_playing(bg, g.p))
    bg:publish(g.p, g.v)
    assert.is_true(same(g.p:params(), ref.p:params()) and same(g.v:params(), ref.v:params()))
    raises(function() bg:submit({rollout = ro}) end, "'boot_obs'")
    raises(function() bg:submit({rollout = 3, boot_obs = b.boot_obs}) end, "moonrl.Rollout")
    bg:close()
    ro:close()
    close_all(g)
    close_all(ref)
  end)

  it("reports a failed update and publishes nothing", function()
    local g = objects(2)
    local bg = core.bgtrain(g.p, g.v, g.po, g.vo)
    local b = play(g.p, 1)
    for t = 1, T do b.rewards[t] = 3e38 end  -- the returns overflow to Inf
    b.gamma = 1
    local before = g.p:params()
    bg:submit(b, CFG)
    assert.equal("failed", bg:wait())
    assert.truthy(bg:error():find("non-finite", 1, true))
    raises(function() bg:publish(g.p, g.v) end, "nothing to publish", "failed")
    assert.is_true(same(before, g.p:params()))
    assert.is_nil(bg:report())
    assert.equal(0, bg:updates())
    bg:close()
    close_all(g)
  end)

  it("refuses bad calls with a clear message", function()
    local g = objects(4)
    local bg = core.bgtrain(g.p, g.v, g.po, g.vo)
    raises(function() bg:publish(g.p) end, "nothing to publish")
    raises(function() bg:submit(42) end, "bad argument #1 to 'submit'", "moonrl.Rollout or batch table")
    raises(function() bg:submit({obs = {{1, 2}}}) end, "bad argument")
    local b = play(g.p, 5)
    raises(function() bg:submit(b, {reduce = true}) end, "reduce")
    b.rewards = nil
    raises(function() bg:submit(b) end, "'rewards'")
    local b2 = play(g.p, 5)
    b2.logp[3] = 0 / 0
    raises(function() bg:submit(b2) end, "finite")
    local small = core.net{in_dim = OD + 1, hidden = {4}, out_dim = 1}
    raises(function() core.bgtrain(g.p, small, g.po, g.vo) end, "does not fit")
    raises(function() core.bgtrain(g.p, g.v, g.po) end, "bad argument #4 to 'bgtrain'")
    -- busy: a second submit and sync_in are refused while running
    local b3 = play(g.p, 6)
    bg:submit(b3, {epochs = 50, minibatch_size = 16})
    if bg:poll() == "running" then
      raises(function() bg:submit(b3) end, "running")
    end
    -- cancel: the trainer is left as before the update
    bg:wait()
    local before = core.policy(g.p:spec())
    bg:sync_out(before)
    bg:submit(b3, {epochs = 1000, minibatch_size = 16})
    assert.equal("failed", bg:cancel())
    assert.truthy(bg:error():find("cancelled", 1, true))
    local after = core.policy(g.p:spec())
    bg:sync_out(after)
    assert.is_true(same(before:params(), after:params()))
    before:close()
    after:close()
    -- closing while running cancels the update and frees
    bg:submit(b3, {epochs = 1000, minibatch_size = 16})
    bg:close()
    small:close()
    close_all(g)
  end)

  it("sync_in loads the game's state; sync_out reads the trainer's for a checkpoint", function()
    local g, out = objects(8), objects(30)
    local bg = core.bgtrain(g.p, g.v, g.po, g.vo)
    bg:submit(play(g.p, 2), CFG)
    bg:wait()
    bg:sync_out(out.p, out.v, out.po, out.vo)
    bg:publish(g.p, g.v)
    assert.is_true(same(out.p:params(), g.p:params()) and same(out.v:params(), g.v:params()))
    assert.equal(2 * T / 32, out.po:steps())
    -- load: the game's (older) state replaces the trainer's
    local fresh = objects(8)
    bg:sync_in(fresh.p, fresh.v, fresh.po, fresh.vo)
    bg:sync_out(out.p, out.v, out.po, out.vo)
    assert.is_true(same(out.p:params(), fresh.p:params()))
    assert.equal(0, out.po:steps())
    assert.equal(core.rng_state(fresh.p), core.rng_state(out.p))
    local sgd = core.optim{kind = "sgd", n = g.p:nparams(), beta1 = 0.9}
    raises(function() bg:sync_in(nil, nil, sgd) end, "kind or size")
    sgd:close()
    bg:close()
    close_all(g)
    close_all(out)
    close_all(fresh)
  end)
end)
