-- moonrl — the user module: `local rl = require "moonrl"`.
--
-- A thin layer over moonrl.core (the Lua 5.4 C module, or the LuaJIT FFI
-- binding that provides the same interface; see docs/CORE_API.md).
-- Policies and value networks are the core objects themselves, so every
-- core method is available on them and the hot path (policy:act) has no Lua
-- wrapper in the way.  Other modules (envs, wrap, spaces, trainers, …) load
-- on first use: rl.envs is require("moonrl.envs"), and a module that is not
-- there simply reads as nil instead of breaking require "moonrl".
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local core = require "moonrl.core"

local rl = {core = core, version = core.version}

local function argcheck(cond, n, fname, msg)
  if not cond then
    error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
  end
end

-- ------------------------------------------------------------- spaces

-- MRL_MAX_WIDTH: no action or observation is wider (and a bound given as a
-- number is expanded to n entries, so n must be checked first).
local MAX_WIDTH = 65536

-- rl.discrete(n): n actions 0 … n−1.
function rl.discrete(n)
  argcheck(type(n) == "number" and n >= 1 and n == math.floor(n) and n <= MAX_WIDTH, 1, "discrete",
           "integer in [1, " .. MAX_WIDTH .. "] expected, got " .. tostring(n))
  return {type = "discrete", n = n}
end

local function bounds(v, n, argn, name)
  if v == nil then return nil end
  argcheck(n <= MAX_WIDTH, argn, "box", "at most " .. MAX_WIDTH .. " dimensions, got " .. tostring(n))
  local out = {}
  if type(v) == "number" then
    for i = 1, n do out[i] = v end
  else
    argcheck(type(v) == "table" and #v == n, argn, "box",
             name .. ": a number or a table of " .. n .. " numbers expected")
    for i = 1, n do
      argcheck(type(v[i]) == "number", argn, "box", name .. "[" .. i .. "] must be a number")
      out[i] = v[i]
    end
  end
  return out
end

-- rl.box(n, low, high): an n-dimensional continuous action (diagonal
-- Gaussian policy); low/high are numbers or arrays, both or neither.
function rl.box(n, low, high)
  argcheck(type(n) == "number" and n >= 1 and n == math.floor(n) and n <= MAX_WIDTH, 1, "box",
           "integer in [1, " .. MAX_WIDTH .. "] expected, got " .. tostring(n))
  argcheck((low == nil) == (high == nil), 2, "box", "give both low and high, or neither")
  return {type = "box", n = n, low = bounds(low, n, 2, "low"), high = bounds(high, n, 3, "high")}
end

local spaces = require "moonrl.spaces"

-- rl.multi_discrete{n1, n2, …}: one integer per component, component j in
-- 0 … nj−1 (a character that moves and jumps and picks a target).
function rl.multi_discrete(nvec) return spaces.multi_discrete(nvec) end
-- rl.multi_binary(n): n independent bits 0/1.
function rl.multi_binary(n) return spaces.multi_binary(n) end
-- rl.hybrid{rl.discrete(4), rl.box(1, -1, 1), …}: a flat action row, per
-- part an integer or the box's numbers (a card and an amount).
function rl.hybrid(parts)
  argcheck(type(parts) == "table", 1, "hybrid", "a list of rl.discrete and rl.box parts expected")
  local t = {}
  for i, p in ipairs(parts) do
    if type(p) == "table" and p.type == "box" and p.shape == nil then
      t[i] = spaces.box(p.n, p.low, p.high)  -- rl.box's table as a space
    else
      t[i] = p
    end
  end
  return spaces.hybrid(t)
end

-- Accepts rl.discrete/rl.box/rl.multi_discrete/rl.multi_binary/rl.hybrid
-- results and Gymnasium-style space tables ({type="box", shape={k}, …}).
local function action_spec(a)
  if type(a) ~= "table" then
    error("bad field 'action' (rl.discrete(n), rl.box(n, low, high), rl.multi_discrete{…}, " ..
          "rl.multi_binary(n) or rl.hybrid{…} expected, got " .. type(a) .. ")", 3)
  end
  if a.type == "box" and a.n == nil and type(a.shape) == "table" then
    local n = 1
    for _, d in ipairs(a.shape) do n = n * d end
    return {type = "box", n = n, low = bounds(a.low, n, 1, "low"),
            high = bounds(a.high, n, 1, "high")}
  end
  if a.type == "multi_discrete" or a.type == "multi_binary" or a.type == "hybrid" then
    return spaces.policy_action(a)
  end
  return a
end

