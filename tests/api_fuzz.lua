-- tests/api_fuzz.lua [CALLS] [SEED] — calls every public function and method
-- of moonrl.core and the rl module with random arguments (nil, wrong types,
-- huge and negative sizes, NaN, ±inf, closed objects, callbacks that close
-- objects or re-enter), and asserts that each call either returns or raises
-- a Lua error with a string message — never a crash (the ASan build runs
-- this too: tests/api_fuzz.t), a leak or a hang (the .t bounds the time).
-- Then a set of deliberate re-entrancy scenarios.  Prints TAP.
--
-- Runs under the moonrl host (Lua 5.4) and under LuaJIT through
-- bindings/luajit/run.lua.  Written in the common subset.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = here .. "../scripts/?.lua;" .. here .. "../scripts/?/init.lua;" .. package.path

local rl = require "moonrl"
local core = rl.core
local unpack = unpack or table.unpack

local CALLS = tonumber(arg and arg[1]) or 20000
local SEED = tonumber(arg and arg[2]) or 1
-- arg[3] = "calls": the random calls only; "scenarios": those only;
-- arg[4]: run only the scenarios whose name contains this text
local ONLY = arg and arg[3]
local PICK = arg and arg[4]

-- A small deterministic generator (the same sequence on 5.4 and LuaJIT).
local state = SEED * 2654435761 % 2147483647 + 1
local function rand(n)
  state = (state * 48271) % 2147483647
  return state % n + 1
end

-- Every path a random call may write to is in a temporary folder: copies
-- of two fixtures (one env that loops), and a scratch file.
local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p '" .. tmpdir .. "'"))
for _, name in ipairs({"Counter.lua", "hostile_loop.lua", "hostile_toplevel_loop.lua"}) do
  local src = assert(io.open(here .. "lua/fixtures/" .. name, "rb"))
  local dst = assert(io.open(tmpdir .. "/" .. name, "wb"))
  dst:write(src:read("*a"))
  src:close(); dst:close()
end
local FIX = tmpdir .. "/"
local tmp = tmpdir .. "/scratch"

