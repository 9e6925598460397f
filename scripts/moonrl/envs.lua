-- moonrl.envs: find, load, validate and check Gymnasium-style environments
-- written in Lua.
--
--   envs.load(id_or_path, config, opts)     -> env object (Env.new(config))
--   envs.make(id_or_path, config, opts)     -> env under its registered time limit
--   envs.load_class(id_or_path, opts)       -> Env table, file path
--   envs.resolve(id_or_path, opts)          -> file path  (or nil, message)
--   envs.search_path(opts)                  -> list of folders searched, in order
--   envs.validate(Env, where)               -> Env (raises naming `where`)
--   envs.check_reset_result(env_id, obs, info, obs_dim)
--   envs.check_step_result(env_id, obs, reward, terminated, truncated, obs_dim)
--   envs.run_trajectory(id, state, actions, opts) -> {obs, rewards, terminated, truncated}
--   envs.rng.new(seed)                      -> generator (see below)
--
-- An env file runs in a fresh environment table holding a curated set of
-- globals (no io, os, require, load, debug, math.random), loaded as text only.
-- Its randomness comes from the `rng` global: rng.new(seed) gives a
-- generator that produces the same numbers on Lua 5.4 and LuaJIT.
--
-- Written in the common subset of Lua 5.1/LuaJIT and 5.4.

local spaces = require "moonrl.spaces"

local envs = {}

local unpack = unpack or table.unpack
local floor = math.floor

---------------------------------------------------------------- generator

