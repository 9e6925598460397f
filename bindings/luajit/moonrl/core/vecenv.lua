-- moonrl.core.vecenv (LuaJIT): core.vecenv and core.rollout
-- for the FFI binding, with the Lua interface of bindings/lua54/vecenv_lua.c
-- (moonrl.VecEnv, moonrl.Rollout).  Loaded by moonrl/core.lua, which passes
-- itself to the function this file returns.
--
-- An env file runs on private worker states, as under Lua 5.4: LuaJIT
-- states made by libmoonrl_luajit.so (bindings/lua54/env_worker.c compiled
-- against LuaJIT, see bindings/luajit/env_worker_ffi.c), stepped on the
-- vecenv's threads when threads > 1 (an env file without that library is
-- an error).  Inline envs live in the calling Lua state, stepped through FFI
-- callbacks.
--
-- The batching, time-limit bookkeeping, action clipping, episode statistics
-- and rollout collection are the C engine's (mrl_vecenv_*, mrl_rollout_*),
-- exactly as in the Lua 5.4 binding.  The engine reaches the Lua envs
-- through mrl_env_ops, whose reset/step are FFI callbacks: one callback per
-- BATCH (all num_envs copies stepped inside it), in the calling thread, so
-- the callback cost (well under a microsecond) is paid once per step of the
-- whole batch, never per env or per element.  Two FFI rules shape the code:
--  - a C function that calls back into Lua must not be called from a
--    JIT-compiled trace, so the Lua functions that call mrl_vecenv_reset,
--    mrl_vecenv_step and mrl_rollout_collect are excluded with jit.off;
--  - an error must not unwind through the C frames of a callback, so the
--    callbacks run the envs under pcall and return MRL_EENV with the message
--    kept for ops.error, as the worker states of the 5.4 binding do.
-- (Writing the collection loop in Lua on mrl_rollout_field_ptr instead
-- would leave the rollout "not collected": mrl_rollout_gae and
-- mrl_ppo_update refuse such a rollout, and the C API has no call to mark
-- one as filled.)

local ffi = require "ffi"
local jit = rawget(_G, "jit")

