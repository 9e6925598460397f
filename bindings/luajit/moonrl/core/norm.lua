-- moonrl.core.norm (LuaJIT), the counterpart of bindings/lua54/l_norm.c:
-- moonrl.RunningMeanStd (core.rms), moonrl.RewardNormalizer
-- (core.reward_norm) and core.rollout_set_norm (docs/CORE_API.md).
-- A part of moonrl/core.lua (see PARTS there).  Reducers (MPI) exist only
-- in the Lua 5.4 host, so a `reduce` here is refused.

return function(core, I)
  local setmetatable, type, format = setmetatable, type, string.format
  local C, ffi, raise, argerror, typeerror = I.C, I.ffi, I.raise, I.argerror, I.typeerror
  local isfinite, checkinteger, newclass = I.isfinite, I.checkinteger, I.newclass
  local status_string, checkmat, checkvec = I.status_string, I.checkmat, I.checkvec
  local new1, new2, u8s_t, MAX_WIDTH, MAX_BATCH = I.new1, I.new2, I.u8s_t, I.MAX_WIDTH, I.MAX_BATCH
  local doubles_t = ffi.typeof("double[?]")

  local function errstr(fn, h)
    local m = fn(h)
    return m ~= nil and ffi.string(m) or "?"
  end

  local function optpos(fname, argn, v, def, allow0)
    if v == nil then return def end
    if type(v) ~= "number" or not isfinite(v) or v < 0 or (not allow0 and v == 0) then
      argerror(fname, argn, allow0 and "finite number >= 0 expected" or "finite number > 0 expected")
    end
    return v
  end

  local function noreduce(fname, argn, r)
    if r ~= nil then argerror(fname, argn, "reducers are not available in the LuaJIT binding") end
  end

  local function doublesfield(t, k, n)
    local v = t[k]
    if type(v) ~= "table" or #v ~= n then
      raise(format("bad field '%s' (table of %d numbers expected, got %s)", k, n,
                   type(v) == "table" and tostring(#v) or type(v)))
    end
    local d = doubles_t(n)
    for i = 1, n do
      local x = v[i]
      if type(x) ~= "number" then raise(format("bad field '%s' (number expected at [%d])", k, i)) end
      d[i - 1] = x
    end
    return d
  end

  local function numfield(t, k)
    local v = t[k]
    if type(v) ~= "number" then
      raise(format("bad field '%s' (number expected, got %s)", k, type(v)))
    end
    return v
  end

  -- ------------------------------------------------------ RunningMeanStd

  local S = {}
  local rms_mt = newclass("moonrl.RunningMeanStd", S)

  local checkrms = I.selfchecker(rms_mt, "moonrl.RunningMeanStd")

  rms_mt.__tostring = function(self)
    if self.h == nil then return "moonrl.RunningMeanStd (closed)" end
    return format("moonrl.RunningMeanStd (dim %d, count %s)", C.mrl_rms_dim(self.h),
                  tostring(C.mrl_rms_count(self.h)))
  end

  function core.rms(dim)
    dim = checkinteger("rms", 1, dim)
    if dim < 1 or dim > MAX_WIDTH then argerror("rms", 1, "dim in [1, 65536] expected") end
    local out = ffi.new("mrl_rms *[1]")
    local st = C.mrl_rms_new(out, dim)
    if st ~= 0 then raise("cannot create rms: " .. status_string(st)) end
    return setmetatable({h = ffi.gc(out[0], C.mrl_rms_free), d = dim}, rms_mt)
  end

  function S.dim(self) return C.mrl_rms_dim(checkrms(self, "dim")) end
  function S.count(self) return C.mrl_rms_count(checkrms(self, "count")) end

  function S.update(self, rows, reducer)
    local h = checkrms(self, "update")
    local d, n = checkmat(rows, "update", 1, self.d, -1)
    noreduce("update", 2, reducer)
    if C.mrl_rms_update(h, d, n) ~= 0 then raise(errstr(C.mrl_rms_error, h)) end
    return self
  end

  function S.normalize(self, rows, clip, eps)
    local h = checkrms(self, "normalize")
    local d, n, batched = checkmat(rows, "normalize", 1, self.d, -1)
    clip = optpos("normalize", 2, clip, 10, false)
    eps = optpos("normalize", 3, eps, 1e-8, true)
    local y = batched and new2(n, self.d) or new1(self.d)
    if C.mrl_rms_apply(h, d, n, clip, eps, y.d_) ~= 0 then raise(errstr(C.mrl_rms_error, h)) end
    return y
  end

  function S.state(self)
    local h = checkrms(self, "state")
    local n = self.d
    local m, v, c = doubles_t(n), doubles_t(n), doubles_t(1)
    C.mrl_rms_get_state(h, m, v, c)
    local mean, var = {}, {}
    for i = 1, n do mean[i], var[i] = m[i - 1], v[i - 1] end
    return {mean = mean, var = var, count = c[0]}
  end

  function S.set_state(self, t)
    local h = checkrms(self, "set_state")
    if type(t) ~= "table" then typeerror("set_state", 1, "table", t) end
    local m, v = doublesfield(t, "mean", self.d), doublesfield(t, "var", self.d)
    local c = numfield(t, "count")
    if C.mrl_rms_set_state(h, m, v, c) ~= 0 then raise(errstr(C.mrl_rms_error, h)) end
    return self
  end

  function S.reset(self)
    C.mrl_rms_reset(checkrms(self, "reset"))
    return self
  end

  -- set_mask(mask | nil) → self: which columns normalize() standardises
  -- (1/true) and which it passes through (0/false), dim entries; nil: all.
  function S.set_mask(self, mask)
    local h = checkrms(self, "set_mask")
    if mask == nil then
      C.mrl_rms_set_mask(h, nil)
      return self
    end
    if type(mask) ~= "table" then typeerror("set_mask", 1, "table", mask) end
    local d = self.d
    if #mask ~= d then argerror("set_mask", 1, format("%d entries expected, got %d", d, #mask)) end
    local m = u8s_t(d)
    for j = 1, d do
      local v = mask[j]
      if v == true or v == 1 then m[j - 1] = 1
      elseif v == false or v == 0 then m[j - 1] = 0
      else argerror("set_mask", 1, format("entry %d must be 0, 1 or a boolean", j)) end
    end
    if C.mrl_rms_set_mask(h, m) ~= 0 then raise(errstr(C.mrl_rms_error, h)) end
    return self
  end

  -- rollouts using it drop it at their next collect
  S.close = I.closer(rms_mt, "moonrl.RunningMeanStd", C.mrl_rms_close)

  -- ---------------------------------------------------- RewardNormalizer

  local R = {}
  local rn_mt = newclass("moonrl.RewardNormalizer", R)

  local checkrn = I.selfchecker(rn_mt, "moonrl.RewardNormalizer")

  rn_mt.__tostring = function(self)
    if self.h == nil then return "moonrl.RewardNormalizer (closed)" end
    return format("moonrl.RewardNormalizer (%d envs)", self.n)
  end

  function core.reward_norm(n)
    n = checkinteger("reward_norm", 1, n)
    if n < 1 or n > MAX_BATCH then argerror("reward_norm", 1, "num_envs >= 1 expected") end
    local out = ffi.new("mrl_retnorm *[1]")
    local st = C.mrl_retnorm_new(out, n)
    if st ~= 0 then raise("cannot create reward_norm: " .. status_string(st)) end
    return setmetatable({h = ffi.gc(out[0], C.mrl_retnorm_free), n = n,
                         dones = u8s_t(n)}, rn_mt)
  end

  function R.num_envs(self) checkrn(self, "num_envs") return self.n end

  function R.step(self, rewards, dones, gamma, clip, eps, update, reducer)
    local h = checkrn(self, "step")
    local n = self.n
    local r = checkvec(rewards, "step", 1, n, false)
    local df = checkvec(dones, "step", 2, n, true)
    if gamma == nil then gamma = 0.99 end
    if type(gamma) ~= "number" or not (gamma >= 0 and gamma <= 1) then
      argerror("step", 3, "number in [0, 1] expected")
    end
    clip = optpos("step", 4, clip, 10, false)
    eps = optpos("step", 5, eps, 1e-8, true)
    noreduce("step", 7, reducer)
    local u = self.dones
    C.mrl_flags_from_floats(df, n, u)
    local out = new1(n)
    local st = C.mrl_retnorm_step(h, r, u, gamma, clip, eps, update == false and 0 or 1,
                                  nil, nil, out.d_)
    if st ~= 0 then raise(errstr(C.mrl_retnorm_error, h)) end
    return out
  end

  function R.state(self)
    local h = checkrn(self, "state")
    local n = self.n
    local m, v, c, ret = doubles_t(1), doubles_t(1), doubles_t(1), doubles_t(n)
    C.mrl_retnorm_get_state(h, m, v, c, ret)
    local rt = {}
    for i = 1, n do rt[i] = ret[i - 1] end
    return {mean = m[0], var = v[0], count = c[0], ret = rt}
  end

  function R.set_state(self, t)
    local h = checkrn(self, "set_state")
    if type(t) ~= "table" then typeerror("set_state", 1, "table", t) end
    local m, v, c = numfield(t, "mean"), numfield(t, "var"), numfield(t, "count")
    local ret = t.ret ~= nil and doublesfield(t, "ret", self.n) or nil
    if C.mrl_retnorm_set_state(h, m, v, c, ret) ~= 0 then raise(errstr(C.mrl_retnorm_error, h)) end
    return self
  end

  function R.reset_returns(self)
    local h = checkrn(self, "reset_returns")
    C.mrl_retnorm_set_ret(h, nil, self.n)
    return self
  end

  R.close = I.closer(rn_mt, "moonrl.RewardNormalizer", C.mrl_retnorm_close)

  -- ---------------------------------------------------- rollout_set_norm

  local rollout_t = ffi.typeof("mrl_rollout *")

  function core.rollout_set_norm(ro, opts)
    local h = type(ro) == "table" and ro.h or nil
    if h == nil or not ffi.istype(rollout_t, h) then
      typeerror("rollout_set_norm", 1, "moonrl.Rollout", ro)
    end
    local o = C.mrl_norm_opts_default() -- nil: no handles, off
    if opts ~= nil then
      if type(opts) ~= "table" then typeerror("rollout_set_norm", 2, "table or nil", opts) end
      if opts.obs ~= nil then o.obs = checkrms(opts.obs, "rollout_set_norm") end
      if opts.reward ~= nil then o.reward = checkrn(opts.reward, "rollout_set_norm") end
      if opts.reduce ~= nil then raise("bad field 'reduce' (reducers are not available in the LuaJIT binding)") end
      I.readopts(opts, C.MRL_OPTS_NORM, o)
    end
    -- the rollout holds references to the handles itself
    if C.mrl_rollout_set_norm(h, o) ~= 0 then raise(errstr(C.mrl_rollout_error, h)) end
  end

  I.rms_mt = rms_mt
  I.rn_mt = rn_mt
end
