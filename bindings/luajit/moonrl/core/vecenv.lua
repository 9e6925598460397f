-- moonrl.core.vecenv (LuaJIT): core.vecenv and core.rollout
-- for the FFI binding, with the Lua interface of bindings/lua54/vecenv_lua.c
-- (moonrl.VecEnv, moonrl.Rollout).  Loaded by moonrl/core.lua, which passes
-- itself to the function this file returns.
--
-- Every env runs on bindings/lua54/env_worker.c, as under Lua 5.4,
-- compiled against LuaJIT into libmoonrl_luajit.so (with
-- bindings/luajit/env_worker_ffi.c; without that library a vecenv is
-- refused): an env file on private LuaJIT worker states, stepped on the
-- vecenv's threads when threads > 1; an inline env (a table) in this Lua
-- state, through the library's Lua C functions (luaopen_moonrl_ljw_inline),
-- since a C function reached by the FFI must not call back into its
-- caller's state.  The batching, time limits, action clipping, episode
-- statistics and rollout collection are the C engine's (mrl_vecenv_*,
-- mrl_rollout_*); this file converts.  The Lua functions that may run env
-- code in this state (reset, an inline env's step, collect) are excluded
-- from compilation (jit.off); the step of env files compiles.

local ffi = require "ffi"
local jit = rawget(_G, "jit")

return function(core)
  local I = core._internal
  local C = I.C
  local raise, argerror, typeerror, typename = I.raise, I.argerror, I.typeerror, I.typename
  local format, concat = string.format, table.concat
  local type, rawget, pcall, tostring, setmetatable, getmetatable =
    type, rawget, pcall, tostring, setmetatable, getmetatable

  local MAX_BATCH, MAX_WIDTH = 16777216, 65536
  local EENV, OK = 7, 0

  local floats_t = ffi.typeof("float[?]")
  local box_t = ffi.typeof("void *[1]")

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
      C.mrl_floats_from_flags(src, T * n, t.d_)
      return t
    end
    local shape = {T, n, f == 0 and self._od or self._w}
    return I.pushview(self, self.box, 3, C.mrl_rollout_field_ptr(h, f), f <= 1 and 3 or 2, shape)
  end

  -- The invalid-action masks [T][N][K] the actions were drawn under (a
  -- live view), nil when the rollout has none.
  function RO.masks(self)
    local h = checkrollout(self, "masks", 0)
    local k = C.mrl_rollout_mask_width(h)
    if k == 0 then return nil end
    local shape = {C.mrl_rollout_steps(h), C.mrl_rollout_num_envs(h), k}
    return I.pushview(self, self.box, 3, C.mrl_rollout_masks(h), 3, shape)
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

  -- Instruction budgets of inline envs: env_worker.c's count hook, which
  -- fires in the interpreter only, never inside a compiled trace, so every
  -- call that runs budgeted env code runs with the JIT off (jit.off() for
  -- the call, which also stops new traces from being recorded).
  local function nojit_call(budget, f, ...)
    if budget <= 0 or not jit then return f(...) end
    local on = jit.status()
    jit.off()
    local res = {pcall(f, ...)}
    if on then jit.on() end
    if not res[1] then error(res[2], 0) end
    return unpack(res, 2, table.maxn(res))
  end

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
    local mw = C.mrl_vecenv_mask_width(h)
    if mw > 0 then  -- [N][K] the env's action masks, 1 = valid
      self._masks = I.pushview(K, box, 4, ffi.cast("float *", C.mrl_vecenv_masks(h)), 2, {n, mw})
    end
  end

  -- ------------------------------------------------ the env worker code
  -- libmoonrl_luajit.so (env_worker.c compiled against LuaJIT, with
  -- bindings/luajit/env_worker_ffi.c): a vecenv of env files on worker
  -- states or of an inline env (a table) in this state is made, stepped and
  -- freed by its Lua C functions (LI); the FFI reads the rest.
  local ljw_lib, ljw_why, ljw_path
  local function ljw()
    if ljw_lib or ljw_why then return ljw_lib, ljw_why end
    ffi.cdef[[
typedef struct vl_pool mrl_ljw;
typedef struct mrl_ljw_inline {
  mrl_ljw *p;
  mrl_vecenv *v;
  mrl_rollout *r;
  mrl_policy *pol;
  mrl_net *val;
  uint64_t seed;
  const float *actions;
} mrl_ljw_inline;
int mrl_ljw_abi(void);
const char *mrl_ljw_error(const mrl_ljw *p);
double mrl_ljw_memory(const mrl_ljw *p, double *cap);
float *mrl_ljw_flags(mrl_ljw *p, int which);
int mrl_ljw_step(mrl_ljw_inline *li, const float *actions);
]]
    local dir = I.LIBPATH and I.LIBPATH:match("^(.*[/\\])")
    local tried = {}
    for _, path in ipairs{os.getenv("MOONRL_LUAJIT_LIB") or false,
                          dir and dir .. "libmoonrl_luajit.so" or false} do
      if path then
        local ok, lib = pcall(ffi.load, path)
        if ok and lib.mrl_ljw_abi() == 5 then
          ljw_lib, ljw_path = lib, path
          return lib
        end
        tried[#tried + 1] = ok and (path .. ": another ABI") or tostring(lib)
      end
    end
    ljw_why = #tried > 0 and table.concat(tried, "; ") or "libmoonrl_luajit.so not found"
    return nil, ljw_why
  end

  -- Under a budget an inline env's functions are kept from compiling
  -- (nojit_inline) and every call of its code runs with the JIT off.
  local LI
  local function make_vecenv(o)
    local W, why = ljw()
    if not W then
      raise("vecenv: envs run on the env worker code of the LuaJIT binding (" .. why .. ")")
    end
    if not LI then
      local open, e = package.loadlib(ljw_path, "luaopen_moonrl_ljw_inline")
      if not open then raise("vecenv: " .. tostring(e)) end
      LI = open()
    end
    local inline = type(o.source) == "table"
    local budget = inline and o.budget or 0  -- (a worker state budgets itself)
    if budget > 0 then nojit_inline({o.source}) end
    local ok, li, ospace, aspace, envs = pcall(nojit_call, budget, LI.make, o.source, o.config,
                                               o.n, o.threads, o.budget, o.memory, o.trusted,
                                               o.max_steps, o.env_path, o.seed, package.path,
                                               o.trusted and package.cpath or nil, o.masks)
    if not ok then raise(li) end
    local c = ffi.cast("mrl_ljw_inline *", li)
    local h, p = c.v, c.p
    local d = C.mrl_vecenv_desc(h)
    local n, workers = d.num_envs, d.blocks
    local self = setmetatable({
      h = nil, box = box_t(), _n = n, _od = d.obs_dim, _name = ffi.string(d.name),
      _inline = inline, _max_steps = tonumber(d.max_episode_steps), _seed = o.seed,
      _resets = 0, _has_reset = false, _term_f = W.mrl_ljw_flags(p, 0),
      _trunc_f = W.mrl_ljw_flags(p, 1),
      _ospace = ospace, _aspace = aspace, _kind = tonumber(d.action_kind), _an = d.action_n,
      _threads = workers > 1 and workers or 0, _W = W, _pool = p,
      _li = li, _lic = c, _budget = budget, _envs = envs, _abuf = floats_t(n),
    }, vecenv_mt)
    -- the message of the failing copy, as the ops left it
    self._S = setmetatable({}, {__index = function(_, k)
      if k == "err" then return ffi.string(W.mrl_ljw_error(p)) end
    end})
    self.h = ffi.gc(h, function() LI.free(li) end)
    self.box[0] = h
    make_views(self, h)
    return self
  end

  -- reset / step / collect (for an inline env under a budget the JIT off,
  -- and at the first batch the env's functions once more: Env.new may have
  -- given the instances their own).
  local function inline_call(self, f, ...)
    if self._budget > 0 and not self._flushed then
      nojit_inline(self._envs)
      self._flushed = true
    end
    return nojit_call(self._budget, f, self._li, ...)
  end

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
    return make_vecenv{source = source, config = config, n = n, threads = threads,
                       seed = seed, budget = budget, memory = memory, trusted = trusted,
                       max_steps = max_steps, env_path = env_path, masks = t.masks ~= false}
  end

  function VE.close(self)
    if getmetatable(self) ~= vecenv_mt then typeerror("close", 0, "moonrl.VecEnv", self) end
    local h = self.h
    if h ~= nil then
      self.h = nil
      self.box[0] = nil
      ffi.gc(h, nil)
      LI.free(self._li)
    end
  end

  -- The envs run in this Lua state in the middle of reset, step and collect
  -- (inline envs and anything they call).  While they
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
    self._lic.seed = us
    local st = inline_call(self, LI.reset)
    unhide(self, h)
    if st ~= OK then vraise(self, h, st) end
    self._resets = self._resets + 1
    self._has_reset = true
    ffi.fill(self._term_f, self._n * 4)
    ffi.fill(self._trunc_f, self._n * 4)
    return self._obs
  end

  local LI_SLOW = -1000  -- env_worker_ffi.c's
  -- An inline env's step (runs interpreted: its code runs in this state).
  -- LI.step reads a Lua array of N discrete actions itself and makes the
  -- flag mirrors; anything else is converted here (LI_SLOW) and passed in
  -- _lic.actions.  While env code runs, self is hidden.
  local function step_inline(self, h, actions)
    local st = LI_SLOW
    hide(self)
    if type(actions) == "table" then st = inline_call(self, LI.step, actions) end
    if st == LI_SLOW then
      unhide(self, h)
      self._lic.actions = I.checkactions(actions, "step", 1, self._kind, self._an, self._n)
      hide(self)
      st = inline_call(self, LI.step)
    end
    unhide(self, h)
    return st
  end

  -- Env files run on worker states only, so their step is an FFI call,
  -- and this function compiles: a Lua array of N valid discrete actions is
  -- copied here (the checks LI.step makes), anything else converted by
  -- checkactions (with its messages).
  local DISCRETE = I.DISCRETE
  local floor = math.floor
  function VE.step(self, actions)
    local h = checkvec(self, "step")
    if not self._has_reset then raise("step: call reset() first") end
    local st
    if self._inline then
      st = step_inline(self, h, actions)
    else
      local a, n = nil, self._n
      if type(actions) == "table" and self._kind == DISCRETE and #actions == n then
        local buf, an = self._abuf, self._an
        a = buf
        for i = 1, n do
          local k = rawget(actions, i)
          if type(k) ~= "number" or not (k >= 0 and k < an) or k ~= floor(k) then
            a = nil
            break
          end
          buf[i - 1] = k
        end
      end
      if a == nil then a = I.checkactions(actions, "step", 1, self._kind, self._an, n) end
      st = self._W.mrl_ljw_step(self._lic, a)
    end
    if st ~= OK then vraise(self, h, st) end
    return self._obs, self._rew, self._term, self._trunc
  end

  function VE.final_obs(self) checkvec(self, "final_obs") return self._final end
  function VE.masks(self) checkvec(self, "masks") return self._masks end

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
    return LI.copy(self._ospace)
  end
  function VE.action_space(self)
    checkvec(self, "action_space")
    return LI.copy(self._aspace)
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
    local c = self._lic
    c.r, c.pol, c.val = r, p, v
    local st = inline_call(self, LI.collect)
    unhide(self, h); unhide(rollout, r); unhide(policy, p)
    if v ~= nil then unhide(value, v) end
    if st == EENV then raise(self._S.err) end
    if st ~= OK then raise(ffi.string(C.mrl_rollout_error(r))) end
    return rollout -- (LI.collect has made the flag mirrors follow the last step)
  end

  -- C calls that run the callbacks must not come from compiled code.
  if jit then
    jit.off(VE.reset)
    jit.off(step_inline)
    jit.off(VE.collect)
  end
end
