-- tests/lua/conv_spec.lua — convolutional policies through the binding (both
-- VMs): the options and their errors, spec() read back, the network's
-- values by hand (parameter order conv weight [F][C][k][k] and bias, then
-- the Linears, then log_std), acting and gradients, and the safetensors
-- checkpoint with the names and shapes PyTorch's nn.Sequential would give.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local rl = require "moonrl"
local core = rl.core
local ck = require "moonrl.checkpoint"
local raises = H.raises

local function grid_policy(action, seed)
  return core.policy{obs_shape = {2, 5, 4},
                     conv = {{out = 3, kernel = 3, stride = 1, padding = 1},
                             {out = 4, kernel = 2, stride = 2}},
                     hidden = {6}, action = action, seed = seed or 1}
end

describe("conv policies", function()
  it("takes obs_shape and conv layers, and reads them back", function()
    local p = grid_policy({type = "discrete", n = 3})
    assert.equal(40, p:obs_dim())
    -- 2->3 k3: 54 + 3; 3->4 k2: 48 + 4; 16 -> 6: 102; 6 -> 3: 21
    assert.equal(54 + 3 + 48 + 4 + 96 + 6 + 18 + 3, p:nparams())
    local s = p:spec()
    assert.same({2, 5, 4}, s.obs_shape)
    assert.same({{out = 3, kernel = 3, stride = 1, padding = 1},
                 {out = 4, kernel = 2, stride = 2, padding = 0}}, s.conv)
    local q = core.policy(s)
    assert.equal(p:nparams(), q:nparams())
    p:close()
    q:close()
  end)

  it("is made by rl.policy from a {C, H, W} space and prints its layers", function()
    local p = rl.policy{obs = {shape = {2, 5, 4}}, conv = {{out = 3, kernel = 3, padding = 1}},
                        action = rl.discrete(3), hidden = {8}}
    assert.equal(40, p:obs_dim())
    assert.equal("moonrl.Policy (obs 2x5x4, conv {3 k3 s1 p1}, discrete 3, hidden {8}, tanh, "
                 .. p:nparams() .. " params)", tostring(p))
    p:close()
  end)

  it("refuses bad conv options with the reason", function()
    local a = {type = "discrete", n = 2}
    raises(function() core.policy{obs_shape = {2, 5, 4}, conv = {{out = 3, kernel = 9}}, action = a} end,
           "kernel 9 is larger than its padded input")
    raises(function() core.policy{obs_shape = {2, 5, 4}, conv = {{out = 3, kernel = 3, pad = 1}}, action = a} end,
           "unknown key pad")
    raises(function() core.policy{obs_shape = {2, 5, 4}, conv = {{kernel = 3}}, action = a} end,
           "conv[1].out")
    raises(function() core.policy{obs_shape = {2, 5}, action = a} end, "obs_shape")
    raises(function() core.policy{obs_dim = 4, conv = {{out = 1, kernel = 1}}, action = a} end,
           "needs obs_shape")
    raises(function() core.policy{obs_dim = 41, obs_shape = {2, 5, 4}, action = a} end,
           "obs_dim 41 differs")
    raises(function() core.policy{obs_shape = {1, 3, 3}, conv = {{out = 1, kernel = 2, stride = 0}}, action = a} end,
           "stride")
  end)

  it("computes Conv2d, relu, flatten, Linear as by hand", function()
    -- 1x2x2 grid, one 2x2 filter {1, 2; 3, 4} + 0.5, relu, Linear 2·h − 1
    local p = core.policy{obs_shape = {1, 2, 2}, conv = {{out = 1, kernel = 2}}, hidden = {},
                          activation = "relu", action = {type = "box", n = 1}}
    assert.equal(8, p:nparams())
    p:set_params{1, 2, 3, 4, 0.5, 2, -1, 0}
    assert.equal(20, p:forward({1, 1, 1, 1})[1])       -- 2·10.5 − 1
    assert.equal(-1, p:forward({-1, -1, -1, -1})[1])   -- relu(−9.5) = 0
    assert.equal(2 * (1 * 1 + 2 * 0 + 3 * 2 + 4 * 0 + 0.5) - 1, p:forward({1, 0, 2, 0})[1])
    p:close()
  end)

  it("acts, evaluates and takes gradients on grid rows", function()
    local p = grid_policy({type = "discrete", n = 3}, 5)
    local obs = {}
    for i = 1, 40 do obs[i] = math.sin(i) end
    local a = p:act(obs)
    assert.is_true(a >= 0 and a < 3)
    local rows = core.zeros(4, 40)
    for r = 1, 4 do for c = 1, 40 do rows[r][c] = math.cos(r * c) end end
    local acts, logp = p:act(rows)
    assert.same({4}, logp:shape())
    local lp = p:evaluate(rows, acts)
    for i = 1, 4 do assert.is_true(H.close(lp[i], logp[i], 1e-5)) end
    p:close()
  end)

  it("makes convolutional value nets: values, gradients, checkpoint", function()
    raises(function() core.net{obs_shape = {2, 5, 4}, conv = {{out = 3, kernel = 9}}} end,
           "kernel 9 is larger than its padded input")
    raises(function() core.net{in_dim = 7, obs_shape = {2, 5, 4}} end, "in_dim 7 differs")
    -- by hand: 1x2x2, filter {1, 2; 3, 4} + 0.5, relu, then 2·h − 1
    local n = core.net{obs_shape = {1, 2, 2}, conv = {{out = 1, kernel = 2}}, hidden = {},
                       activation = "relu"}
    assert.equal(4, n:in_dim())
    assert.equal(7, n:nparams())
    n:set_params{1, 2, 3, 4, 0.5, 2, -1}
    local y = n:forward(core.tensor{{1, 1, 1, 1}, {-1, -1, -1, -1}})
    assert.equal(20, y[1][1])
    assert.equal(-1, y[2][1])
    -- value loss gradient against differences of the loss
    local obs = core.tensor{{1, 0.5, -0.25, 2}, {0.3, 0.1, 1, -0.5}}
    local tgt = core.tensor{3, -2}
    local loss = n:value_loss(obs, tgt)
    local g = n:grad()
    local p = n:params()
    for i = 1, 7 do
      local q = core.zeros(7)
      for j = 1, 7 do q[j] = p[j] end
      local h = 1e-3
      q[i] = p[i] + h; n:set_params(q); local up = n:value_loss(obs, tgt)
      q[i] = p[i] - h; n:set_params(q); local dn = n:value_loss(obs, tgt)
      assert.is_true(math.abs((up - dn) / (2 * h) - g[i]) <= 1e-2 * (1 + math.abs(g[i])),
                     ("param %d: %g vs %g"):format(i, (up - dn) / (2 * h), g[i]))
    end
    n:set_params(p)
    assert.is_true(loss > 0)
    local v = core.net{obs_shape = {2, 5, 4}, conv = {{out = 3, kernel = 3, padding = 1}},
                       hidden = {8}, seed = 4}
    local path = os.tmpname() .. "_convv.safetensors"
    ck.save_value(v, path)
    local w = ck.load_value(path)
    local a, b = v:params(), w:params()
    for i = 1, a:numel() do assert.equal(a[i], b[i]) end
    assert.same(v:spec().conv, w:spec().conv)
    os.remove(path)
    n:close(); v:close(); w:close()
  end)

  it("saves and loads a checkpoint under PyTorch's Sequential names", function()
    local p = grid_policy({type = "box", n = 2}, 9)
    local path = os.tmpname() .. "_conv.safetensors"
    ck.save_policy(p, path)
    local t = core.st_read(path)
    assert.same({3, 2, 3, 3}, t["policy.0.weight"]:shape())
    assert.same({3}, t["policy.0.bias"]:shape())
    assert.same({4, 3, 2, 2}, t["policy.2.weight"]:shape())
    -- index 4 is the Flatten: the Linears are 5 and 7
    assert.same({6, 16}, t["policy.5.weight"]:shape())
    assert.same({2, 6}, t["policy.7.weight"]:shape())
    assert.same({2}, t["policy.log_std"]:shape())
    assert.equal(p:params()[1], t["policy.0.weight"][1][1][1][1])
    local q = ck.load_policy(path)
    local a, b = p:params(), q:params()
    assert.equal(a:numel(), b:numel())
    for i = 1, a:numel() do assert.equal(a[i], b[i]) end
    assert.same(p:spec().conv, q:spec().conv)
    os.remove(path)
    p:close()
    q:close()
  end)
end)
