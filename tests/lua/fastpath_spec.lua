-- tests/lua/fastpath_spec.lua — the engine's optional env fast path
-- (step_into/reset_into writing into a reused obs table) gives exactly the
-- trajectory of the Gymnasium step/reset, keeps the engine's checks, and the
-- PPO update (whose value side may run on a helper thread) repeats bit for
-- bit.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local core = require "moonrl.core"

if type(core.vecenv) ~= "function" then
  describe("env fast path", function()
    pending("this binding of moonrl.core has no vecenv")
  end)
  return
end

local vec = require "moonrl.vec"
local envs = require "moonrl.envs"

local function f32(x) return core.tensor({x})[1] end

describe("env fast path", function()
  it("CartPole-v1's step_into/reset_into follow step/reset exactly, auto-resets included", function()
    local N, seed = 3, 7
    local v = vec.make("CartPole-v1", {num_envs = N, threads = 0, seed = seed})
    local ref = {}
    for i = 1, N do ref[i] = envs.load("CartPole-v1", nil, {probe = false}) end
    local obs = v:reset(seed)
    local ro = {}
    for i = 1, N do
      ro[i] = ref[i]:reset(seed + i - 1)
      for j = 1, 4 do assert.are.equal(f32(ro[i][j]), obs[i][j]) end
    end
    local episodes = 0
    for t = 1, 300 do
      local acts = {}
      for i = 1, N do acts[i] = (t * 7 + i * 3) % 5 < 2 and 1 or 0 end
      local o, r, term = v:step(acts)
      for i = 1, N do
        local o2, r2, te2 = ref[i]:step(acts[i])
        assert.are.equal(r2, r[i])
        assert.are.equal(te2 and 1 or 0, term[i])
        if te2 then
          episodes = episodes + 1
          o2 = ref[i]:reset()  -- the engine continues the copy's generator
        end
        for j = 1, 4 do assert.are.equal(f32(o2[j]), o[i][j]) end
      end
    end
    assert.is_true(episodes > 3)
    v:close()
  end)

  it("checks what step_into reports like what step returns", function()
    if core.binding ~= "lua54" then
      pending("only the Lua 5.4 engine takes the fast path so far")
      return
    end
    local Bad = {}
    Bad.__index = Bad
    Bad.observation_space = {type = "box", shape = {2}, low = {-1, -1}, high = {1, 1}}
    Bad.action_space = {type = "discrete", n = 2}
    function Bad.new() return setmetatable({}, Bad) end
    function Bad:reset() return {0, 0}, {} end
    function Bad:step() return {0, 0}, 1, false, false, {} end
    function Bad:step_into(_, obs) obs[1], obs[2] = 0, 0 / 0; return 1, false, false end
    local v = vec.make(Bad, {num_envs = 1})
    v:reset()
    local ok, err = pcall(v.step, v, {0})
    assert.is_false(ok)
    assert.truthy(tostring(err):find("step_into returned non-finite obs[2] = NaN", 1, true), err)
    function Bad:step_into(_, obs) obs[1], obs[2] = 0, 0; return "x", false, false end
    v:reset()  -- a failed step leaves the batch needing one
    ok, err = pcall(v.step, v, {0})
    assert.is_false(ok)
    assert.truthy(tostring(err):find("step_into returned reward of type string", 1, true), err)
    v:close()
  end)

  it("an env may turn the fast path off with step_into = false", function()
    local Env = {}
    Env.__index = Env
    Env.observation_space = {type = "box", shape = {1}, low = {-1}, high = {1}}
    Env.action_space = {type = "discrete", n = 2}
    Env.step_into = false
    function Env.new() return setmetatable({t = 0}, Env) end
    function Env:reset() self.t = 0; return {0}, {} end
    function Env:step() self.t = self.t + 1; return {self.t / 10}, 1, false, false, {} end
    local v = vec.make(Env, {num_envs = 1})
    v:reset()
    local o = v:step({1})
    assert.are.equal(f32(0.1), o[1][1])
    v:close()
  end)

  it("PPO updates repeat bit for bit (value side on a helper thread)", function()
    local function run()
      local rl = require "moonrl"
      local env = vec.make("CartPole-v1", {num_envs = 4, threads = 0, seed = 3})
      local agent = rl.ppo{env = env, seed = 3, progress = false, n_steps = 64,
                           batch_size = 128, epochs = 2, lr = 1e-3, clip_vf = 0.2,
                           ent_coef = 0.01}
      agent:learn(1024)
      local p, w = agent.policy:params():totable(), agent.value:params():totable()
      agent:close()
      env:close()
      return p, w
    end
    local p1, v1 = run()
    local p2, v2 = run()
    assert.are.same(p1, p2)
    assert.are.same(v1, v2)
  end)
end)
