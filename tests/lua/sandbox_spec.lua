-- tests/lua/sandbox_spec.lua — untrusted env scripts (docs/SECURITY.md):
-- the sandbox's globals, the hostile fixtures (tests/lua/fixtures/hostile_*)
-- contained with clear errors, instruction budgets at load/new/reset/step,
-- memory caps, trusted mode, hot reload, and the numerical guards of the
-- trainers (a NaN reward, a NaN in the rollout, a refused update leaving
-- every parameter bit-identical).
--
-- Worker-state features (memory caps, budgets while loading, the guarded
-- string metatable) run under both bindings (under LuaJIT on the worker
-- states of libmoonrl_luajit.so); hot reload is the Lua 5.4 binding's.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local core = require "moonrl.core"
local envs = require "moonrl.envs"
local raises = H.raises

local FIX = H.root .. "tests/lua/fixtures/"
local lua54 = core.binding == "lua54" and type(core.vecenv) == "function"
local vec = type(core.vecenv) == "function" and require("moonrl.vec") or nil

-- Worker states exist under LuaJIT too when libmoonrl_luajit.so is built:
-- an env file with threads = 2 then reports 2 threads.
local env_workers = lua54
if not lua54 and vec then
  local ok, v = pcall(vec.make, "CartPole-v1", {num_envs = 2, threads = 2})
  env_workers = ok and v.threads == 2
  if ok then v:close() end
end

local function workers(name, f)
  if env_workers then it(name, f) else pending(name .. " (needs env worker states)") end
end

local function lua54_only(name, f)
  if lua54 then it(name, f) else pending(name .. " (Lua 5.4 binding only)") end
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function same_floats(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i] ~= b[i] then return false end
  end
  return true
end

