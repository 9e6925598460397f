-- tests/lua/checkpoint_spec.lua — safetensors checkpoints: core.st_write /
-- st_read, the tensor names and metadata of policy files, rl.load, and the
-- exact resume of a trainer (train N, save, resume, train M == train N,
-- save, train M, bit for bit).

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local rl = require "moonrl"
local core = rl.core
local json = require "moonrl.json"
local raises = H.raises

local function tmp(name) return os.tmpname() .. "_" .. name .. ".safetensors" end

local function equal_tensors(a, b)
  if a:numel() ~= b:numel() then return false end
  a, b = a:reshape(a:numel()), b:reshape(b:numel())
  for i = 1, a:numel() do if a[i] ~= b[i] then return false end end
  return true
end

-- The raw header of a safetensors file, parsed.
local function header(path)
  local f = assert(io.open(path, "rb"))
  local b = f:read(8)
  local n = 0
  for i = 8, 1, -1 do n = n * 256 + b:byte(i) end
  local h = json.decode(f:read(n))
  f:close()
  return h
end

describe("core.st_write / st_read", function()
  it("round-trip tensors and metadata exactly", function()
    local p = tmp("rt")
    local a = core.tensor{{1.5, -2, 3}, {4, 5, 1 / 3}}
    assert.is_true(core.st_write(p, {a = a, b = {7, 8}}, {k = "v"}))
    local t, m = core.st_read(p)
    os.remove(p)
    assert.are.same({2, 3}, t.a:shape())
    assert.is_true(equal_tensors(a, t.a))
    assert.are.same({7, 8}, t.b:totable())
    assert.are.equal("v", m.k)
  end)

  it("return nil and a message for missing or corrupt files", function()
    local t, err = core.st_read("/nonexistent/x.safetensors")
    assert.is_nil(t)
    assert.is_truthy(err:find("nonexistent", 1, true))
    local p = tmp("bad")
    local f = assert(io.open(p, "wb")); f:write("\255\255\255\255\0\0\0\0{"); f:close()
    t, err = core.st_read(p)
    os.remove(p)
    assert.is_nil(t)
    assert.is_string(err)
    -- a folder that cannot exist: its parent is a regular file
    local file = tmp("plain")
    f = assert(io.open(file, "wb")); f:write("x"); f:close()
    local ok, werr = core.st_write(file .. "/dir/x.safetensors", {a = {1}})
    os.remove(file)
    assert.is_nil(ok)
    assert.is_string(werr)
  end)

  it("raise on misuse", function()
    raises(function() core.st_write("x", {a = "no"}) end, "'a'")
    raises(function() core.st_write("x", {a = {1}}, {k = 1}) end, "metadata")
    raises(function() core.st_read() end, "bad argument #1")
  end)
end)

