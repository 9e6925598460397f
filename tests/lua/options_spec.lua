-- tests/lua/options_spec.lua — options given as tables of named fields are
-- read from the runtime's option tables (mrl_opts, runtime/options.c) by one
-- reader per binding: the same defaults, ranges, enum names and words under
-- both VMs, and a field given is the field used.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local core = require "moonrl.core"

-- The message of fn's error without the position prefix.
local function err(fn)
  return (H.error_of(fn):gsub("^[^:]*:%d+: ", ""))
end

local function setup()
  local p = core.policy{obs_dim = 2, hidden = {4}, action = {type = "discrete", n = 3}, seed = 3}
  local obs = {{0.1, -0.2}, {0.3, 0.4}, {-0.5, 0.2}}
  local acts, lp, adv = {0, 2, 1}, {-1.1, -1.0, -1.2}, {0.5, -0.3, 1.0}
  return p, obs, acts, lp, adv
end

describe("option tables", function()
  it("word wrong fields alike under both bindings", function()
    local p, obs, acts, lp, adv = setup()
    assert.are.equal("bad field 'clip_eps' (number expected, got string)",
                     err(function() p:ppo_loss(obs, acts, lp, adv, {clip_eps = "x"}) end))
    assert.are.equal("bad field 'normalize_advantages' (boolean expected, got number)",
                     err(function() p:ppo_loss(obs, acts, lp, adv, {normalize_advantages = 1}) end))
    assert.are.equal("bad field 'cg_iters' (integer in [1, 100000] expected, got 0)",
                     err(function() p:trpo_step(obs, acts, lp, adv, {cg_iters = 0}) end))
    assert.are.equal("bad field 'max_backtracks' (integer expected, got non-integer number)",
                     err(function() p:trpo_step(obs, acts, lp, adv, {max_backtracks = 1.5}) end))
    assert.are.equal("bad field 'baseline' ('none', 'mean', 'optimal', 'value' expected, got 'best')",
                     err(function() p:pg_gradient(obs, acts, adv, nil, nil, {0}, {baseline = "best"}) end))
    assert.are.equal("bad field 'beta2' (number expected, got boolean)",
                     err(function() core.optim{n = 3, beta2 = true} end))
    assert.are.equal("bad field 'activation' ('tanh' or 'relu' expected, got 'gelu')",
                     err(function() core.net{in_dim = 2, activation = "gelu"} end))
    assert.are.equal("bad field 'out_dim' (integer in [1, 65536] expected, got 0)",
                     err(function() core.net{in_dim = 2, out_dim = 0} end))
    local ro = core.rollout{steps = 2, num_envs = 1, obs_dim = 2}
    assert.are.equal("bad field 'update' (boolean expected, got string)",
                     err(function() core.rollout_set_norm(ro, {obs = core.rms(2), update = "no"}) end))
    local v = core.net{in_dim = 2}
    local po, vo = core.optim{n = p:nparams()}, core.optim{n = v:nparams()}
    assert.are.equal("bad field 'minibatch_size' (integer in [1, 16777216] expected, got 0)",
                     err(function() core.ppo_update(p, v, po, vo, ro, {minibatch_size = 0}) end))
    assert.are.equal("bad field 'kl_beta' (number expected, got string)",
                     err(function() core.ppo_update(p, v, po, vo, ro, {kl_beta = "x"}) end))
  end)

  it("use the fields given and the runtime's defaults for the rest", function()
    local p, obs, acts, lp, adv = setup()
    -- ppo_loss: the defaults are clip_eps 0.2, ent_coef 0, normalised advantages
    local a = p:ppo_loss(obs, acts, lp, adv)
    local b = p:ppo_loss(obs, acts, lp, adv, {clip_eps = 0.2, ent_coef = 0, normalize_advantages = true})
    assert.are.same(a, b)
    local c = p:ppo_loss(obs, acts, lp, adv, {normalize_advantages = false})
    assert.are_not.equal(a.loss, c.loss)
    -- pg_gradient: reinforce, no baseline, gamma 0.99 unless given
    local g1 = p:pg_gradient(obs, acts, adv, nil, nil, {0}, {})
    local g2 = p:pg_gradient(obs, acts, adv, nil, nil, {0}, {estimator = "reinforce", gamma = 0.99})
    local g3 = p:pg_gradient(obs, acts, adv, nil, nil, {0}, {gamma = 0.5})
    assert.are.same(g1:totable(), g2:totable())
    assert.are_not.same(g1:totable(), g3:totable())
    -- a net's fields
    local n = core.net{in_dim = 2, hidden = {3}, activation = "relu", out_dim = 2, out_gain = 0.5}
    local s = n:spec()
    assert.are.equal("relu", s.activation)
    assert.are.equal(2, s.out_dim)
    assert.are.equal(0.5, s.out_gain)
    assert.are.equal(1, core.net{in_dim = 2}:spec().out_dim)
  end)
end)