-- MRG32k3a (L'Ecuyer 1999) in double arithmetic: every product is below 2^53,
-- so each step is exact and identical on any IEEE machine and interpreter,
-- with no bitwise operators.  Period about 2^191.
local M1, M2 = 4294967087.0, 4294944443.0
local A12, A13N = 1403580.0, 810728.0
local A21, A23N = 527612.0, 1370589.0
local NORM = 1.0 / (M1 + 1.0)
local TWO32 = 4294967296.0

local Rng = {}
Rng.__index = Rng

-- Next uniform in (0, 1) with 32 bits of resolution.
function Rng:next32()
  local p1 = A12 * self[2] - A13N * self[1]
  p1 = p1 - floor(p1 / M1) * M1
  if p1 < 0 then p1 = p1 + M1 end
  self[1], self[2], self[3] = self[2], self[3], p1
  local p2 = A21 * self[6] - A23N * self[4]
  p2 = p2 - floor(p2 / M2) * M2
  if p2 < 0 then p2 = p2 + M2 end
  self[4], self[5], self[6] = self[5], self[6], p2
  if p1 > p2 then return (p1 - p2) * NORM end
  return (p1 - p2 + M1) * NORM
end

-- Uniform in [0, 1) with 53 bits: two draws, as numpy's random() does.
function Rng:random()
  local hi = floor(self:next32() * 67108864.0)   -- 26 bits
  local lo = floor(self:next32() * 134217728.0)  -- 27 bits
  return (hi * 134217728.0 + lo) / 9007199254740992.0
end

function Rng:uniform(a, b)
  if a == nil then return self:random() end
  if b == nil then a, b = 0.0, a end
  return a + (b - a) * self:random()
end

-- Integer in [0, n) (or [a, b] with two arguments), without modulo bias
-- beyond 2^-53.
function Rng:integer(a, b)
  if b == nil then return floor(self:random() * a) end
  return a + floor(self:random() * (b - a + 1))
end

-- Standard normal by the polar Box-Muller method, spare value cached.
function Rng:normal(mean, std)
  local z = self.spare
  if z then
    self.spare = nil
  else
    local u, v, s
    repeat
      u = 2.0 * self:random() - 1.0
      v = 2.0 * self:random() - 1.0
      s = u * u + v * v
    until s > 0 and s < 1
    local f = math.sqrt(-2.0 * math.log(s) / s)
    self.spare = v * f
    z = u * f
  end
  return (mean or 0.0) + (std or 1.0) * z
end

function Rng:get_state()
  return {self[1], self[2], self[3], self[4], self[5], self[6], spare = self.spare}
end

function Rng:set_state(t)
  for i = 1, 6 do self[i] = t[i] end
  self.spare = t.spare
  return self
end

local rng = {}

-- A multiplicative LCG mod 2^31-1 (products < 2^47, exact) spreads a seed
-- over the six state words.
local function lcg(x) return (48271.0 * x) % 2147483647.0 end

-- seed: any finite number (integers up to 2^53 are all distinct seeds);
-- nil means 0.
function rng.new(seed)
  seed = seed or 0
  if type(seed) ~= "number" or seed ~= seed or seed == math.huge or seed == -math.huge then
    error("rng.new: seed must be a finite number, got " .. tostring(seed), 2)
  end
  seed = floor(math.abs(seed)) + (seed < 0 and 1 or 0) * 2 ^ 52
  local hi = floor(seed / TWO32)
  local lo = seed - hi * TWO32
  local a = lo % 2147483646.0 + 1.0
  local b = (hi + floor(lo / 2147483646.0) * 977.0) % 2147483646.0 + 1.0
  local self = setmetatable({}, Rng)
  for i = 1, 6 do
    a = lcg(a); b = lcg(b)
    a = lcg(a)
    local m = i <= 3 and M1 or M2
    self[i] = (a * 2.0 + b * 65536.0 + i) % m
  end
  -- MRG32k3a needs each component's three words not all zero
  if self[1] + self[2] + self[3] == 0 then self[1] = 12345.0 end
  if self[4] + self[5] + self[6] == 0 then self[4] = 12345.0 end
  for _ = 1, 8 do self:next32() end   -- let nearby seeds decorrelate
  return self
end

envs.rng = rng

---------------------------------------------------------------- locating

-- The folder holding this file ("" when unknown), with a trailing slash.
local function this_dir()
  local src = debug.getinfo(1, "S").source
  if src:sub(1, 1) ~= "@" then return nil end
  local dir = src:sub(2):match("^(.*[/\\])") or "./"
  return dir
end

-- "a/b/../c" -> "a/c", so the folders in messages read cleanly.
local function tidy(path)
  local n
  repeat
    path, n = path:gsub("/[^/%.][^/]*/%.%./", "/", 1)
  until n == 0
  path = path:gsub("^[^/%.][^/]*/%.%./", "")
  return path
end

local function file_exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

local function split_path(s)
  local out = {}
  for part in s:gmatch("[^:]+") do out[#out + 1] = part end
  return out
end

-- Folders searched for a registered id, in order: opts.env_path (a string,
-- colon-separated, or a list), $MOONRL_ENV_PATH, ../envs next to this
-- file, the source tree's envs/ (scripts/moonrl/../../envs), and the
-- installed <prefix>/share/moonrl/envs (this file lives in
-- <prefix>/share/lua/5.4/moonrl/).
function envs.search_path(opts)
  local dirs = {}
  local ep = opts and opts.env_path
  if type(ep) == "string" then
    for _, d in ipairs(split_path(ep)) do dirs[#dirs + 1] = d end
  elseif type(ep) == "table" then
    for _, d in ipairs(ep) do dirs[#dirs + 1] = d end
  end
  local env_var = os.getenv("MOONRL_ENV_PATH")
  if env_var then
    for _, d in ipairs(split_path(env_var)) do dirs[#dirs + 1] = d end
  end
  local here = this_dir()
  if here then
    dirs[#dirs + 1] = tidy(here .. "../envs")
    dirs[#dirs + 1] = tidy(here .. "../../envs")
    dirs[#dirs + 1] = tidy(here .. "../../../moonrl/envs")
  end
  return dirs
end

-- A path ending in .lua is taken as given; anything else is an id looked
-- up in search_path().  Returns the path, or nil and a message listing the
-- folders tried.
function envs.resolve(id, opts)
  if type(id) ~= "string" or id == "" then
    return nil, "env id must be a non-empty string, got " .. tostring(id)
  end
  if id:sub(-4) == ".lua" then
    if file_exists(id) then return id end
    return nil, "env file not found: " .. id
  end
  if id:find("[/\\]") or id:find("%.%.") then
    return nil, "bad env id '" .. id .. "' (an id is a name like CartPole-v1; give a path ending in .lua for a file)"
  end
  local dirs = envs.search_path(opts)
  for _, d in ipairs(dirs) do
    local p = d:gsub("/$", "") .. "/" .. id .. ".lua"
    if file_exists(p) then return p end
  end
  return nil, "unknown env '" .. id .. "' (searched: " .. table.concat(dirs, ", ") .. ")"
end

---------------------------------------------------------------- sandbox

local function copy(t, drop)
  local c = {}
  for k, v in pairs(t) do
    if not (drop and drop[k]) then c[k] = v end
  end
  return c
end

-- Pattern matching runs in C, where no instruction budget reaches, and a
-- pattern with k quantifiers can backtrack about n^(k+1) times on a subject
-- of n bytes.  The sandbox refuses a match whose bound exceeds this.
local PATTERN_COST = 1e9
-- string.rep in C allocates its whole result at once.
local MAX_REP = 64 * 1024 * 1024

local function quantifiers(p)
  local q, i, n = 0, 1, #p
  while i <= n do
    local c = p:sub(i, i)
    if c == "%" then
      i = i + 2
    elseif c == "[" then
      i = i + 1
      if p:sub(i, i) == "^" then i = i + 1 end
      if p:sub(i, i) == "]" then i = i + 1 end
      while i <= n and p:sub(i, i) ~= "]" do
        if p:sub(i, i) == "%" then i = i + 1 end
        i = i + 1
      end
      i = i + 1
    else
      if c == "*" or c == "+" or c == "-" or c == "?" then q = q + 1 end
      i = i + 1
    end
  end
  return q
end

local function check_pattern(fname, s, p)
  if type(p) ~= "string" then return end          -- the C function complains
  local n = type(s) == "string" and #s or (type(s) == "number" and #tostring(s)) or 0
  local q = quantifiers(p)
  if q > 0 and n > 1 and (n + 0.0) ^ (q + 1) > PATTERN_COST then
    error(("string.%s: pattern with %d quantifiers on a %d-byte string is too costly for a sandboxed script")
          :format(fname, q, n), 3)
  end
end

-- The string library a sandboxed script sees: no dump, guarded patterns,
-- bounded rep.  A fresh table per call.
local function safe_string()
  local s = copy(string, {dump = true})
  local find, match, gmatch, gsub, rep = string.find, string.match, string.gmatch, string.gsub, string.rep
  s.find = function(str, pat, init, plain)
    if not plain then check_pattern("find", str, pat) end
    return find(str, pat, init, plain)
  end
  s.match = function(str, pat, init) check_pattern("match", str, pat); return match(str, pat, init) end
  s.gmatch = function(str, pat) check_pattern("gmatch", str, pat); return gmatch(str, pat) end
  s.gsub = function(str, pat, repl, n) check_pattern("gsub", str, pat); return gsub(str, pat, repl, n) end
  s.rep = function(str, n, sep)
    if type(n) == "number" and n > 0 then
      local len = (type(str) == "string" and #str or #tostring(str))
                  + (type(sep) == "string" and #sep or 0)
      if len * n > MAX_REP then
        error(("string.rep: a result of %.0f bytes exceeds the sandbox's %d"):format(len * n, MAX_REP), 2)
      end
    end
    if sep == nil then return rep(str, n) end
    return rep(str, n, sep)
  end
  return s
end

-- A path given to the sandbox's loadfile/dofile: relative, inside `dir`
-- (the env file's folder), no "..".
local function sandbox_path(fname, dir, path)
  if type(path) ~= "string" then
    error(fname .. ": a path relative to the env's folder expected, got " .. type(path), 3)
  end
  if not dir then error(fname .. ": not available here (no env folder)", 3) end
  if path:sub(1, 1) == "/" or path:find("\\", 1, true) or path:find("..", 1, true) or path == "" then
    error(fname .. ": '" .. path .. "' must be a relative path inside the env's folder, without '..'", 3)
  end
  return dir .. path
end

-- The globals an env script sees.  Fresh tables each time, so one script
-- cannot change what another sees; math.random is left out so that every
-- random number goes through the seeded `rng`.  No io, os, require, debug,
-- coroutine (a coroutine would run outside the instruction budget's hook)
-- or collectgarbage control; load/loadstring/loadfile/dofile take text
-- only and run in this same environment unless given another; loadfile and
-- dofile read only files inside `dir` (the env file's folder).
-- getmetatable("") is nil (the string metatable leads to the real string
-- library) and setmetatable refuses __gc (a finalizer runs with hooks off).
local function sandbox_env(dir)
  local env
  local function sload(chunk, name, mode, e)
    if type(chunk) ~= "string" and type(chunk) ~= "function" then
      error("load: a string or a reader function expected, got " .. type(chunk), 2)
    end
    if mode ~= nil and mode ~= "t" then
      return nil, "load: only text chunks can be loaded in a sandboxed script (mode 't')"
    end
    if e == nil then e = env end
    return load(chunk, name, "t", e)
  end
  local function sloadfile(path, mode, e)
    local full = sandbox_path("loadfile", dir, path)
    if mode ~= nil and mode ~= "t" then
      return nil, "loadfile: only text chunks can be loaded in a sandboxed script (mode 't')"
    end
    if e == nil then e = env end
    return loadfile(full, "t", e)
  end
  env = {
    math = copy(math, {random = true, randomseed = true}),
    string = safe_string(),
    table = copy(table),
    pairs = pairs, ipairs = ipairs, next = next, type = type,
    tostring = tostring, tonumber = tonumber, select = select,
    error = error, assert = assert, pcall = pcall, xpcall = xpcall,
    rawget = rawget, rawset = rawset, rawequal = rawequal, rawlen = rawlen,
    unpack = unpack, print = print, _VERSION = _VERSION,
    getmetatable = function(v)
      if type(v) == "string" then return nil end
      return getmetatable(v)
    end,
    setmetatable = function(t, mt)
      if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
        error("setmetatable: __gc metamethods are not allowed in a sandboxed script", 2)
      end
      return setmetatable(t, mt)
    end,
    collectgarbage = function(opt)
      if opt == "count" then return collectgarbage("count") end
      error("collectgarbage: only collectgarbage('count') is available in a sandboxed script", 2)
    end,
    load = sload,
    loadstring = function(s, name) return sload(s, name) end,
    loadfile = sloadfile,
    dofile = function(path)
      local f, err = sloadfile(path)
      if not f then error(err, 2) end
      return f()
    end,
    rng = {new = rng.new},
    spaces = copy(spaces),
  }
  env.table.unpack = unpack
  env._G = env
  return env
end

envs.sandbox_env = sandbox_env

-- A trusted script (opts.trusted) sees the host's globals, through an
-- environment of its own so its globals stay its own.
local function trusted_env()
  return setmetatable({rng = {new = rng.new}, spaces = copy(spaces)}, {__index = _G})
end

-- In a private worker state (bindings/lua54/vecenv_lua.c): string methods
-- ("x"):rep(...) reach the string metatable's __index, not the sandbox's
-- `string`, so point it at a guarded copy.  Never called in a host's own
-- state, whose string library is the host's business.
function envs.harden_state()
  local mt = getmetatable("")
  if type(mt) == "table" then mt.__index = safe_string() end
end

---------------------------------------------------------------- validation

-- An error object as text without running its __tostring (which would be
-- the script's code, outside any budget).
local function errstr(e)
  local t = type(e)
  if t == "string" or t == "number" then return tostring(e) end
  return "(error object is a " .. t .. " value)"
end
envs.errstr = errstr

local function fail(where, msg)
  error(where .. ": " .. msg, 0)
end

-- Check the table an env file returned.  `where` names the file in errors.
function envs.validate(Env, where)
  where = where or "env"
  if type(Env) ~= "table" then
    fail(where, "the file must return the Env table, got " .. type(Env))
  end
  if type(Env.new) ~= "function" then fail(where, "Env.new must be a function") end
  -- reset/step are looked up on the class; an instance may also carry them
  for _, m in ipairs({"reset", "step"}) do
    local f = Env[m]
    if f == nil and type(Env.__index) == "table" then f = Env.__index[m] end
    if type(f) ~= "function" then fail(where, "Env." .. m .. " must be a function (missing " .. m .. ")") end
  end
  envs.validate_spaces(Env, where)
  if Env.max_episode_steps ~= nil then
    local m = Env.max_episode_steps
    if type(m) ~= "number" or m < 1 or m ~= floor(m) then
      fail(where, "max_episode_steps must be a positive integer, got " .. tostring(m))
    end
  end
  return Env
end

function envs.validate_spaces(obj, where)
  for _, name in ipairs({"observation_space", "action_space"}) do
    local ok, err = spaces.validate(obj[name])
    if not ok then fail(where, name .. " " .. err) end
  end
  local ot = obj.observation_space.type
  if ot ~= "box" and ot ~= "dict" then
    fail(where, "observation_space must be a box (observations are flat arrays; a grid " ..
                "{C, H, W} in C-major order) or a dict of boxes")
  end
end

local function is_finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

local function check_obs(env_id, what, obs, obs_dim)
  if type(obs) ~= "table" then
    error(env_id .. ": " .. what .. " returned obs of type " .. type(obs) .. " (expected an array of numbers)", 0)
  end
  local n = #obs
  if obs_dim and n ~= obs_dim then
    error(env_id .. ": " .. what .. " returned obs of length " .. n .. " (expected " .. obs_dim .. ")", 0)
  end
  for i = 1, n do
    local v = obs[i]
    if type(v) ~= "number" then
      error(env_id .. ": " .. what .. " returned obs[" .. i .. "] of type " .. type(v) .. " (expected a number)", 0)
    end
    if not is_finite(v) then
      error(env_id .. ": " .. what .. " returned non-finite obs[" .. i .. "] = " .. tostring(v), 0)
    end
  end
end

-- true when two env objects declare the same spaces (type, shape, n,
-- bounds): a reloaded env must fit the batch it replaces.
local function same_value(a, b, depth)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b or (a ~= a and b ~= b) end
  if depth > 4 then return false end
  for k, v in pairs(a) do
    if not same_value(v, rawget(b, k), depth + 1) then return false end
  end
  for k in pairs(b) do
    if rawget(a, k) == nil then return false end
  end
  return true
end

function envs.same_spaces(a, b)
  for _, name in ipairs({"observation_space", "action_space"}) do
    local x, y = a[name], b[name]
    if type(x) ~= "table" or type(y) ~= "table" then return false, name .. " is missing" end
    for _, f in ipairs({"type", "shape", "n", "low", "high"}) do
      if not same_value(rawget(x, f), rawget(y, f), 0) then
        return false, name .. "." .. f .. " differs from the running env's"
      end
    end
  end
  return true
end

function envs.check_reset_result(env_id, obs, info, obs_dim)
  env_id = tostring(env_id)
  check_obs(env_id, "reset", obs, obs_dim)
  if info ~= nil and type(info) ~= "table" then
    error(env_id .. ": reset returned info of type " .. type(info) .. " (expected a table or nil)", 0)
  end
end

-- Raise a clear error unless (obs, reward, terminated, truncated) has the
-- shape step must return: an array of finite numbers (of length obs_dim
-- when given), a finite number and two booleans.
function envs.check_step_result(env_id, obs, reward, terminated, truncated, obs_dim)
  env_id = tostring(env_id)
  check_obs(env_id, "step", obs, obs_dim)
  if type(reward) ~= "number" then
    error(env_id .. ": step returned reward of type " .. type(reward) .. " (expected a number; step must return obs, reward, terminated, truncated, info)", 0)
  end
  if not is_finite(reward) then
    error(env_id .. ": step returned non-finite reward = " .. tostring(reward), 0)
  end
  if type(terminated) ~= "boolean" then
    error(env_id .. ": step returned terminated of type " .. type(terminated) .. " (expected a boolean)", 0)
  end
  if type(truncated) ~= "boolean" then
    error(env_id .. ": step returned truncated of type " .. type(truncated) .. " (expected a boolean)", 0)
  end
end

---------------------------------------------------------------- loading

-- Load an env file's Env table (not an instance).  Raises on any problem,
-- naming the file.
function envs.load_class(id, opts)
  opts = opts or {}
  local path, err = envs.resolve(id, opts)
  if not path then error(err, 0) end
  local senv = opts.trusted and trusted_env() or sandbox_env(path:match("^(.*[/\\])") or "./")
  -- text only, trusted or not: a binary chunk can break the VM
  local chunk, lerr = loadfile(path, "t", senv)
  if not chunk then error("cannot load env " .. path .. ": " .. tostring(lerr), 0) end
  local ok, Env = (opts.guard or pcall)(chunk)
  if not ok then error("env " .. path .. " raised while loading: " .. errstr(Env), 0) end
  envs.validate(Env, "env " .. path)
  if Env.id == nil then Env.id = path:match("([^/\\]+)%.lua$") end
  return Env, path
end

local probe_seed = 0

-- opts.guard, when given (a worker state), runs a call of env code like
-- pcall but under the per-call instruction budget.
local function caller(opts) return opts and opts.guard or pcall end

-- A dict observation as the engine flattens it (parts in name order), with
-- the part that is wrong named; anything else as it is.
local function flat_obs(e, obs, what)
  local os = e.observation_space
  if os.dtype == "uint8" and type(obs) == "string" then
    -- an image as a string of bytes: checked (and stored) as x/255
    local out = {}
    for i = 1, #obs do out[i] = obs:byte(i) / 255 end
    return out
  end
  if os.type ~= "dict" or type(obs) ~= "table" then return obs end
  local ok, flat = pcall(spaces.flatten, e.observation_space, obs)
  if not ok then error(what .. " returned an obs that " .. tostring(flat):gsub("^.-spaces%.flatten: ", ""), 0) end
  return flat
end

-- The probe's action: 0 or a sample of the space, moved to the first valid
-- choice of each component where the env's action_mask forbids it.
local function probe_action(e, obs, call)
  local s = e.action_space
  local a = s.type == "discrete" and 0 or spaces.sample(s, rng.new(probe_seed))
  if type(e.action_mask) ~= "function" then return a end
  local ok, m = call(e.action_mask, e, obs, {})
  if not ok or type(m) ~= "table" then return a end
  local nvec = s.type == "discrete" and {s.n} or s.nvec or {}
  local off = 0
  for c = 1, #nvec do
    local pick = s.type == "discrete" and a or a[c]
    if m[off + pick + 1] == 0 then
      for j = 1, nvec[c] do
        if m[off + j] ~= 0 and m[off + j] ~= false then pick = j - 1; break end
      end
    end
    if s.type == "discrete" then a = pick else a[c] = pick end
    off = off + nvec[c]
  end
  return a
end

-- One reset and one step on a throwaway instance, so that an env returning
-- the wrong shape or a NaN fails at load, naming the file, rather than deep
-- inside a rollout.
local function probe(Env, config, where, opts)
  local call = caller(opts)
  local ok, e = call(Env.new, config)
  if not ok then fail(where, "Env.new failed: " .. errstr(e)) end
  if type(e) ~= "table" then fail(where, "Env.new must return the env object, got " .. type(e)) end
  envs.validate_spaces(e, where)
  local dim = spaces.flat_size(e.observation_space)
  local ok2, err = pcall(function()
    local okr, obs, info = call(e.reset, e, probe_seed)
    if not okr then error(obs, 0) end
    envs.check_reset_result(where, flat_obs(e, obs, "reset"), info, dim)
    local a = probe_action(e, obs, call)
    local oks, o, r, term, trunc = call(e.step, e, a)
    if not oks then error(o, 0) end
    envs.check_step_result(where, flat_obs(e, o, "step"), r, term, trunc, dim)
  end)
  if not ok2 then
    err = errstr(err)
    if err:sub(1, #where) ~= where then err = where .. ": " .. err end
    error(err, 0)
  end
end

-- opts: env_path (extra folders), probe (default true: smoke-test one
-- reset and step on a separate instance), trusted (run the file with the
-- host's globals instead of the sandbox), guard (see caller above).
function envs.load(id, config, opts)
  opts = opts or {}
  local Env, path = envs.load_class(id, opts)
  local where = "env " .. path
  if opts.probe ~= false then probe(Env, config, where, opts) end
  local ok, e = caller(opts)(Env.new, config)
  if not ok then fail(where, "Env.new failed: " .. errstr(e)) end
  if type(e) ~= "table" then fail(where, "Env.new must return the env object, got " .. type(e)) end
  envs.validate_spaces(e, where)
  if rawget(e, "id") == nil and e.id == nil then e.id = Env.id end
  return e
end

-- The env under its registered time limit (Env.max_episode_steps), as
-- gymnasium.make does; opts.max_episode_steps overrides, and false (or an
-- env without a limit) gives the bare env.
function envs.make(id, config, opts)
  opts = opts or {}
  local e = envs.load(id, config, opts)
  local limit = opts.max_episode_steps
  if limit == nil then limit = e.max_episode_steps end
  if limit then e = require("moonrl.wrap").time_limit(e, limit) end
  return e
end

---------------------------------------------------------------- golden

-- Set an env to `state` (Gymnasium's env.unwrapped.state) and step it with
-- each action.  Returns {obs = [T][D], rewards = [T], terminated = [T],
-- truncated = [T]}: what an env_trajectory golden case expects.
function envs.run_trajectory(id, state, actions, opts)
  local e = envs.load(id, nil, opts)
  if type(e.set_state) ~= "function" then
    error("env " .. tostring(id) .. " has no set_state method", 0)
  end
  e:reset(0)
  e:set_state(state)
  local box = e.action_space.type == "box"
  local dim = spaces.flat_size(e.observation_space)
  local out = {obs = {}, rewards = {}, terminated = {}, truncated = {}}
  for t = 1, #actions do
    local a = actions[t]
    if box and type(a) == "number" then a = {a} end
    local o, r, term, trunc = e:step(a)
    envs.check_step_result(tostring(id), o, r, term, trunc, dim)
    out.obs[t] = o
    out.rewards[t] = r
    out.terminated[t] = term
    out.truncated[t] = trunc
  end
  return out
end

return envs