describe("generator and optimiser state", function()
  it("restore a policy's sampling stream exactly", function()
    local p = rl.policy{obs = 2, action = rl.discrete(3), seed = 4}
    local s = core.rng_state(p)
    assert.are.equal(48, #s)
    local a = {}
    for i = 1, 20 do a[i] = p:act({0.1, 0.2}) end
    core.set_rng_state(p, s)
    for i = 1, 20 do assert.are.equal(a[i], (p:act({0.1, 0.2}))) end
    raises(function() core.set_rng_state(p, "short") end, "48 bytes")
  end)

  it("copy Adam's moments and step count", function()
    local net = rl.value{obs = 2, hidden = {4}}
    local o = rl.adam{params = net}
    net:value_loss({{1, 2}, {3, 4}}, {1, 0})
    o:step(net, 1e-2)
    local st = core.optim_state(o)
    assert.are.equal(1, st.steps)
    assert.is_true(st.m:norm() > 0 and st.v:norm() > 0)
    local o2 = rl.adam{params = net}
    core.set_optim_state(o2, st)
    local st2 = core.optim_state(o2)
    assert.are.equal(1, st2.steps)
    assert.is_true(equal_tensors(st.m, st2.m) and equal_tensors(st.v, st2.v))
  end)
end)

describe("policy files", function()
  it("use nn.Sequential names and shapes", function()
    local p = rl.policy{obs = 3, action = rl.box(2, -1, 1), hidden = {8, 5}, seed = 2}
    local path = tmp("pol")
    p:save(path)
    local h = header(path)
    assert.are.same({8, 3}, h["policy.0.weight"].shape)
    assert.are.same({8}, h["policy.0.bias"].shape)
    assert.are.same({5, 8}, h["policy.2.weight"].shape)
    assert.are.same({2, 5}, h["policy.4.weight"].shape)
    assert.are.same({2}, h["policy.log_std"].shape)
    assert.are.equal("F32", h["policy.0.weight"].dtype)
    assert.are.equal("moonrl", h.__metadata__.format)
    local spec = json.decode(h.__metadata__.policy)
    assert.are.same({8, 5}, spec.hidden)
    -- the first weight row is the first 3 parameters (golden flat order)
    local t = core.st_read(path)
    local flat = p:params()
    assert.are.equal(flat[1], t["policy.0.weight"]:get(1, 1))
    assert.are.equal(flat[3], t["policy.0.weight"]:get(1, 3))
    assert.are.equal(flat[8 * 3 + 1], t["policy.0.bias"][1])
    local q, info = rl.load(path)
    os.remove(path)
    assert.are.equal("policy", info.kind)
    assert.is_true(equal_tensors(p:params(), q:params()))
    assert.are.same(p:spec(), q:spec())
  end)

  it("write an empty hidden list as a JSON array (readers outside Lua need [])", function()
    local p = rl.policy{obs = 3, action = rl.discrete(2), hidden = {}}
    local path = tmp("lin")
    p:save(path)
    local _, m = core.st_read(path)
    assert.is_truthy(m.policy:find('"hidden":[]', 1, true))
    local q = rl.load(path)
    os.remove(path)
    assert.are.same(p:spec(), q:spec())
    local v = rl.value{obs = 3, hidden = {}}
    v:save(path)
    _, m = core.st_read(path)
    os.remove(path)
    assert.is_truthy(m.value:find('"hidden":[]', 1, true))
  end)

  it("keep a hybrid of one gaussian part a hybrid, with its log_std", function()
    local p = rl.policy{obs = 3, action = rl.hybrid{rl.box(2, -1, 1)}, hidden = {4}, seed = 5,
                        init_log_std = -0.5}
    assert.are.equal("hybrid", p:spec().action.type)
    local path = tmp("hyb1")
    p:save(path)
    local t = core.st_read(path)
    assert.are.equal(2, t["policy.log_std.0"]:numel())
    local q = rl.load(path)
    os.remove(path)
    assert.are.same(p:spec(), q:spec())
    assert.is_true(equal_tensors(p:params(), q:params()))
  end)

  it("refuse a file whose tensors do not fit the architecture", function()
    local p = rl.policy{obs = 2, action = rl.discrete(2), hidden = {4}}
    local path = tmp("cut")
    p:save(path)
    local t, m = core.st_read(path)
    t["policy.2.weight"] = core.zeros(2, 3)
    core.st_write(path, t, m)
    raises(function() rl.load(path) end, "policy.2.weight")
    t["policy.2.weight"] = nil
    core.st_write(path, t, m)
    raises(function() rl.load(path) end, "missing")
    os.remove(path)
  end)
end)

describe("trainer checkpoints", function()
  local function make(algo, extra)
    local env = require("moonrl.vec").make("CartPole-v1", {num_envs = 4, seed = 11})
    local o = {env = env, seed = 5, n_steps = 32, progress = false, total_steps = 2048,
               lr = function(p) return 1e-3 * (1 - 0.5 * p) end}
    if algo == "ppo" then o.batch_size, o.epochs = 64, 3 end
    for k, v in pairs(extra or {}) do o[k] = v end
    return rl[algo](o)
  end

  for _, case in ipairs({{"ppo"}, {"ppo", {normalize_obs = true}},
                         {"ppo", {normalize_obs = true, normalize_reward = true}},
                         {"trpo", {norm_reward = true}},
                         {"ppo", {kl_penalty = {beta = 0.5, target_kl = 0.01}}},
                         {"trpo"}, {"trpo", {lagrangian = {lambda = 1}}}, {"npg"}}) do
    local algo, extra = case[1], case[2]
    local keys = {}
    for k in pairs(extra or {}) do keys[#keys + 1] = k end
    table.sort(keys)
    local what = algo .. (#keys > 0 and (" " .. table.concat(keys, "+")) or "")
    it("resume exactly: " .. what, function()
      local path = tmp("ck")
      local a = make(algo, extra)
      a:learn(512)
      a:save(path)
      local saved = a.policy:params()
      a:learn(768)
      local b = make(algo, (function()
        local e = {resume = path}
        for k, v in pairs(extra or {}) do e[k] = v end
        return e
      end)())
      assert.are.equal(512, b.steps_done)
      b:learn(768)
      os.remove(path)
      assert.is_false(equal_tensors(saved, a.policy:params()))   -- training went on
      assert.is_true(equal_tensors(a.policy:params(), b.policy:params()), "policy")
      assert.is_true(equal_tensors(a.value:params(), b.value:params()), "value")
      assert.are.same(a:episode_stats(), b:episode_stats())
      assert.are.equal(a.updates, b.updates)
      assert.are.equal(a.kl_beta, b.kl_beta)
      assert.are.equal(a.lagrange_lambda, b.lagrange_lambda)
      if a.obs_rms then assert.are.same(a.obs_rms:state(), b.obs_rms:state()) end
      if a.rew_norm then assert.are.same(a.rew_norm:state(), b.rew_norm:state()) end
    end)
  end

  it("save the normalisers, load the old format and refuse hostile statistics", function()
    local path = tmp("ckn")
    local a = make("ppo", {normalize_obs = true, normalize_reward = true})
    a:learn(128)
    a:save(path)
    local meta = header(path).__metadata__
    local on, rn = json.decode(meta.obs_norm), json.decode(meta.reward_norm)
    assert.are.same(a.obs_rms:state(), on)
    assert.are.equal(a.rew_norm:state().count, rn.count)
    -- a file with the statistics only (the Lua trainer's old format) turns
    -- observation normalisation on; hostile statistics are refused
    local tensors = core.st_read(path)
    local function rewrite(obs_norm)
      local m = {}
      for k, v in pairs(meta) do m[k] = v end
      m.reward_norm, m.obs_norm = nil, obs_norm
      assert(core.st_write(path, tensors, m))
    end
    rewrite(json.encode({mean = {1, 2, 3, 4}, var = {1, 1, 1, 4}, count = 7}))
    local b = make("ppo", {resume = path})
    assert.are.same({mean = {1, 2, 3, 4}, var = {1, 1, 1, 4}, count = 7}, b.obs_rms:state())
    assert.is_nil(b.rew_norm)
    rewrite(json.encode({mean = {1, 2, 3, 4}, var = {1, -1, 1, 4}, count = 7}))
    raises(function() make("ppo", {resume = path}) end, "var[1] = -1")
    rewrite(json.encode({mean = {1, 2, 3, 4}, var = {1, 1, 1, 4}, count = 0}))
    raises(function() make("ppo", {resume = path}) end, "obs_norm: rms set_state: count 0")
    os.remove(path)
    a:close()
    b:close()
  end)

  it("refuse to resume another algorithm or shape", function()
    local path = tmp("ck2")
    local a = make("ppo")
    a:learn(128)
    a:save(path)
    raises(function() make("trpo", {resume = path}) end, "a ppo checkpoint cannot resume a trpo")
    raises(function() make("ppo", {resume = path, n_steps = 16}) end, "32 steps")
    os.remove(path)
  end)
end)
