-- moonrl.core.funcs (LuaJIT), the counterpart of bindings/lua54/l_funcs.c:
-- the free functions (returns, GAE, the adaptive KL coefficient) and
-- moonrl.Rng.
-- A part of moonrl/core.lua (see PARTS there): it takes helpers from I, adds
-- its functions to core, and puts in I what later parts use.

return function(core, I)
  local setmetatable, format = setmetatable, string.format
  local C, ffi, u8s_t, double1_t, raise = I.C, I.ffi, I.u8s_t, I.double1_t, I.raise
  local argerror, typeerror, isfinite = I.argerror, I.typeerror, I.isfinite
  local checknumber, checkinteger, newclass = I.checknumber, I.checkinteger, I.newclass
  local new1, checkvec = I.new1, I.checkvec

  -- ---------------------------------------------------------- functions

  function core.returns(rewards, gamma)
    local r, T = checkvec(rewards, "returns", 1, -1, false)
    gamma = checknumber("returns", 2, gamma)
    if not isfinite(gamma) or gamma < 0 or gamma > 1 then
      argerror("returns", 2, "number in [0, 1] expected")
    end
    local g = new1(T)
    local R = double1_t()
    local st = C.mrl_discounted_returns(r, T, 1, gamma, g.d_, R)
    if st ~= 0 then raise("returns: " .. status_string(st)) end
    return g, R[0]
  end

  local function checkflags(v, fname, argn, T)
    local f = checkvec(v, fname, argn, T, true)
    local u = u8s_t(T)
    local bad = tonumber(C.mrl_flags_from_floats(f, T, u))
    if bad < T then argerror(fname, argn, format("boolean or 0/1 expected at [%d]", bad + 1)) end
    return u
  end

  function core.gae(rewards, values, next_values, terminated, truncated, gamma, lambda)
    local r, T = checkvec(rewards, "gae", 1, -1, false)
    local v = checkvec(values, "gae", 2, T, false)
    local nv = checkvec(next_values, "gae", 3, T, false)
    local term = checkflags(terminated, "gae", 4, T)
    local trunc = checkflags(truncated, "gae", 5, T)
    gamma = checknumber("gae", 6, gamma)
    lambda = checknumber("gae", 7, lambda)
    if not isfinite(gamma) or gamma < 0 or gamma > 1 then argerror("gae", 6, "number in [0, 1] expected") end
    if not isfinite(lambda) or lambda < 0 or lambda > 1 then argerror("gae", 7, "number in [0, 1] expected") end
    local adv, ret = new1(T), new1(T)
    local st = C.mrl_gae(r, v, nv, term, trunc, T, 1, gamma, lambda, adv.d_, ret.d_)
    if st ~= 0 then raise("gae: " .. status_string(st)) end
    return adv, ret
  end

  -- core.standardize(tensor, [reducer]) → tensor, in place
  function core.standardize(t, reducer)
    if not I.istensor(t) then typeerror("standardize", 1, "moonrl.Tensor", t) end
    if reducer ~= nil then argerror("standardize", 2, "reducers are not available in the LuaJIT binding") end
    local st = C.mrl_standardize(I.tdata(t), t.n_, nil, nil)
    if st ~= 0 then raise("standardize: " .. status_string(st)) end
    return t
  end

  function core.kl_beta_update(beta, kl, target)
    beta = checknumber("kl_beta_update", 1, beta)
    kl = checknumber("kl_beta_update", 2, kl)
    target = checknumber("kl_beta_update", 3, target)
    if not isfinite(beta) then argerror("kl_beta_update", 1, "finite number expected") end
    if not isfinite(kl) then argerror("kl_beta_update", 2, "finite number expected") end
    if not isfinite(target) or target <= 0 then
      argerror("kl_beta_update", 3, "finite number > 0 expected")
    end
    return C.mrl_kl_beta_update(beta, kl, target)
  end

  -- ---------------------------------------------------------------- Rng

  local R = {}
  local rng_mt = newclass("moonrl.Rng", R)

  local checkrng = I.selfchecker(rng_mt, "moonrl.Rng")

  rng_mt.__tostring = function(self)
    return self.h ~= nil and "moonrl.Rng" or "moonrl.Rng (closed)"
  end

  local function u64(x)
    if x < 0 then return ffi.cast("uint64_t", ffi.cast("int64_t", x)) end
    return x
  end

  local function newrng(seed)
    local out = ffi.new("mrl_rng *[1]")
    local st = C.mrl_rng_new(out, u64(seed))
    if st ~= 0 then raise("cannot create rng: " .. status_string(st)) end
    return setmetatable({h = ffi.gc(out[0], C.mrl_rng_free)}, rng_mt)
  end

  function core.rng(seed)
    if seed == nil then seed = 0 else seed = checkinteger("rng", 1, seed) end
    return newrng(seed)
  end

  function R.uniform(self) return C.mrl_rng_uniform(checkrng(self, "uniform")) end
  function R.normal(self) return C.mrl_rng_normal(checkrng(self, "normal")) end

  function R.categorical(self, logits)
    local h = checkrng(self, "categorical")
    local d, n = checkvec(logits, "categorical", 1, -1, false)
    return C.mrl_rng_categorical(h, d, n)
  end

  function R.seed(self, s)
    local h = checkrng(self, "seed")
    C.mrl_rng_seed(h, u64(checkinteger("seed", 1, s)))
    return self
  end

  R.close = I.closer(rng_mt, "moonrl.Rng", C.mrl_rng_free)

  I.rng_mt = rng_mt
  I.checkrng = checkrng
  I.newrng = newrng
end
