-- moonrl.core.optim (LuaJIT), the counterpart of bindings/lua54/l_optim.c:
-- moonrl.Optim (Adam, SGD), clip_grad_norm, all_finite.
-- A part of moonrl/core.lua (see PARTS there): it takes helpers from I, adds
-- its functions to core, and puts in I what later parts use.

return function(core, I)
  local type, tonumber, getmetatable, setmetatable = type, tonumber, getmetatable, setmetatable
  local format = string.format
  local C, ffi, double1_t, raise, argerror = I.C, I.ffi, I.double1_t, I.raise, I.argerror
  local istensor, isobj, typeerror, isfinite = I.istensor, I.isobj, I.typeerror, I.isfinite
  local checknumber, optintfield = I.checknumber, I.optintfield
  local optenumfield, newclass, status_string = I.optenumfield, I.newclass, I.status_string
  local failwith, handle_arg, tdata, checkvec = I.failwith, I.handle_arg, I.tdata, I.checkvec
  local policy_mt, POLICY_CLOSED, net_mt = I.policy_mt, I.POLICY_CLOSED, I.net_mt
  local NET_CLOSED = I.NET_CLOSED

  local O = {}
  local optim_mt = newclass("moonrl.Optim", O)
  local optkinds = {"adam", "sgd"}

  local checkoptim = I.selfchecker(optim_mt, "moonrl.Optim")

  optim_mt.__tostring = function(self)
    if self.h == nil then return "moonrl.Optim (closed)" end
    return format("moonrl.Optim (%s, %d params, %d steps)", optkinds[self._kind + 1], self._n,
                  tonumber(C.mrl_optim_steps(self.h)))
  end

  function core.optim(t)
    if type(t) ~= "table" or isobj(t) then typeerror("optim", 1, "table", t) end
    local kind = optenumfield(t, "kind", "adam", optkinds)
    if t.n == nil then raise("bad field 'n' (integer expected, got nil)") end
    local n = optintfield(t, "n", 1, 1, 2 ^ 31)
    local hp = C.mrl_optim_defaults(kind) -- the defaults, overridden below
    I.readopts(t, C.MRL_OPTS_OPTIM, hp)
    local err = ffi.new("char[128]")
    if C.mrl_optim_check(kind, n, hp.beta1, hp.beta2, hp.eps, err, 128) ~= 0 then
      raise("cannot create optimiser: " .. ffi.string(err))
    end
    local out = ffi.new("mrl_optim *[1]")
    local st = C.mrl_optim_new(out, kind, n, hp.beta1, hp.beta2, hp.eps)
    if st ~= 0 then raise("cannot create optimiser: " .. status_string(st)) end
    local h = ffi.gc(out[0], C.mrl_optim_free)
    return setmetatable({h = h, _kind = kind, _n = n}, optim_mt)
  end

  O.close = I.closer(optim_mt, "moonrl.Optim", C.mrl_optim_free)

  -- Own parameter and gradient buffers of a Policy or Net (nil otherwise).
  local function buffers(v)
    local mt = getmetatable(v)
    if mt == policy_mt then
      if v.h == nil then raise(POLICY_CLOSED) end
      return C.mrl_policy_params(v.h), C.mrl_policy_grad(v.h), v._nparams
    elseif mt == net_mt then
      if v.h == nil then raise(NET_CLOSED) end
      return C.mrl_net_params(v.h), C.mrl_net_grad(v.h), v._nparams
    end
  end

  function O.step(self, target, a2, a3)
    local h = checkoptim(self, "step")
    local params, g, n, lrarg, lr = buffers(target)
    if params ~= nil then
      lrarg, lr = 2, a2
    else
      if not istensor(target) then
        typeerror("step", 1, "moonrl.Policy, moonrl.Net or moonrl.Tensor", target)
      end
      params = tdata(target)
      n = target.n_
      if n ~= self._n then
        argerror("step", 1, format("%d parameters expected, got %d", self._n, n))
      end
      g = checkvec(a2, "step", 2, n, false)
      lrarg, lr = 3, a3
    end
    if n ~= self._n then argerror("step", 1, format("%d parameters expected, got %d", self._n, n)) end
    lr = checknumber("step", lrarg, lr)
    local st = C.mrl_optim_step(h, params, g, lr)
    if st ~= 0 then failwith(C.mrl_optim_error, h, st) end
    return tonumber(C.mrl_optim_steps(h))
  end

  function O.reset(self)
    C.mrl_optim_reset(checkoptim(self, "reset"))
    return self
  end

  function O.steps(self) return tonumber(C.mrl_optim_steps(checkoptim(self, "steps"))) end
  function O.nparams(self) checkoptim(self, "nparams") return self._n end
  function O.kind(self) checkoptim(self, "kind") return optkinds[self._kind + 1] end

  -- core.axpy(y, a, x) → y: y += a·x in place
  function core.axpy(y, a, x)
    if not istensor(y) then typeerror("axpy", 1, "moonrl.Tensor", y) end
    a = checknumber("axpy", 2, a)
    if not isfinite(a) then argerror("axpy", 2, "finite number expected") end
    local xd = checkvec(x, "axpy", 3, y.n_, false)
    C.mrl_axpy(tdata(y), a, xd, y.n_)
    return y
  end

  function core.clip_grad_norm(t, max)
    if not istensor(t) then typeerror("clip_grad_norm", 1, "moonrl.Tensor", t) end
    local d = tdata(t)
    max = checknumber("clip_grad_norm", 2, max)
    if not (max > 0) or not isfinite(max) then
      argerror("clip_grad_norm", 2, "finite number > 0 expected")
    end
    local norm = double1_t()
    local st = C.mrl_clip_grad_norm(d, t.n_, max, norm)
    if st ~= 0 then
      argerror("clip_grad_norm", 1, format("finite values expected (%s)", status_string(st)))
    end
    return norm[0]
  end

  function core.all_finite(t)
    if not istensor(t) then typeerror("all_finite", 1, "moonrl.Tensor", t) end
    return C.mrl_all_finite(tdata(t), t.n_) ~= 0
  end

  local function checkoptim_arg(v, f, n) return handle_arg(optim_mt, "moonrl.Optim", v, f, n) end

  I.optim_mt = optim_mt
  I.checkoptim_arg = checkoptim_arg
  I.checkoptim = checkoptim
end