describe("the sandbox of env scripts", function()
  it("offers no os, io, debug, package, require, coroutine, getfenv or string.dump", function()
    local senv = envs.sandbox_env(FIX)
    for _, name in ipairs({"os", "io", "debug", "package", "require", "coroutine",
                           "getfenv", "setfenv", "newproxy", "jit", "module"}) do
      assert.is_nil(senv[name], name)
    end
    assert.is_nil(senv.string.dump)
    assert.is_nil(senv.math.random)
    assert.equal(senv, senv._G)
  end)

  it("loads text chunks only, into the sandbox", function()
    local senv = envs.sandbox_env(FIX)
    local f, err = senv.load(string.dump(function() return 1 end))
    assert.is_nil(f)
    assert.truthy(err:find("binary", 1, true) or err:find("mode", 1, true))
    local g, gerr = senv.load("return 1", "x", "b")
    assert.is_nil(g)
    assert.truthy(gerr:find("text", 1, true))
    assert.is_nil(senv.load("return os")())
    assert.equal(senv, senv.load("return _G")())
    assert.equal(7, senv.loadstring("return 3 + 4")())
    -- a reader function works too, and still text only
    local parts, i = {"return ", "42"}, 0
    assert.equal(42, senv.load(function() i = i + 1 return parts[i] end)())
    local bin = string.dump(function() end)
    assert.is_nil((senv.load(function() local b = bin; bin = nil; return b end)))
  end)

  it("reads files only inside the env's folder, as text", function()
    local senv = envs.sandbox_env(FIX)
    local Env = senv.dofile("Counter.lua")
    assert.equal("Counter", Env.id)
    assert.is_function(senv.loadfile("Counter.lua"))
    raises(function() senv.loadfile("/etc/passwd") end, "relative path inside the env's folder")
    raises(function() senv.dofile("../helper.lua") end, "without '..'")
    raises(function() senv.loadfile(42) end, "relative to the env's folder")
    raises(function() envs.sandbox_env().loadfile("Counter.lua") end, "no env folder")
    -- a binary file is refused even inside the folder
    local d = tmpdir()
    write(d .. "/bin.lua", string.dump(function() return 1 end))
    local f, err = envs.sandbox_env(d .. "/").loadfile("bin.lua")
    assert.is_nil(f)
    assert.truthy(err:find("binary", 1, true) or err:find("mode", 1, true))
    os.execute("rm -rf '" .. d .. "'")
  end)

  it("refuses __gc finalizers, collectgarbage control and string metatable access", function()
    local senv = envs.sandbox_env()
    raises(function() senv.setmetatable({}, {__gc = function() end}) end, "__gc")
    assert.is_table(senv.setmetatable({}, {__index = {}}))
    assert.is_number(senv.collectgarbage("count"))
    raises(function() senv.collectgarbage("stop") end, "only collectgarbage('count')")
    raises(function() senv.collectgarbage() end, "only collectgarbage('count')")
    assert.is_nil(senv.getmetatable(""))
    local mt = {}
    assert.equal(mt, senv.getmetatable(setmetatable({}, mt)))
  end)

  it("bounds string.rep and costly patterns, and keeps ordinary ones", function()
    local s = envs.sandbox_env().string
    raises(function() s.rep("x", 2 ^ 40) end, "string.rep", "exceeds")
    assert.equal("abab", s.rep("ab", 2))
    assert.equal("a,a", s.rep("a", 2, ","))
    local long = ("a"):rep(5000)
    raises(function() s.find(long, ("a*"):rep(12) .. "b") end, "too costly")
    raises(function() s.gsub(long, "a-a-a-b", "") end, "too costly")
    assert.equal(1, (s.find(long, ("a*"):rep(12) .. "b", 1, true)) and 1 or 1) -- plain: no pattern
    assert.equal(7, (s.find("hello world", "w%a+")))
    assert.equal("x-y", (s.gsub("x y", "%s+", "-")))
    assert.equal("12", s.match("ab12", "%d+"))
    local n = 0
    for _ in s.gmatch("a,b,c", "[^,]+") do n = n + 1 end
    assert.equal(3, n)
  end)

  it("gives each script its own globals: setmetatable on _G stays inside", function()
    local a, b = envs.sandbox_env(), envs.sandbox_env()
    setmetatable(a, {__index = function() return "hijacked" end})
    assert.is_nil(b.anything)
    assert.is_nil(rawget(_G, "anything"))
  end)

  workers("contains every escape attempt of hostile_escape.lua", function()
    local v = vec.make(FIX .. "hostile_escape.lua", {num_envs = 2, threads = 2})
    local obs = v:reset()
    -- 27 probes, each refused (Env.new raises naming any that got through)
    assert.equal(27, obs[1][1])
    assert.equal(27, obs[2][1])
    v:close()
  end)

  workers("lets the same probes through in trusted mode (so they are real)", function()
    local msg = raises(function()
      vec.make(FIX .. "hostile_escape.lua", {trusted = true, config = {harmless = true}})
    end, "sandbox escaped: ")
    for _, name in ipairs({"debug", "package", "string_dump", "string_metatable",
                           "math_random", "collectgarbage_stop", "rawget_G_os"}) do
      assert.truthy(msg:find(name, 1, true), name)
    end
  end)

  it("runs a trusted script with the host's globals through envs.load", function()
    local d = tmpdir()
    write(d .. "/T.lua", [[
local Env = {id = "T", observation_space = {type = "box", shape = {1}, low = {0}, high = {1}},
             action_space = {type = "discrete", n = 2}}
Env.__index = Env
local clock = os.clock
function Env.new() return setmetatable({has_io = io ~= nil}, Env) end
function Env:reset() return {0}, {} end
function Env:step() return {0}, 0, false, false, {} end
return Env]])
    raises(function() envs.load(d .. "/T.lua") end, "raised while loading", "os")
    local e = envs.load(d .. "/T.lua", nil, {trusted = true})
    assert.is_true(e.has_io)
    -- the script's globals stay its own
    assert.is_nil(rawget(_G, "Env"))
    os.execute("rm -rf '" .. d .. "'")
  end)
end)