-- An observation size given as a number or as a box space.
local function obs_size(o, field)
  if type(o) == "table" and o.type == "dict" then return spaces.flat_size(o) end
  if type(o) == "table" and type(o.shape) == "table" then
    local n = 1
    for _, d in ipairs(o.shape) do n = n * d end
    return n
  end
  if type(o) ~= "number" then
    error("bad field '" .. field .. "' (number or observation space expected, got "
          .. type(o) .. ")", 3)
  end
  return o
end

-- ------------------------------------------------------------- models

-- rl.policy{obs=4, action=rl.discrete(2), hidden={64,64}, activation="tanh",
--           seed=1, init_log_std=0, out_gain=0.01}; conv = {{out=, kernel=,
--           stride=, padding=}, ...} with obs a {C, H, W} space (or obs_shape)
function rl.policy(t)
  argcheck(type(t) == "table", 1, "policy", "table expected, got " .. type(t))
  local shape = t.obs_shape
  if shape == nil and t.conv ~= nil and type(t.obs) == "table" then shape = t.obs.shape end
  return core.policy{
    obs_dim = obs_size(t.obs or t.obs_dim or (shape and {shape = shape}), "obs"),
    obs_shape = shape, conv = t.conv,
    action = action_spec(t.action),
    hidden = t.hidden, activation = t.activation, seed = t.seed,
    init_log_std = t.init_log_std, out_gain = t.out_gain,
  }
end

-- rl.value{obs=4, hidden={64,64}, activation="tanh", seed=1}: V(s).
function rl.value(t)
  argcheck(type(t) == "table", 1, "value", "table expected, got " .. type(t))
  return core.net{
    in_dim = obs_size(t.obs or t.obs_dim or t.in_dim, "obs"),
    hidden = t.hidden, activation = t.activation, seed = t.seed,
    out_dim = t.out_dim or 1, out_gain = t.out_gain or 1,
  }
end

-- The size of an optimiser: n=, or params= a policy / net / tensor.
local function optim_size(t, fname)
  if t.n then return t.n end
  local p = t.params
  argcheck(p ~= nil, 1, fname, "n or params (a policy, net or tensor) expected")
  if type(p) == "number" then return p end
  if p.nparams then return p:nparams() end
  return p:numel()
end

-- rl.adam{params=policy | n=, beta1=0.9, beta2=0.999, eps=1e-8}
function rl.adam(t)
  t = t or {}
  return core.optim{kind = "adam", n = optim_size(t, "adam"), beta1 = t.beta1,
                    beta2 = t.beta2, eps = t.eps}
end

-- rl.sgd{params=policy | n=, momentum=0}
function rl.sgd(t)
  t = t or {}
  return core.optim{kind = "sgd", n = optim_size(t, "sgd"), beta1 = t.momentum or t.beta1}
end

rl.tensor = core.tensor
rl.zeros = core.zeros
rl.returns = core.returns
rl.gae = core.gae
rl.clip_grad_norm = core.clip_grad_norm
rl.kl_beta_update = core.kl_beta_update

-- rl.load(path) → policy, info: a file of policy:save or trainer:save;
-- policy:save(path) / net:save(path) write safetensors (moonrl.checkpoint).
-- Trainers are callable modules: rl.ppo{…}, rl.trpo{…}, rl.npg{…},
-- rl.reinforce{…}, rl.offpolicy{…} (loaded on first use, below); so is
-- rl.agent{…} (moonrl.agent), the agent that trains inside a game loop.
function rl.load(path) return require("moonrl.checkpoint").load_policy(path) end

-- rl.world() → {rank = r, size = K}: this process in a distributed run
-- (`mpirun -np K moonrl …`, docs/MPI.md); {rank = 0, size = 1} otherwise.
function rl.world() return require("moonrl.world").info() end
require("moonrl.checkpoint").install(core)

-- ------------------------------------------------------ lazy submodules

local searchpath = package.searchpath

local function module_exists(name)
  if package.loaded[name] or package.preload[name] then return true end
  if not searchpath then return true end -- let require decide
  return searchpath(name, package.path) ~= nil
end

-- rl.make(source, opts) is the vectorised engine's moonrl.vec.make (num_envs
-- copies of an env id, a file or an inline table); rl.X is require("moonrl.X")
-- when that module exists (rl.envs, rl.wrap, rl.spaces, rl.json, …).
setmetatable(rl, {__index = function(t, k)
  if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then return nil end
  if k == "make" then
    local vec = t.vec
    local f = vec and vec.make
    if f then rawset(t, "make", f) end
    return f
  end
  local name = "moonrl." .. k
  if k == "core" or k == "init" or not module_exists(name) then return nil end
  local m = require(name)
  rawset(t, k, m)
  return m
end})

return rl