return function(core)
  local I = core._internal
  local C = I.C
  local raise, argerror, typeerror, typename = I.raise, I.argerror, I.typeerror, I.typename
  local format, concat = string.format, table.concat
  local floor = math.floor
  local type, rawget, pcall, tostring, setmetatable, getmetatable =
    type, rawget, pcall, tostring, setmetatable, getmetatable

  local MAX_BATCH, MAX_WIDTH = 16777216, 65536
  local EENV, OK = 7, 0
  local DISCRETE, BOX = 0, 1

  local floats_t = ffi.typeof("float[?]")
  local box_t = ffi.typeof("void *[1]")
  local reset_cb_t = ffi.typeof("int (*)(void *, mrl_vecenv *, int, const uint64_t *)")
  local step_cb_t = ffi.typeof("int (*)(void *, mrl_vecenv *, int, const float *)")
  local error_cb_t = ffi.typeof("const char *(*)(void *, int)")

  -- Plain data (numbers, strings, booleans, tables of those) copied, so env
  -- copies never share a config table (the 5.4 binding copies it into each
  -- worker state).
  local function xcopy(v, depth, what)
    local t = type(v)
    if t == "table" then
      if depth > 16 then error(what .. ": tables nested too deeply", 0) end
      local out = {}
      for k, x in pairs(v) do
        out[xcopy(k, depth + 1, what)] = xcopy(x, depth + 1, what)
      end
      return out
    elseif t == "number" or t == "string" or t == "boolean" or t == "nil" then
      return v
    end
    error(format("%s: a %s value cannot be copied", what, t), 0)
  end

  local function errobj(e)
    if type(e) == "string" or type(e) == "number" then return tostring(e) end
    return format("(error object is a %s value)", type(e))
  end

  -- ----------------------------------------------------------- Rollout

  local RO = {}
  local rollout_mt = I.newclass("moonrl.Rollout", RO)
  local ro_names = {"obs", "actions", "rewards", "logp", "values", "next_values",
                    "advantages", "returns", "terminated", "truncated"}

  local function checkrollout(v, fname, argn)
    if getmetatable(v) ~= rollout_mt then typeerror(fname, argn, "moonrl.Rollout", v) end
    local h = v.h
    if h == nil then raise("attempt to use a closed moonrl.Rollout") end
    return h
  end

  rollout_mt.__tostring = function(self)
    if self.h == nil then return "moonrl.Rollout (closed)" end
    return format("moonrl.Rollout (%d steps × %d envs)", C.mrl_rollout_steps(self.h),
                  C.mrl_rollout_num_envs(self.h))
  end

  function core.rollout(t)
    if type(t) ~= "table" or I.isobj(t) then typeerror("rollout", 1, "table", t) end
    local steps = I.optintfield(t, "steps", 0, 1, MAX_BATCH)
    local n = I.optintfield(t, "num_envs", 0, 1, MAX_BATCH)
    local od = I.optintfield(t, "obs_dim", 0, 1, MAX_WIDTH)
    local aw = I.optintfield(t, "action_width", 1, 1, MAX_WIDTH)
    if steps == 0 or n == 0 or od == 0 then
      raise("rollout: fields 'steps', 'num_envs' and 'obs_dim' are required")
    end
    if steps * n > MAX_BATCH then
      raise(format("rollout: steps × num_envs = %d exceeds %d", steps * n, MAX_BATCH))
    end
    local out = ffi.new("mrl_rollout *[1]")
    local st = C.mrl_rollout_new(out, steps, n, od, aw)
    if st ~= OK then raise("rollout: " .. I.status_string(st)) end
    local h = ffi.gc(out[0], C.mrl_rollout_free)
    local self = setmetatable({h = h, box = box_t(), _od = od, _w = aw}, rollout_mt)
    self.box[0] = h
    return self
  end

  function RO.close(self)
    if getmetatable(self) ~= rollout_mt then typeerror("close", 0, "moonrl.Rollout", self) end
    local h = self.h
    if h ~= nil then
      self.h = nil
      self.box[0] = nil
      ffi.gc(h, nil)
      C.mrl_rollout_free(h)
    end
  end

  -- Float fields are live views [T][N] (obs, actions: [T][N][dim]); the
  -- flags are uint8 in the buffer, so they come out as float 0/1 copies.
  function RO.field(self, name)
    local h = checkrollout(self, "field", 0)
    if type(name) ~= "string" then typeerror("field", 1, "string", name) end
    local f
    for i = 1, #ro_names do if ro_names[i] == name then f = i - 1 end end
    if f == nil then argerror("field", 1, format("invalid option '%s'", name)) end
    local T, n = C.mrl_rollout_steps(h), C.mrl_rollout_num_envs(h)
    if f >= 8 then
      local src = f == 8 and C.mrl_rollout_terminated(h) or C.mrl_rollout_truncated(h)
      local t = I.new2(T, n)
      local d = t.d_
      for k = 0, T * n - 1 do d[k] = src[k] end
      return t
    end
    local shape = {T, n, f == 0 and self._od or self._w}
    return I.pushview(self, self.box, 3, C.mrl_rollout_field_ptr(h, f), f <= 1 and 3 or 2, shape)
  end

  function RO.gae(self, gamma, lambda)
    local h = checkrollout(self, "gae", 0)
    gamma = I.checknumber("gae", 1, gamma)
    lambda = I.checknumber("gae", 2, lambda)
    local st = C.mrl_rollout_gae(h, gamma, lambda)
    if st ~= OK then raise(ffi.string(C.mrl_rollout_error(h))) end
    return self
  end

  function RO.steps(self) return C.mrl_rollout_steps(checkrollout(self, "steps", 0)) end
  function RO.num_envs(self) return C.mrl_rollout_num_envs(checkrollout(self, "num_envs", 0)) end

  -- ------------------------------------------------------------ VecEnv

  local VE = {}
  local vecenv_mt = I.newclass("moonrl.VecEnv", VE)

  local function checkvec(self, fname)
    if getmetatable(self) ~= vecenv_mt then typeerror(fname, 0, "moonrl.VecEnv", self) end
    local h = self.h
    if h == nil then raise("attempt to use a closed moonrl.VecEnv") end
    return h
  end

  vecenv_mt.__tostring = function(self)
    if self.h == nil then return "moonrl.VecEnv (closed)" end
    return format("moonrl.VecEnv (%s, %d envs, %s)", self._name, self._n,
                  self._inline and "inline" or
                  (self._threads or 0) > 0 and format("%d threads", self._threads) or
                  "calling thread")
  end

  -- The spaces of copy 0: obs_dim, kind, action_n, bounds (floats or nil).
  local function read_spaces(env)
    local os_ = env.observation_space
    if type(os_) ~= "table" then error("the env has no observation_space table", 0) end
    if os_.type ~= "box" then error("observation_space must be a box", 0) end
    local shape = os_.shape
    if type(shape) ~= "table" or #shape ~= 1 then
      error("observation_space.shape must be {dim}", 0)
    end
    local d = shape[1]
    if type(d) ~= "number" or d ~= floor(d) or d < 1 or d > MAX_WIDTH then
      error(format("observation_space.shape[1] must be an integer in [1, %d]", MAX_WIDTH), 0)
    end
    local as = env.action_space
    if type(as) ~= "table" then error("the env has no action_space table", 0) end
    local sp = {obs_dim = d}
    if as.type == "discrete" then
      local n = as.n
      if type(n) ~= "number" or n ~= floor(n) or n < 1 or n > MAX_WIDTH then
        error(format("action_space.n must be an integer in [1, %d]", MAX_WIDTH), 0)
      end
      sp.kind, sp.action_n, sp.width = DISCRETE, n, 1
    elseif as.type == "box" then
      local n = 0
      if type(as.shape) == "table" and #as.shape == 1 then n = as.shape[1]
      elseif type(as.shape) == "number" then n = as.shape end
      if type(n) ~= "number" or n ~= floor(n) or n < 1 or n > MAX_WIDTH then
        error(format("action_space.shape must be {n} with n in [1, %d]", MAX_WIDTH), 0)
      end
      sp.kind, sp.action_n, sp.width = BOX, n, n
      local b = floats_t(2 * n)
      local bounded = true
      for k, key in ipairs{"low", "high"} do
        local v = as[key]
        for j = 0, n - 1 do
          local x
          if type(v) == "number" then x = v
          elseif type(v) == "table" then x = tonumber(v[j + 1]) end
          if x == nil or x ~= x then bounded = false break end
          b[(k - 1) * n + j] = x
        end
        if not bounded then break end
      end
      if bounded then sp.bounds = b end
    else
      error("action_space.type must be 'discrete' or 'box'", 0)
    end
    return sp
  end

  -- Reads an obs array into row (float *), with the 5.4 binding's messages
  -- (the values are checked by the vecenv's commit).
  local function read_obs(o, row, od, what)
    if type(o) ~= "table" then
      error(format("%s returned obs of type %s (expected an array of %d numbers)",
                   what, type(o), od), 0)
    end
    if #o ~= od then
      error(format("%s returned obs of length %d (expected %d)", what, #o, od), 0)
    end
    for j = 1, od do
      local x = rawget(o, j)
      if type(x) ~= "number" then
        error(format("%s returned obs[%d] of type %s (expected a number)", what, j, type(x)), 0)
      end
      row[j - 1] = x
    end
  end

  -- Instruction budgets.  debug.sethook count hooks fire in the interpreter
  -- only, never inside a compiled trace, so every call of budgeted env code
  -- runs with the JIT off (jit.off() for the call, which also stops new
  -- traces from being recorded): an env file's code is then never compiled
  -- at all, and a loop in it is always interpreted and counted.  An inline
  -- env is the host's own code and may have been compiled before: see
  -- nojit_inline below.  (Env files are budgeted by their worker states.)
  -- Frames of ours the hook must not count against the env (it also fires
  -- between the env's return and the line that disarms it).
  local own = setmetatable({}, {__mode = "k"})
  local function make_hook(n)
    local hook
    hook = function()
      local info = debug.getinfo(2, "fSl")
      if info and own[info.func] then return end
      -- from now on fire at every instruction: a pcall in the env cannot buy
      -- itself another budget
      debug.sethook(hook, "", 1)
      if info and info.currentline and info.currentline > 0 then
        error(format("%s:%d: instruction budget of %d exceeded", info.short_src,
                     info.currentline, n), 0)
      end
      error(format("instruction budget of %d exceeded", n), 0)
    end
    return hook
  end

  -- pcall(f, ...) with a budget of n instructions and the JIT off; the hook
  -- set before (the caller's, or the bound of a whole load) comes back
  -- afterwards, its count restarted.
  local function bpcall(n, f, ...)
    local oh, om, oc = debug.gethook()
    local jit_on = jit and jit.status()
    if jit_on then jit.off() end
    debug.sethook(make_hook(n), "", n < 2147483647 and n or 2147483647)
    local res = {pcall(f, ...)}
    if type(oh) == "function" then debug.sethook(oh, om, oc) else debug.sethook() end
    if jit_on then jit.on() end
    return unpack(res, 1, table.maxn(res))
  end
  own[bpcall] = true

  local function check(ok, ...)
    if not ok then error((...), 0) end
    return ...
  end
  own[check] = true

  -- f(...) under a budget of n instructions (errors propagate); plain()
  -- when there is no budget.
  local function budgeted(n, f, ...) return check(bpcall(n, f, ...)) end
  own[budgeted] = true
  local function plain(_, f, ...) return f(...) end

  -- moonrl's own work while making a copy (reading the spaces) is bounded
  -- too, by the budget plus this, as in the 5.4 binding.
  local LOAD_EXTRA = 1000000

  -- An inline env under a budget: its functions (those of the env table and
  -- of its metatable's __index table, the functions defined inside them,
  -- and the Lua functions they reach through upvalues, two levels deep) are
  -- excluded from compilation, and the traces compiled so far are flushed,
  -- so a loop the host ran compiled before cannot escape the hook.  (A
  -- helper reached otherwise, say through a global, may be compiled again
  -- later by the host: inline envs are the host's own code; untrusted code
  -- belongs in an env file, whose code never compiles.)
  local function nojit_fn(fn, depth, seen)
    if seen[fn] then return end
    seen[fn] = true
    local info = debug.getinfo(fn, "S")
    if not info or info.what == "C" then return end
    jit.off(fn, true)
    if depth <= 0 then return end
    for i = 1, 255 do
      local name, v = debug.getupvalue(fn, i)
      if name == nil then break end
      if type(v) == "function" then nojit_fn(v, depth - 1, seen) end
    end
  end
  local function nojit_inline(objs)
    if not jit then return end
    local seen = {}
    for _, e in ipairs(objs) do
      local mt = getmetatable(e)
      local holders = {e}
      if type(mt) == "table" and type(rawget(mt, "__index")) == "table" then
        holders[2] = rawget(mt, "__index")
      end
      for _, holder in ipairs(holders) do
        for _, fn in pairs(holder) do
          if type(fn) == "function" then nojit_fn(fn, 2, seen) end
        end
      end
    end
    jit.flush()
  end

  -- The views step() returns, made once (live views of the engine's
  -- buffers).  They keep alive what their memory belongs to (K), not self:
  -- self holds them, and the weak-keyed anchor table of core.lua is no
  -- ephemeron under LuaJIT, so anchoring self would keep it forever.
  local function make_views(self, h)
    local n, od, box = self._n, self._od, self.box
    local term_f, trunc_f = self._term_f, self._trunc_f
    local K = {h = self.h, box = box, term_f = term_f, trunc_f = trunc_f}
    self._obs = I.pushview(K, box, 4, ffi.cast("float *", C.mrl_vecenv_obs(h)), 2, {n, od})
    self._rew = I.pushview(K, box, 4, ffi.cast("float *", C.mrl_vecenv_rewards(h)), 1, {n})
    self._term = I.pushview(K, box, 4, term_f, 1, {n})
    self._trunc = I.pushview(K, box, 4, trunc_f, 1, {n})
    self._final = I.pushview(K, box, 4, ffi.cast("float *", C.mrl_vecenv_final_obs(h)), 2, {n, od})
  end

  -- ------------------------------------------ env files on worker states
  -- An env file runs on worker states:
  -- LuaJIT states of this process made by libmoonrl_luajit.so (the Lua 5.4
  -- binding's env_worker.c compiled against LuaJIT), stepped by the
  -- vecenv's own threads, with the 5.4 workers' sandbox, budget and memory
  -- cap.  Values cross as text: the config here, the spaces back.
  local ljw_lib, ljw_why
  local function ljw()
    if ljw_lib or ljw_why then return ljw_lib, ljw_why end
    ffi.cdef[[
typedef struct mrl_ljw_spec {
  const char *source, *env_path, *path, *cpath, *cfg_text;
  int num_envs, threads, trusted;
  int64_t budget, memory, max_steps, seed;
} mrl_ljw_spec;
typedef struct vl_pool mrl_ljw;
int mrl_ljw_abi(void);
mrl_ljw *mrl_ljw_new(const mrl_ljw_spec *s, char *err, size_t errlen);
void mrl_ljw_describe(const mrl_ljw *p, int *obs_dim, int *kind, int *action_n,
                      const float **bounds, int64_t *max_steps, const char **name,
                      int *workers);
const mrl_env_ops *mrl_ljw_ops(void);
const char *mrl_ljw_error(const mrl_ljw *p);
double mrl_ljw_memory(const mrl_ljw *p, double *cap);
void mrl_ljw_free(mrl_ljw *p);
char *mrl_ljw_space(mrl_ljw *p, int which);
void mrl_ljw_free_text(char *s);
]]
    local dir = I.LIBPATH and I.LIBPATH:match("^(.*[/\\])")
    local tried = {}
    for _, path in ipairs{os.getenv("MOONRL_LUAJIT_LIB") or false,
                          dir and dir .. "libmoonrl_luajit.so" or false} do
      if path then
        local ok, lib = pcall(ffi.load, path)
        if ok and lib.mrl_ljw_abi() == 1 then
          ljw_lib = lib
          return lib
        end
        tried[#tried + 1] = ok and (path .. ": another ABI") or tostring(lib)
      end
    end
    ljw_why = #tried > 0 and table.concat(tried, "; ") or "libmoonrl_luajit.so not found"
    return nil, ljw_why
  end

  -- Plain data as a Lua expression the worker loads as text.
  local function ser(v, depth, out)
    local t = type(v)
    if t == "number" then
      if v ~= v then out[#out + 1] = "(0/0)"
      elseif v == math.huge then out[#out + 1] = "(1/0)"
      elseif v == -math.huge then out[#out + 1] = "(-1/0)"
      else out[#out + 1] = format("%.17g", v) end
    elseif t == "string" then out[#out + 1] = format("%q", v)
    elseif t == "boolean" then out[#out + 1] = tostring(v)
    elseif t == "table" then
      if depth >= 16 then error("config: tables nested deeper than 16 (a cycle?)", 0) end
      out[#out + 1] = "{"
      for k, x in pairs(v) do
        out[#out + 1] = "["
        ser(k, depth + 1, out)
        out[#out + 1] = "]="
        ser(x, depth + 1, out)
        out[#out + 1] = ","
      end
      out[#out + 1] = "}"
    else
      error(format("config: a %s cannot be copied into a worker state " ..
                   "(only numbers, strings, booleans and tables)", t), 0)
    end
  end

  local function unser(text)
    local f = assert(loadstring(text, "=space"))
    setfenv(f, {})
    return f()
  end

  local function worker_vecenv(o)
    local W, why = ljw()
    if not W then
      raise("vecenv: env files run on the env worker states of the LuaJIT binding (" ..
            why .. ")")
    end
    local cfg_text
    if o.config ~= nil then
      local out = {"return "}
      local ok, e = pcall(ser, o.config, 0, out)
      if not ok then raise(format("env '%s' copy 0: %s", tostring(o.source), e)) end
      cfg_text = table.concat(out)
    end
    local s = ffi.new("mrl_ljw_spec")
    local source = tostring(o.source)
    local path, cpath = package.path, package.cpath
    s.source, s.env_path, s.path, s.cfg_text = source, o.env_path, path, cfg_text
    s.cpath = o.trusted and cpath or nil
    s.num_envs, s.threads, s.trusted = o.n, o.threads, o.trusted and 1 or 0
    s.budget, s.memory, s.max_steps, s.seed = o.budget, o.memory, o.max_steps, o.seed
    local err = ffi.new("char[700]")
    local p = W.mrl_ljw_new(s, err, 700)
    if p == nil then raise(ffi.string(err)) end
    local od_, kind_, an_ = ffi.new("int[1]"), ffi.new("int[1]"), ffi.new("int[1]")
    local b_, ms_, nm_, wk_ = ffi.new("const float *[1]"), ffi.new("int64_t[1]"),
                              ffi.new("const char *[1]"), ffi.new("int[1]")
    W.mrl_ljw_describe(p, od_, kind_, an_, b_, ms_, nm_, wk_)
    local n, od, kind, an, workers = o.n, od_[0], kind_[0], an_[0], wk_[0]
    local spaces = {}
    for which = 0, 1 do
      local text = W.mrl_ljw_space(p, which)
      if text == nil then
        W.mrl_ljw_free(p)
        raise("vecenv: out of memory")
      end
      local str = ffi.string(text)
      W.mrl_ljw_free_text(text)
      spaces[which + 1] = unser(str)
    end
    local name = ffi.string(nm_[0])
    local max_steps = tonumber(ms_[0])
    local desc = ffi.new("mrl_env_desc")
    desc.num_envs, desc.obs_dim, desc.action_kind, desc.action_n = n, od, kind, an
    desc.blocks, desc.max_episode_steps, desc.name = workers, max_steps, name
    if b_[0] ~= nil then desc.low, desc.high = b_[0], b_[0] + an end
    local out = ffi.new("mrl_vecenv *[1]")
    -- the vecenv owns p from here (its destroy frees the worker states)
    local st = C.mrl_vecenv_new(out, W.mrl_ljw_ops(), p, desc)
    if st ~= OK then
      raise(format("vecenv: %s (obs_dim %d, action_n %d)", I.status_string(st), od, an))
    end
    local self = setmetatable({
      h = nil, box = box_t(), _n = n, _od = od, _name = name, _inline = false,
      _max_steps = max_steps, _seed = o.seed, _resets = 0, _has_reset = false,
      _term_f = floats_t(n), _trunc_f = floats_t(n), _ospace = spaces[1], _aspace = spaces[2],
      _kind = kind, _an = an, _actbuf = floats_t(n), _cbs = {},
      _threads = workers > 1 and workers or 0, _W = W, _pool = p,
    }, vecenv_mt)
    -- the message of the failing copy, as the ops left it
    self._S = setmetatable({}, {__index = function(_, k)
      if k == "err" then return ffi.string(W.mrl_ljw_error(p)) end
    end})
    local h = out[0]
    self.h = ffi.gc(h, C.mrl_vecenv_free)
    self.box[0] = h
    make_views(self, h)
    return self
  end

  local function call_reset(env, seed) return env:reset(seed) end
  local function call_step(env, a) return env:step(a) end

  function core.vecenv(t)
    if type(t) ~= "table" or I.isobj(t) then typeerror("vecenv", 1, "table", t) end
    local source = t.source
    local inline_env = type(source) == "table"
    if not inline_env and type(source) ~= "string" and type(source) ~= "number" then
      raise("vecenv: field 'source' must be an env id, a path to an env .lua file, or an env table")
    end
    local config = t.config
    if config ~= nil and type(config) ~= "table" then raise("vecenv: field 'config' must be a table") end
    local n = I.optintfield(t, "num_envs", 1, 1, 65536)
    local threads = I.optintfield(t, "threads", 0, 0, 256)
    local seed = I.optintfield(t, "seed", 0)
    local budget = I.optintfield(t, "budget", 0, 0, 2147483647)
    local memory = I.optintfield(t, "memory", 0, 0, 2 ^ 53)
    if inline_env and memory > 0 then
      raise("vecenv: a memory cap needs an env file (an inline env runs in the caller's " ..
            "own Lua state)")
    end
    local trusted = t.trusted and true or nil
    local max_steps = -1 -- the env's own
    local mes = t.max_episode_steps
    if mes == false then max_steps = 0
    elseif mes ~= nil then max_steps = I.optintfield(t, "max_episode_steps", 0, 0, 2 ^ 53) end
    local env_path = t.env_path
    if env_path ~= nil and type(env_path) ~= "string" then
      raise("vecenv: field 'env_path' must be a string")
    end
    if not inline_env then
      return worker_vecenv{source = source, config = config, n = n, threads = threads,
                           seed = seed, budget = budget, memory = memory,
                           trusted = trusted, max_steps = max_steps, env_path = env_path}
    end
    local name = "inline"

    -- the copies: under a budget, each call of env code (Env.new, reset,
    -- step) gets the budget and the whole creation is bounded by budget +
    -- LOAD_EXTRA (method lookups and metamethods of the env's tables included)
    local envs, sp = {}, nil
    local ospace, aspace
    local cur = 0
    local guard = budget > 0 and budgeted or plain
    if budget > 0 then nojit_inline({source}) end
    local function create()
      for copy = 0, n - 1 do
        cur = copy
        local e
        local new = rawget(source, "new")
        if type(new) == "function" then
          e = guard(budget, new, config)
          if type(e) ~= "table" then error("Env.new must return the env object", 0) end
        else
          if n ~= 1 then
            error(format("an env object (a table without new) can back only num_envs = 1; " ..
                         "pass its class to get %d copies", n), 0)
          end
          e = source
        end
        if copy == 0 then
          sp = read_spaces(e)
          local id = e.id
          if type(id) == "string" then name = id end
          if max_steps < 0 then
            local m = tonumber(e.max_episode_steps)
            max_steps = (m and m > 0) and floor(m) or 0
          end
          ospace = xcopy(e.observation_space, 0, "observation_space")
          aspace = xcopy(e.action_space, 0, "action_space")
        end
        envs[copy + 1] = e
      end
    end
    local ok, err
    if budget > 0 then
      ok, err = bpcall(budget + LOAD_EXTRA, create)
    else
      ok, err = pcall(create)
    end
    if not ok then raise(format("env '%s' copy %d: %s", name, cur, errobj(err))) end
    if max_steps < 0 then max_steps = 0 end

    local od, width, kind, an = sp.obs_dim, sp.width, sp.kind, sp.action_n
    local acts = {} -- reusable box action tables, one per copy
    if kind == BOX then
      for i = 1, n do
        local a = {}
        for j = 1, width do a[j] = 0 end
        acts[i] = a
      end
    end
    local term_f, trunc_f = floats_t(n), floats_t(n)

    local self = setmetatable({
      h = nil, box = box_t(), _n = n, _od = od, _name = name, _inline = true,
      _max_steps = max_steps, _seed = seed, _resets = 0, _has_reset = false,
      _term_f = term_f, _trunc_f = trunc_f, _S = nil,
      _ospace = ospace, _aspace = aspace,
      _kind = kind, _an = an, _actbuf = floats_t(n),
    }, vecenv_mt)

    -- What the callbacks reach.  Not `self`: the callbacks are anchored
    -- until freed, and a reference to self would keep it from being
    -- collected (and from freeing them in its finaliser).
    local S = {err = "", cur = 0}
    self._S = S
    local function fail(copy, e)
      S.err = format("env '%s' copy %d: %s", name, copy, errobj(e))
      return EENV
    end

    -- The batches run under one pcall each (run_batch); S.cur names the
    -- copy an error comes from.  No pcall per env: they would keep the
    -- loops from compiling into one trace.
    -- The vecenv's contract (row and reward checks, time limit, episode
    -- counts, final_obs) is in the commits; this converts.
    local ended = ffi.new("int[1]")
    local function reset_one(v, env, i, seed)
      read_obs(guard(budget, call_reset, env, seed), C.mrl_vecenv_row(v, i), od, "reset")
      return C.mrl_vecenv_commit_reset(v, i, "reset")
    end

    local function reset_batch(v, seeds)
      for i = 0, n - 1 do
        S.cur = i
        local s = seeds ~= nil and tonumber(seeds[i]) or nil
        local st = reset_one(v, envs[i + 1], i, s)
        if st ~= OK then return st end
      end
      return OK
    end

    local function step_batch(v, actions)
      for i = 0, n - 1 do
        S.cur = i
        local env = envs[i + 1]
        local a
        if kind == DISCRETE then
          a = actions[i]
        else
          a = acts[i + 1]
          for j = 1, width do a[j] = actions[i * width + j - 1] end
        end
        local o, r, te, tr = guard(budget, call_step, env, a)
        read_obs(o, C.mrl_vecenv_row(v, i), od, "step")
        if type(r) ~= "number" then
          error(format("step returned reward of type %s (expected a number; step " ..
                       "must return obs, reward, terminated, truncated, info)", type(r)), 0)
        end
        if type(te) ~= "boolean" then
          error(format("step returned terminated of type %s (expected a boolean)", type(te)), 0)
        end
        if type(tr) ~= "boolean" then
          error(format("step returned truncated of type %s (expected a boolean)", type(tr)), 0)
        end
        local st = C.mrl_vecenv_commit_step(v, i, "step", r, te and 1 or 0, tr and 1 or 0, ended)
        if st ~= OK then return st end
        if ended[0] ~= 0 then
          st = reset_one(v, env, i, nil)
          if st ~= OK then return st end
        end
      end
      return OK
    end

    -- Callbacks are a limited resource: freed by close() (and by the
    -- finaliser of the vecenv handle, through the anchor below).
    -- With a budget the JIT is off for the batch, so an endless loop in an
    -- env is always interpreted and the count hook stops it (an inline
    -- env's instances are handled by nojit_inline once more at the first
    -- batch: Env.new may have given them functions of their own).
    local function run_batch(f, ...)
      if budget <= 0 or not jit then return pcall(f, ...) end
      local was_on = jit.status()
      if not S.flushed then
        nojit_inline(envs)
        S.flushed = true
      end
      jit.off()
      local res = {pcall(f, ...)}
      if was_on then jit.on() end
      return unpack(res, 1, table.maxn(res))
    end
    local cbs = {
      ffi.cast(reset_cb_t, function(_, v, _, seeds)
        local ok_, st = run_batch(reset_batch, v, seeds)
        if not ok_ then return fail(S.cur, st) end
        return st
      end),
      ffi.cast(step_cb_t, function(_, v, _, a)
        local ok_, st = run_batch(step_batch, v, a)
        if not ok_ then return fail(S.cur, st) end
        return st
      end),
      ffi.cast(error_cb_t, function() return S.err end),
    }
    self._cbs = cbs
    local ops = ffi.new("mrl_env_ops")
    ops.reset, ops.step, ops.error, ops.destroy = cbs[1], cbs[2], cbs[3], nil
    local desc = ffi.new("mrl_env_desc")
    desc.num_envs, desc.obs_dim, desc.action_kind, desc.action_n = n, od, kind, an
    desc.blocks, desc.max_episode_steps, desc.name = 1, max_steps, name
    if sp.bounds then
      desc.low, desc.high = sp.bounds, sp.bounds + an
    end
    self._bounds = sp.bounds
    local out = ffi.new("mrl_vecenv *[1]")
    local st = C.mrl_vecenv_new(out, ops, nil, desc)
    if st ~= OK then
      for _, cb in ipairs(cbs) do cb:free() end
      raise(format("vecenv: %s (obs_dim %d, action_n %d)", I.status_string(st), od, an))
    end
    local h = out[0]
    -- the engine first, then the callbacks it may still call while freeing
    self.h = ffi.gc(h, function(p)
      C.mrl_vecenv_free(p)
      for _, cb in ipairs(cbs) do cb:free() end
    end)
    self.box[0] = h
    make_views(self, h)
    return self
  end

  function VE.close(self)
    if getmetatable(self) ~= vecenv_mt then typeerror("close", 0, "moonrl.VecEnv", self) end
    local h = self.h
    if h ~= nil then
      self.h = nil
      self.box[0] = nil
      ffi.gc(h, nil)
      C.mrl_vecenv_free(h)
      for _, cb in ipairs(self._cbs) do cb:free() end
      self._cbs = {}
    end
  end

  -- The envs run in this Lua state in the middle of reset, step and collect
  -- (inline envs, trusted env files and anything they call).  While they
  -- run, the objects the C call uses -- the VecEnv, and in collect the
  -- rollout, policy and value net -- read as closed (h and the views' box
  -- cleared, as the 5.4 binding clears its handle slots), so env code that
  -- closes one gets a no-op and one that uses it gets "attempt to use a
  -- closed ..." instead of freeing memory under the call.  The handles stay
  -- alive meanwhile: the caller's locals hold them.
  local function hide(o)
    o.h = nil
    local b = o.box
    if b then b[0] = nil end
  end
  local function unhide(o, h)
    o.h = h
    local b = o.box
    if b then b[0] = h end
  end

  local function vraise(self, h, st)
    if st == EENV then raise(self._S.err) end
    raise(ffi.string(C.mrl_vecenv_error(h)))
  end

  function VE.reset(self, seed)
    local h = checkvec(self, "reset")
    local s
    if seed == nil then
      -- fresh but reproducible episodes on every seedless reset
      s = self._seed + self._resets * self._n
    else
      s = I.checkinteger("reset", 1, seed)
    end
    local us = s < 0 and ffi.cast("uint64_t", ffi.cast("int64_t", s)) or s
    hide(self)
    local st = C.mrl_vecenv_reset(h, us)
    unhide(self, h)
    if st ~= OK then vraise(self, h, st) end
    self._resets = self._resets + 1
    self._has_reset = true
    ffi.fill(self._term_f, self._n * 4)
    ffi.fill(self._trunc_f, self._n * 4)
    return self._obs
  end

  function VE.step(self, actions)
    local h = checkvec(self, "step")
    if not self._has_reset then raise("step: call reset() first") end
    local n = self._n
    local a
    -- a Lua array of N discrete actions, read into the engine's own buffer
    if self._kind == DISCRETE and type(actions) == "table" and #actions == n then
      a = self._actbuf
      for i = 1, n do
        local k = rawget(actions, i)
        if type(k) ~= "number" or k ~= floor(k) or k < 0 or k >= self._an then a = nil break end
        a[i - 1] = k
      end
    end
    if a == nil then
      a = I.checkactions(actions, "step", 1, self._kind, self._an, n)
    end
    hide(self)
    local st = C.mrl_vecenv_step(h, a)
    unhide(self, h)
    if st ~= OK then vraise(self, h, st) end
    local te, tr = C.mrl_vecenv_terminated(h), C.mrl_vecenv_truncated(h)
    local term_f, trunc_f = self._term_f, self._trunc_f
    for i = 0, n - 1 do
      term_f[i] = te[i]
      trunc_f[i] = tr[i]
    end
    return self._obs, self._rew, self._term, self._trunc
  end

  function VE.final_obs(self) checkvec(self, "final_obs") return self._final end

  function VE.episodes(self)
    local h = checkvec(self, "episodes")
    local ret, len = ffi.new("double[64]"), ffi.new("int64_t[64]")
    local out = {}
    while true do
      local k = C.mrl_vecenv_drain_episodes(h, ret, len, 64)
      if k <= 0 then break end
      for j = 0, k - 1 do
        out[#out + 1] = {["return"] = ret[j], length = tonumber(len[j])}
      end
    end
    return out
  end

  function VE.total_steps(self) return tonumber(C.mrl_vecenv_total_steps(checkvec(self, "total_steps"))) end
  function VE.num_envs(self) checkvec(self, "num_envs") return self._n end
  function VE.obs_dim(self) checkvec(self, "obs_dim") return self._od end
  function VE.threads(self) checkvec(self, "threads") return self._threads or 0 end
  -- bytes held by the worker states (0 for envs in this state), and the cap
  function VE.memory(self)
    checkvec(self, "memory")
    if not self._pool then return 0, 0 end
    local cap = ffi.new("double[1]")
    local used = self._W.mrl_ljw_memory(self._pool, cap)
    return used, cap[0]
  end
  function VE.max_episode_steps(self) checkvec(self, "max_episode_steps") return self._max_steps end
  function VE.observation_space(self)
    checkvec(self, "observation_space")
    return xcopy(self._ospace, 0, "space")
  end
  function VE.action_space(self)
    checkvec(self, "action_space")
    return xcopy(self._aspace, 0, "space")
  end

  function VE.collect(self, rollout, policy, value)
    local h = checkvec(self, "collect")
    local r = checkrollout(rollout, "collect", 1)
    local p = I.checkpolicy_arg(policy, "collect", 2)
    local v = nil
    if value ~= nil then v = I.checknet_arg(value, "collect", 3) end
    if not self._has_reset then raise("collect: call reset() first") end
    hide(self); hide(rollout); hide(policy)
    if v ~= nil then hide(value) end
    local st = C.mrl_rollout_collect(r, h, p, v)
    unhide(self, h); unhide(rollout, r); unhide(policy, p)
    if v ~= nil then unhide(value, v) end
    if st == EENV then raise(self._S.err) end
    if st ~= OK then raise(ffi.string(C.mrl_rollout_error(r))) end
    -- the flag mirrors follow the last step
    local te, tr = C.mrl_vecenv_terminated(h), C.mrl_vecenv_truncated(h)
    for i = 0, self._n - 1 do
      self._term_f[i] = te[i]
      self._trunc_f[i] = tr[i]
    end
    return rollout
  end

  -- C calls that run the callbacks must not come from compiled code.
  if jit then
    jit.off(VE.reset)
    jit.off(VE.step)
    jit.off(VE.collect)
  end
end