describe("instruction budgets", function()
  local B = "instruction budget of 100000 exceeded"
  workers("stop a file whose top level never finishes", function()
    raises(function() vec.make(FIX .. "hostile_toplevel_loop.lua", {budget = 100000}) end,
           "hostile_toplevel_loop.lua:2: " .. B, "raised while loading")
  end)
  for _, kind in ipairs({"loop", "recursion", "pcall"}) do
    workers("stop a " .. kind .. " in Env.new", function()
      raises(function()
        vec.make(FIX .. "hostile_loop.lua", {num_envs = 2, budget = 100000, config = {at = "new", kind = kind}})
      end, "hostile_loop.lua", "Env.new failed", B)
    end)
    for _, threads in ipairs({0, 2}) do
      workers(("stop a %s in reset and step (threads = %d)"):format(kind, threads), function()
        -- reset: the probe at load catches it first
        raises(function()
          vec.make(FIX .. "hostile_loop.lua", {num_envs = 2, threads = threads, budget = 100000,
                                               config = {at = "reset", kind = kind}})
        end, "hostile_loop.lua", B)
        local v = vec.make(FIX .. "hostile_loop.lua", {num_envs = 4, threads = threads, budget = 100000,
                                                       config = {at = "step", kind = kind, after = 3}})
        v:reset()
        v:step({0, 0, 0, 0})
        v:step({0, 0, 0, 0})
        raises(function() v:step({0, 0, 0, 0}) end, "env 'hostile_loop' copy 0: ", B)
        -- the engine survives: a reset starts over, and the next loop is
        -- stopped the same way
        v:reset(1)
        v:step({0, 0, 0, 0})
        v:step({0, 0, 0, 0})
        raises(function() v:step({0, 0, 0, 0}) end, "copy 0", B)
        v:close()
      end)
    end
  end
  workers("do not count moonrl's own work at load against a small budget", function()
    -- the file's own calls (Counter's reset makes a generator: ~400
    -- instructions) fit; the loader's checks, validation and probe are more
    local v = vec.make(FIX .. "Counter.lua", {num_envs = 3, threads = 0, budget = 2000})
    v:reset()
    v:step({1, 1, 1})
    v:close()
  end)
end)

describe("memory caps", function()
  local CAP = 16 * 1024 * 1024
  for _, kind in ipairs({"rep", "table", "sneaky"}) do
    for _, threads in ipairs({0, 2}) do
      workers(("stop a memory hog (%s, threads = %d) with an error naming env and copy"):format(kind, threads), function()
        local v = vec.make(FIX .. "hostile_memory.lua", {num_envs = 2, threads = threads, memory = CAP,
                                                         config = {kind = kind, after = 2}})
        local used, cap = v.handle:memory()
        assert.equal(CAP, cap)
        assert.is_true(used > 0 and used < CAP)
        v:reset()
        v:step({0, 0})
        raises(function() v:step({0, 0}) end, "env 'hostile_memory' copy 0: memory cap of " .. CAP .. " bytes exceeded")
        v:close()
      end)
    end
  end
  workers("refuse a huge string.rep before allocating", function()
    local v = vec.make(FIX .. "hostile_memory.lua", {num_envs = 1, config = {kind = "huge", after = 2}})
    v:reset()
    v:step({0})
    raises(function() v:step({0}) end, "copy 0", "string.rep", "exceeds")
    v:close()
  end)
  workers("fail cleanly when the cap is too small to load the env", function()
    raises(function() vec.make("CartPole-v1", {memory = 10000}) end, "memory cap of 10000 bytes exceeded")
    raises(function() vec.make("CartPole-v1", {memory = 80000}) end, "copy 0: memory cap of 80000 bytes exceeded")
    raises(function() vec.make("CartPole-v1", {memory = 1000}) end, "memory")
    -- and a normal env under a sane cap runs
    local v = vec.make("CartPole-v1", {num_envs = 4, threads = 2, memory = 8 * 1024 * 1024})
    v:reset()
    for _ = 1, 50 do v:step({0, 1, 0, 1}) end
    v:close()
  end)
  workers("need an env file (inline envs run in the caller's state)", function()
    local E = {observation_space = {type = "box", shape = {1}}, action_space = {type = "discrete", n = 2}}
    E.__index = E
    function E.new() return setmetatable({}, E) end
    function E:reset() return {0} end
    function E:step() return {0}, 0, false, false end
    raises(function() vec.make(E, {memory = 1e6}) end, "memory cap needs an env file")
  end)
end)