-- ------------------------------------------------------------ objects
local live = {}          -- objects made along the way (closed at the end)
local function keep(o) live[#live + 1] = o return o end

local function small_policy(kind)
  if kind == "box" then
    return keep(core.policy{obs_dim = 3, hidden = {4}, action = {type = "box", n = 2, low = {-1, -1}, high = {1, 1}}})
  end
  return keep(core.policy{obs_dim = 4, hidden = {4}, action = {type = "discrete", n = 2}})
end

local pool = {}
local function refresh_pool()
  pool.policy = small_policy()
  pool.bpolicy = small_policy("box")
  pool.net = keep(core.net{in_dim = 4, hidden = {4}, out_dim = 1})
  pool.optim = keep(core.optim{kind = "adam", n = pool.policy:nparams()})
  pool.rng = keep(core.rng(3))
  pool.tensor = core.zeros(4, 4)
  pool.vec1 = core.tensor({1, 2, 3, 4})
  pool.closed_policy = small_policy(); pool.closed_policy:close()
  pool.closed_net = keep(core.net{in_dim = 4, hidden = {}, out_dim = 1}); pool.closed_net:close()
  pool.view_of_closed = (function()
    local p = small_policy(); local v = p:grad(); p:close(); return v
  end)()
  if core.rms then
    pool.rms = keep(core.rms(4))
    pool.rn = keep(core.reward_norm(2))
  end
  if core.vecenv then
    pool.vecenv = keep(core.vecenv{source = "CartPole-v1", num_envs = 2})
    pool.rollout = keep(core.rollout{steps = 4, num_envs = 2, obs_dim = 4, action_width = 1})
  end
end
refresh_pool()

-- ------------------------------------------------------------ values
local values = {
  function() return nil end,
  function() return true end,
  function() return false end,
  function() return 0 end,
  function() return 1 end,
  function() return 2 end,
  function() return 4 end,
  function() return -1 end,
  function() return 0.5 end,
  -- huge sizes beyond every limit (core.zeros accepts up to 2^31 floats,
  -- 8 GiB, so sizes that multiply to less are left out: they are legal)
  function() return 1e10 end,
  function() return -1e9 end,
  function() return 2 ^ 31 + 1 end,
  function() return 2 ^ 53 end,
  function() return -2 ^ 63 end,
  function() return 2 ^ 64 end,
  function() return 0 / 0 end,
  function() return 1 / 0 end,
  function() return -1 / 0 end,
  function() return "" end,
  function() return "x" end,
  function() return "CartPole-v1" end,
  function() return "adam" end,
  function() return "discrete" end,
  function() return ("z"):rep(300) end,
  function() return tmp end,
  function() return "/nonexistent/dir/file" end,
  function() return FIX .. "Counter.lua" end,
  function() return {} end,
  function() return {1, 2, 3, 4} end,
  function() return {0 / 0, 1, 2, 3} end,
  function() return {{1, 2}, {3}} end,
  function() return {{1, 2, 3, 4}, {5, 6, 7, 8}} end,
  function() return {obs_dim = 4, action = {type = "discrete", n = 2}, hidden = {4}} end,
  function() return {obs_dim = -1, action = {type = "box", n = 1e9}} end,
  function() return {in_dim = 4, hidden = {2 ^ 40}, out_dim = 1} end,
  function() return {kind = "adam", n = -5} end,
  function() return {source = FIX .. "hostile_loop.lua", num_envs = 2, budget = 1000} end,
  function() return {source = "CartPole-v1", num_envs = 1e9} end,
  function() return {steps = 2 ^ 31, num_envs = 2, obs_dim = 4} end,
  function() return {epochs = 1e9, minibatch_size = -1, lr = 0 / 0} end,
  function() local t = {}; t[1] = t; return t end,
  function() return setmetatable({}, {__index = function() error("boom from __index") end}) end,
  function() return function() return 1 end end,
  function() return function() error("callback error") end end,
  function() return function() pool.policy:close() return 0.1 end end,
  function() return function() collectgarbage() return nil end end,
  function() return coroutine and coroutine.create(function() end) or nil end,
  function() return io.stdout end,
  function() return pool.policy end,
  function() return pool.bpolicy end,
  function() return pool.net end,
  function() return pool.optim end,
  function() return pool.rng end,
  function() return pool.tensor end,
  function() return pool.vec1 end,
  function() return pool.closed_policy end,
  function() return pool.closed_net end,
  function() return pool.view_of_closed end,
  function() return pool.vecenv end,
  function() return pool.rollout end,
  function() return pool.rms end,
  function() return pool.rn end,
  function() return {obs = pool.rms, reward = pool.rn, gamma = 2} end,
  function() return {obs = pool.rms, reward = pool.rn, update = false} end,
  function() return core.zeros(4) end,
  function() return core.zeros(1, 4) end,
  function() return core.zeros(2, 2, 2, 2) end,
}

local function random_args()
  local n = rand(5) - 1
  local args = {}
  for i = 1, n do args[i] = values[rand(#values)]() end
  return args, n
end

-- ------------------------------------------------------------ targets
local targets = {}   -- {name, fn, self_kind}
local function add_module(name, mod)
  local keys = {}
  for k, v in pairs(mod) do
    if type(v) == "function" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do targets[#targets + 1] = {name .. "." .. k, mod[k]} end
end
-- core functions, minus the ones that would wait, loop or read stdin on purpose
local skip = {}
local cfuncs = {}
for k, v in pairs(core) do if type(v) == "function" and not skip[k] then cfuncs[k] = v end end
add_module("core", cfuncs)

-- methods of each class, reached through a live object's metatable
local method_owners = {"policy", "bpolicy", "net", "optim", "rng", "tensor", "vecenv", "rollout",
                       "rms", "rn"}
local methods = {}
for _, owner in ipairs(method_owners) do
  local o = pool[owner]
  if o then
    local mt = getmetatable(o)
    local idx = mt and mt.__index
    if type(idx) == "table" then
      local keys = {}
      for k, v in pairs(idx) do
        if type(v) == "function" and k ~= "close" then keys[#keys + 1] = k end
      end
      table.sort(keys)
      for _, k in ipairs(keys) do
        methods[#methods + 1] = {owner .. ":" .. k, owner, k}
      end
    end
  end
end

-- the rl module's own functions (lazy submodules excluded: they load files)
local rlf = {}
for _, k in ipairs({"discrete", "box", "policy", "value", "adam", "sgd", "tensor", "zeros",
                    "returns", "gae", "clip_grad_norm", "kl_beta_update", "load", "make"}) do
  if type(rl[k]) == "function" then rlf[k] = rl[k] end
end
add_module("rl", rlf)

-- ------------------------------------------------------------ the run
local calls, raised, returned = 0, 0, 0
local failures = {}
local per_target = {}

local function record(name, ok, err)
  calls = calls + 1
  per_target[name] = (per_target[name] or 0) + 1
  if ok then
    returned = returned + 1
  else
    raised = raised + 1
    if type(err) ~= "string" then
      failures[#failures + 1] = name .. ": error object is a " .. type(err)
    end
  end
end

local t0 = os.clock()
local ntargets = #targets + #methods
if ONLY == "scenarios" then CALLS = 0 end
for i = 1, CALLS do
  local args, n = random_args()
  local j = rand(ntargets)
  if j <= #targets then
    local t = targets[j]
    local ok, err = pcall(t[2], unpack(args, 1, n))
    record(t[1], ok, err)
  else
    local m = methods[j - #targets]
    local self = pool[m[2]]
    -- sometimes the wrong self, sometimes a closed one
    local r = rand(10)
    if r == 1 then self = values[rand(#values)]() elseif r == 2 then self = pool.closed_policy end
    local f = getmetatable(pool[m[2]]).__index[m[3]]
    local ok, err = pcall(f, self, unpack(args, 1, n))
    record(m[1], ok, err)
  end
  -- objects closed by callbacks are replaced now and then
  if i % 500 == 0 then refresh_pool() end
  if i % 2000 == 0 then collectgarbage() end
end

-- ------------------------------------------------------------ scenarios
local scen = {}
local function scenario(name, f)
  if ONLY == "calls" then return end
  if PICK and not name:find(PICK, 1, true) then return end
  local ok, err = pcall(f)
  scen[#scen + 1] = {name, ok, err}
end

scenario("a schedule that closes the policy makes learn raise, not crash", function()
  local agent
  agent = rl.ppo{env = "CartPole-v1", env_opts = {num_envs = 2}, n_steps = 8, quiet = true, epochs = 1,
                 lr = function() agent.policy:close() return 1e-3 end}
  local ok, err = pcall(agent.learn, agent, 64)
  assert(not ok and tostring(err):find("closed"), "expected a 'closed' error, got " .. tostring(err))
  agent:close()
end)

scenario("on_update calling learn again (re-entrant learn) works or raises", function()
  local agent = rl.ppo{env = "CartPole-v1", env_opts = {num_envs = 2}, n_steps = 8, quiet = true, epochs = 1}
  local depth = 0
  local ok = pcall(agent.learn, agent, 64, {on_update = function()
    depth = depth + 1
    if depth < 3 then agent:learn(16) end
  end})
  assert(type(ok) == "boolean")
  agent:close()
end)

scenario("on_episode closing the env makes learn raise", function()
  local agent
  agent = rl.ppo{env = "CartPole-v1", env_opts = {num_envs = 2}, n_steps = 64, quiet = true, epochs = 1}
  local ok, err = pcall(agent.learn, agent, 1000, {on_episode = function() agent.env:close() end})
  assert(not ok and tostring(err):find("closed"), tostring(err))
  agent:close()
end)

if core.vecenv then
  local E = {observation_space = {type = "box", shape = {4}}, action_space = {type = "discrete", n = 2}}
  E.__index = E
  function E.new() return setmetatable({}, E) end
  function E:reset() return {0, 0, 0, 0} end
  local victim = {}
  function E:step()
    if victim.action then victim.action() end
    return {0, 0, 0, 0}, 1, false, false
  end

  scenario("an inline env closing its own VecEnv from step", function()
    local v = core.vecenv{source = E, num_envs = 2}
    v:reset()
    victim.action = function() v:close() end
    v:step({0, 1})   -- the close is a no-op while the step runs
    victim.action = function() v:step({0, 0}) end
    local ok, err = pcall(v.step, v, {0, 1})
    assert(not ok and tostring(err):find("closed"), tostring(err))
    victim.action = nil
    v:reset()
    v:step({1, 1})
    v:close()
  end)

  scenario("an inline env closing the policy, value net and rollout during collect", function()
    local v = core.vecenv{source = E, num_envs = 2}
    local p = core.policy{obs_dim = 4, hidden = {4}, action = {type = "discrete", n = 2}}
    local val = core.net{in_dim = 4, hidden = {4}, out_dim = 1}
    local ro = core.rollout{steps = 8, num_envs = 2, obs_dim = 4}
    v:reset()
    victim.action = function() p:close(); val:close(); ro:close(); v:close() end
    v:collect(ro, p, val)
    victim.action = function() p:act({0, 0, 0, 0}) end
    local ok, err = pcall(v.collect, v, ro, p, val)
    assert(not ok and tostring(err):find("closed"), tostring(err))
    victim.action = nil
    v:reset()
    v:collect(ro, p, val)
    p:close(); val:close(); ro:close(); v:close()
  end)

  scenario("an inline env closing the normalisers a rollout uses, during collect", function()
    if not core.rms then return end
    local v = core.vecenv{source = E, num_envs = 2}
    local p = core.policy{obs_dim = 4, hidden = {4}, action = {type = "discrete", n = 2}}
    local val = core.net{in_dim = 4, hidden = {4}, out_dim = 1}
    local ro = core.rollout{steps = 8, num_envs = 2, obs_dim = 4}
    local rms, rn = core.rms(4), core.reward_norm(2)
    core.rollout_set_norm(ro, {obs = rms, reward = rn})
    v:reset()
    local k = 0
    victim.action = function()
      k = k + 1
      if k == 3 then rms:close() elseif k == 6 then rn:close() end
    end
    v:collect(ro, p, val)   -- goes on without them once closed
    victim.action = nil
    v:collect(ro, p, val)
    p:close(); val:close(); ro:close(); v:close()
  end)
end

-- The instruction budget stops every loop (under LuaJIT too, where a
-- compiled loop would escape a count hook) with the error of SECURITY.md.
local function raises_with(f, ...)
  local ok, err = pcall(f)
  assert(not ok, "expected an error")
  err = tostring(err)
  for _, s in ipairs({...}) do assert(err:find(s, 1, true), "expected '" .. s .. "' in: " .. err) end
end

if core.vecenv then
  scenario("budgeted env files: loops at load, in Env.new, reset and step raise the budget error", function()
    local B = "instruction budget of 100000 exceeded"
    raises_with(function() core.vecenv{source = FIX .. "hostile_toplevel_loop.lua", budget = 100000} end,
                "raised while loading", "hostile_toplevel_loop.lua:2: " .. B)
    for _, kind in ipairs({"loop", "recursion", "pcall"}) do
      raises_with(function()
        core.vecenv{source = FIX .. "hostile_loop.lua", num_envs = 2, budget = 100000, config = {at = "new", kind = kind}}
      end, "Env.new failed", "hostile_loop.lua:", B)
      raises_with(function()
        core.vecenv{source = FIX .. "hostile_loop.lua", num_envs = 2, budget = 100000, config = {at = "reset", kind = kind}}
      end, "hostile_loop.lua:", B)
      local v = core.vecenv{source = FIX .. "hostile_loop.lua", num_envs = 4, budget = 100000,
                            config = {at = "step", kind = kind, after = 3}}
      for round = 1, 2 do  -- the engine survives: a reset starts over
        v:reset(round)
        v:step({0, 0, 0, 0})
        v:step({0, 0, 0, 0})
        raises_with(function() v:step({0, 0, 0, 0}) end, "env 'hostile_loop' copy 0: ", "hostile_loop.lua:", B)
      end
      v:close()
    end
  end)

  scenario("a budgeted inline env looping in a helper the host ran hot before", function()
    local function spin(n) local i = 0 while i < n do i = i + 1 end return i end
    for _ = 1, 300 do spin(1000) end  -- hot: compiled under LuaJIT
    local L = {observation_space = {type = "box", shape = {1}}, action_space = {type = "discrete", n = 2}}
    L.__index = L
    function L.new() return setmetatable({}, L) end
    function L:reset() return {0} end
    function L:step() spin(1 / 0) return {0}, 0, false, false end
    local v = core.vecenv{source = L, num_envs = 2, budget = 5000}
    for _ = 1, 300 do spin(1000) end  -- and again after the env was made
    v:reset()
    raises_with(function() v:step({0, 1}) end, "copy 0", "instruction budget of 5000 exceeded")
    for _ = 1, 300 do spin(1000) end
    v:reset()
    raises_with(function() v:step({0, 1}) end, "copy 0", "instruction budget of 5000 exceeded")
    v:close()
  end)
end

scenario("st_write with a __index-raising metadata table and self-referencing tensors", function()
  local ok = pcall(core.st_write, tmp, {a = core.zeros(2)}, setmetatable({}, {__pairs = function() error("x") end}))
  assert(type(ok) == "boolean")
  local t = {}; t[1] = t
  assert(not pcall(core.st_write, tmp, {a = t}))
end)

-- ------------------------------------------------------------ report
for _, o in ipairs(live) do pcall(function() o:close() end) end
collectgarbage()
os.execute("rm -rf '" .. tmpdir .. "'")

local nt = 0
for _ in pairs(per_target) do nt = nt + 1 end
print("1.." .. (2 + #scen))
print(("# %d random calls over %d functions and methods (%d reached): %d returned, %d raised, in %.1f s")
      :format(calls, ntargets, nt, returned, raised, os.clock() - t0))
if #failures == 0 then
  print("ok 1 - every call returned or raised a Lua error")
else
  print("not ok 1 - some errors were not strings")
  for i = 1, math.min(10, #failures) do print("# " .. failures[i]) end
end
if CALLS == 0 then
  print("ok 2 - # SKIP no random calls")
elseif nt >= ntargets * 0.9 then
  print(("ok 2 - %d of %d targets were called"):format(nt, ntargets))
else
  print(("not ok 2 - only %d of %d targets were called"):format(nt, ntargets))
end
for i, s in ipairs(scen) do
  print((s[2] and "ok " or "not ok ") .. (i + 2) .. " - " .. s[1] .. (s[2] and "" or (": " .. tostring(s[3]))))
end