describe("hot reload", function()
  local function env_text(reward, extra, obs_dim)
    return ([[
local Env = {}
Env.__index = Env
Env.id = "Reloadable"
Env.observation_space = {type = "box", shape = {%d}, low = %s, high = %s}
Env.action_space = {type = "discrete", n = 2}
%s
function Env.new(c) return setmetatable({t = 0}, Env) end
function Env:reset(seed) self.t = 0 return %s, {} end
function Env:step(a)
  self.t = self.t + 1
  local o = %s
  o[1] = self.t
  return o, %s, self.t >= 3, false, {}
end
return Env
]]):format(obs_dim or 1, obs_dim == 2 and "{0, 0}" or "{0}", obs_dim == 2 and "{9, 9}" or "{9}",
           extra or "", obs_dim == 2 and "{0, 0}" or "{0}", obs_dim == 2 and "{0, 0}" or "{0}", reward)
  end

  for _, threads in ipairs({0, 2}) do
    lua54_only(("switches every copy at its next episode boundary (threads = %d)"):format(threads), function()
      local d = tmpdir()
      local path = d .. "/Reloadable.lua"
      write(path, env_text(1))
      local v = vec.make(path, {num_envs = 4, threads = threads, seed = 5})
      v:reset()
      local _, r = v:step({0, 0, 0, 0})
      assert.same({1, 1, 1, 1}, r:totable())
      write(path, env_text(2))
      assert.is_true(v:reload())
      -- the running episodes finish with the old code (steps 2 and 3) ...
      _, r = v:step({0, 0, 0, 0}); assert.same({1, 1, 1, 1}, r:totable())
      _, r = v:step({0, 0, 0, 0}); assert.same({1, 1, 1, 1}, r:totable())
      -- ... and the next ones run the new code
      _, r = v:step({0, 0, 0, 0}); assert.same({2, 2, 2, 2}, r:totable())
      assert.equal(1, v.handle:reloads())

      -- a file that fails to load: reported, not raised; the old code runs on
      write(path, env_text(3, "error('broken on purpose')"))
      local ok, err = v:reload()
      assert.is_nil(ok)
      assert.truthy(err:find("broken on purpose", 1, true), err)
      assert.truthy(err:find("copy 0", 1, true), err)
      for _ = 1, 4 do _, r = v:step({0, 0, 0, 0}); assert.same({2, 2, 2, 2}, r:totable()) end
      -- unchanged since the last attempt: nothing to do
      assert.is_false(v.handle:reload(true))
      -- a file with other spaces does not fit the batch
      write(path, env_text(4, nil, 2))
      ok, err = v:reload()
      assert.is_nil(ok)
      assert.truthy(err:find("does not fit", 1, true), err)
      -- a syntax error
      write(path, "local Env = {")
      ok, err = v:reload()
      assert.is_nil(ok)
      assert.truthy(err:find("cannot load env", 1, true), err)
      _, r = v:step({0, 0, 0, 0}); assert.same({2, 2, 2, 2}, r:totable())
      -- a good file again; reset() is a boundary for every copy
      write(path, env_text(5))
      assert.is_true(v:reload())
      v:reset()
      _, r = v:step({0, 0, 0, 0}); assert.same({5, 5, 5, 5}, r:totable())
      assert.equal(2, v.handle:reloads())
      v:close()
      os.execute("rm -rf '" .. d .. "'")
    end)
  end

  lua54_only("reloads on file change with reload = 'auto', reporting failures", function()
    local d = tmpdir()
    local path = d .. "/Reloadable.lua"
    write(path, env_text(1))
    local reports = {}
    local v = vec.make(path, {num_envs = 2, reload = "auto", reload_every = 2,
                              on_reload = function(ok, err) reports[#reports + 1] = {ok, err} end})
    v:reset()
    local r
    for _ = 1, 3 do _, r = v:step({0, 0}) end
    assert.same({1, 1}, r:totable())
    assert.equal(0, #reports)   -- nothing changed
    -- a new mtime is needed: make sure the clock moved
    os.execute("sleep 0.01")
    write(path, env_text(7))
    for _ = 1, 6 do _, r = v:step({0, 0}) end
    assert.equal(1, #reports)
    assert.is_true(reports[1][1])
    assert.same({7, 7}, r:totable())
    os.execute("sleep 0.01")
    write(path, env_text(8, "error('oops')"))
    for _ = 1, 6 do _, r = v:step({0, 0}) end
    assert.equal(2, #reports)
    assert.is_nil(reports[2][1])
    assert.truthy(reports[2][2]:find("oops", 1, true))
    assert.same({7, 7}, r:totable())
    v:close()
    os.execute("rm -rf '" .. d .. "'")
  end)

  lua54_only("refuses to reload an inline env", function()
    local E = {observation_space = {type = "box", shape = {1}}, action_space = {type = "discrete", n = 2}}
    E.__index = E
    function E.new() return setmetatable({}, E) end
    function E:reset() return {0} end
    function E:step() return {0}, 0, false, false end
    local v = vec.make(E, {num_envs = 1})
    raises(function() v:reload() end, "inline env")
    v:close()
  end)
end)

describe("numerical guards through a trainer", function()
  if not vec or not core.optim_state then
    pending("needs moonrl.vec and core.optim_state")
    return
  end
  local rl = require "moonrl"

  local function state(t)
    return {p = t.policy:params():totable(), v = t.value:params():totable(),
            po = core.optim_state(t.policy_optim), vo = core.optim_state(t.value_optim)}
  end
  local function assert_same_state(a, b)
    assert.is_true(same_floats(a.p, b.p), "policy parameters changed")
    assert.is_true(same_floats(a.v, b.v), "value parameters changed")
    for _, k in ipairs({"po", "vo"}) do
      assert.equal(a[k].steps, b[k].steps)
      assert.is_true(same_floats(a[k].m:totable(), b[k].m:totable()), k .. ".m changed")
      assert.is_true(same_floats(a[k].v:totable(), b[k].v:totable()), k .. ".v changed")
    end
  end

  it("a NaN reward after some steps stops learn with the env, copy and field", function()
    local t = rl.ppo{env = FIX .. "vec_counter.lua",
                     env_opts = {num_envs = 2, config = {fail = "nan_reward", fail_seed = 4, fail_step = 40}},
                     n_steps = 16, quiet = true, seed = 3, epochs = 1}
    local last
    local msg = raises(function()
      t:learn(10000, {on_update = function() last = state(t) end})
    end, "env 'vec_counter' copy 1: ", "non-finite reward = NaN")
    assert.truthy(last, "some updates ran before the NaN: " .. msg)
    assert_same_state(last, state(t))
    t:close()
  end)

  for _, algo in ipairs({"ppo", "trpo", "npg"}) do
    it(algo .. ": a NaN in the rollout is refused, naming field, step and env", function()
      local t = rl[algo]{env = "CartPole-v1", env_opts = {num_envs = 2}, n_steps = 16, quiet = true, seed = 1}
      t:collect(); t:update(); t:collect()
      local before = state(t)
      t.rollout:field("returns")[5][2] = 0 / 0
      raises(function() t:update() end, algo .. ": update refused", "'returns'", "NaN at step 5, env 1",
             "parameters unchanged")
      assert_same_state(before, state(t))
      t.rollout:field("returns")[5][2] = 0
      t.rollout:field("obs")[2][1][3] = 1 / 0
      raises(function() t:update() end, "'obs'", "inf at step 2, env 0, element 3")
      assert_same_state(before, state(t))
      t:close()
    end)

    it(algo .. ": an update that leaves non-finite parameters is undone", function()
      local t = rl[algo]{env = "CartPole-v1", env_opts = {num_envs = 2}, n_steps = 16, quiet = true, seed = 4}
      t:collect(); t:update(); t:collect()
      local before = state(t)
      local real = t._update
      t._update = function(self)
        local st = real(self)
        -- (the optimiser itself refuses a step that would overflow, so the
        -- damage is done behind its back, through the raw parameter view)
        self.policy:params_view()[1] = math.huge
        return st
      end
      raises(function() t:update() end, "non-finite", "parameters unchanged")
      assert_same_state(before, state(t))
      t:close()
    end)

    it(algo .. ": an update that fails half-way leaves everything bit-identical", function()
      local t = rl[algo]{env = "CartPole-v1", env_opts = {num_envs = 2}, n_steps = 16, quiet = true, seed = 2}
      t:collect(); t:update(); t:collect()
      local before = state(t)
      local prng = core.rng_state(t.policy)
      local real = t._update
      -- a NaN injected in the policy gradient, after the value net moved
      t._update = function(self)
        local st = real(self)
        local g = self.policy:grad()
        g[1] = 0 / 0
        self.policy_optim:step(self.policy, 1e-3)
        return st
      end
      raises(function() t:update() end)
      assert_same_state(before, state(t))
      -- the generator too (bytes 33-40 hold a stale spare when the flag is 0)
      local now = core.rng_state(t.policy)
      assert.equal(prng:sub(1, 32) .. prng:sub(41), now:sub(1, 32) .. now:sub(41))
      t._update = nil
      t:update()   -- and the trainer goes on
      t:close()
    end)
  end
end)
