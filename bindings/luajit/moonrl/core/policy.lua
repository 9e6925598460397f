-- moonrl.core.policy (LuaJIT), the counterpart of bindings/lua54/l_policy.c:
-- moonrl.Policy: construction, acting (the hot path, with its unrolled
-- per-size variants), losses and gradients, natural gradients.
-- A part of moonrl/core.lua (see PARTS there): it takes helpers from I, adds
-- its functions to core, and puts in I what later parts use.

return function(core, I)
  local type, tostring, tonumber, getmetatable = type, tostring, tonumber, getmetatable
  local setmetatable, rawget, floor, huge = setmetatable, rawget, math.floor, math.huge
  local format, concat = string.format, table.concat
  local C, ffi, MAX_WIDTH, MAX_LAYERS, floats_t = I.C, I.ffi, I.MAX_WIDTH, I.MAX_LAYERS, I.floats_t
  local ints_t, double1_t, box_t, raise = I.ints_t, I.double1_t, I.box_t, I.raise
  local argerror, istensor, isobj, typename = I.argerror, I.istensor, I.isobj, I.typename
  local typeerror, isfinite, checknumber = I.typeerror, I.isfinite, I.checknumber
  local optnumber, checkinteger, checkoption = I.optnumber, I.checkinteger, I.checkoption
  local optintfield, optnumfield = I.optintfield, I.optnumfield
  local intarrayfield, optenumfield, floatsfield = I.intarrayfield, I.optenumfield, I.floatsfield
  local newclass, failwith, floatarray = I.newclass, I.failwith, I.floatarray
  local checktable, handle_arg, tdata, new1 = I.checktable, I.handle_arg, I.tdata, I.new1
  local new2, pushview, checkmat, checkvec = I.new2, I.pushview, I.checkmat, I.checkvec
  local DISCRETE, BOX, checkactions = I.DISCRETE, I.BOX, I.checkactions

  local kinds = {"discrete", "box"}
  local COMPOSITE = 2
  -- every action type core.policy takes: discrete, box, then the composite ones
  local types = {"discrete", "box", "multi_discrete", "multi_binary", "hybrid"}
  local part_types = {"discrete", "box", "multi_binary"}
  local PART_CATEGORICAL, PART_GAUSSIAN, PART_BERNOULLI = 0, 1, 2
  local acts = {"tanh", "relu"}
  local fishers = {"analytic", "empirical"}

  local P = {}
  local policy_mt = newclass("moonrl.Policy", P)
  local POLICY_CLOSED = "attempt to use a closed moonrl.Policy"
  local fast_act -- defined after P.act

  local checkpolicy = I.selfchecker(policy_mt, "moonrl.Policy")

  local function pfail(self, st) failwith(C.mrl_policy_error, self.h, st) end

  -- The action type's name; a composite one from its parts.
  local function typename_of(self)
    if self._kind ~= COMPOSITE then return kinds[self._kind + 1] end
    if C.mrl_policy_maskable(self.h) ~= 0 then return "multi_discrete" end
    -- one part of bits; a lone gaussian part stays a hybrid (its log_std)
    if C.mrl_policy_nparts(self.h) == 1 and
       tonumber(C.mrl_policy_part(self.h, 0).type) == PART_BERNOULLI then
      return "multi_binary"
    end
    return "hybrid"
  end

  -- The parts of a composite action a (tindex: its index in types, 3..5):
  -- multi_discrete {nvec = {...}}, multi_binary {n = }, hybrid {parts =
  -- {{type = "discrete" | "box" | "multi_binary", n = }, ...}}.
  local function checkparts(a, tindex)
    if tindex == 4 then
      if a.n == nil then raise("bad field 'action.n' (integer expected, got nil)") end
      local parts = ffi.new("mrl_action_part[1]")
      parts[0].type, parts[0].n = 2, optintfield(a, "n", 1, 1, MAX_WIDTH)
      return parts, 1
    end
    local key = tindex == 3 and "nvec" or "parts"
    local list = a[key]
    if type(list) ~= "table" or isobj(list) then
      raise(format("bad field 'action.%s' (table expected, got %s)", key, typename(list)))
    end
    local len = #list
    if len < 1 or len > MAX_WIDTH then
      raise(format("bad field 'action.%s' (1 to %d entries expected, got %d)", key, MAX_WIDTH, len))
    end
    local parts = ffi.new("mrl_action_part[?]", len)
    for i = 1, len do
      local e = list[i]
      if tindex == 3 then
        if type(e) ~= "number" or e ~= floor(e) or e < 1 or e > MAX_WIDTH then
          raise(format("bad field 'action.nvec' (entry %d: integer in [1, %d] expected)", i, MAX_WIDTH))
        end
        parts[i - 1].type, parts[i - 1].n = PART_CATEGORICAL, e
      else
        if type(e) ~= "table" or isobj(e) then
          raise(format("bad field 'action.parts' (entry %d: table expected, got %s)", i, typename(e)))
        end
        if e.type == nil then
          raise(format("bad field 'action.parts[%d].type' ('discrete', 'box' or 'multi_binary' " ..
                       "expected, got nil)", i))
        end
        parts[i - 1].type = optenumfield(e, "type", "discrete", part_types)
        if e.n == nil then
          raise(format("bad field 'action.parts[%d].n' (integer expected, got nil)", i))
        end
        parts[i - 1].n = optintfield(e, "n", 1, 1, MAX_WIDTH)
      end
    end
    return parts, len
  end

  policy_mt.__tostring = function(self)
    local h = self.h
    if h == nil then return "moonrl.Policy (closed)" end
    local hid = {}
    for i = 0, C.mrl_policy_nhidden(h) - 1 do hid[#hid + 1] = tostring(C.mrl_policy_hidden(h, i)) end
    local obs = tostring(self._obs_dim)
    local shape = ints_t(3)
    if C.mrl_policy_obs_shape(h, shape) ~= 0 then
      obs = format("%dx%dx%d", shape[0], shape[1], shape[2])
    end
    local nc = C.mrl_policy_nconv(h)
    if nc > 0 then
      local layers, l = {}, ffi.new("mrl_conv_layer[1]")
      for i = 0, nc - 1 do
        C.mrl_policy_conv(h, i, l)
        layers[i + 1] = format("%d k%d s%d p%d", l[0].out, l[0].kernel, l[0].stride, l[0].padding)
      end
      obs = obs .. ", conv {" .. concat(layers, ", ") .. "}"
    end
    return format("moonrl.Policy (obs %s, %s %d, hidden {%s}, %s, %d params)", obs,
                  typename_of(self), self._n, concat(hid, ", "),
                  acts[tonumber(C.mrl_policy_activation(h)) + 1], self._nparams)
  end

  function core.policy(t)
    if type(t) ~= "table" or isobj(t) then typeerror("policy", 1, "table", t) end
    local spec = C.mrl_policy_spec_default() -- the defaults, overridden below
    local grid, layers, nconv = I.checkgrid(t, spec.obs_shape) -- layers: kept alive until mrl_policy_new
    if nconv > 0 then spec.conv, spec.nconv = layers, nconv end
    if t.obs_dim == nil and not grid then raise("bad field 'obs_dim' (integer expected, got nil)") end
    spec.obs_dim = optintfield(t, "obs_dim", 0, 1, MAX_WIDTH)
    local hbuf
    if t.hidden ~= nil then
      local hidden = intarrayfield(t, "hidden", MAX_LAYERS, 1, MAX_WIDTH)
      hbuf = ints_t(#hidden + 1)
      for i = 1, #hidden do hbuf[i - 1] = hidden[i] end
      spec.nhidden, spec.hidden = #hidden, hbuf
    end
    spec.activation = optenumfield(t, "activation", acts[tonumber(spec.activation) + 1], acts)
    spec.init_log_std = optnumfield(t, "init_log_std", spec.init_log_std)
    spec.out_gain = optnumfield(t, "out_gain", spec.out_gain)
    local seed = optintfield(t, "seed", tonumber(spec.seed))
    spec.seed = seed < 0 and ffi.cast("uint64_t", ffi.cast("int64_t", seed)) or seed
    local a = t.action
    if type(a) ~= "table" or isobj(a) then
      raise(format("bad field 'action' (table expected, got %s)", typename(a)))
    end
    if a.type == nil then raise("bad field 'action.type' ('discrete' or 'box' expected, got nil)") end
    local tindex = optenumfield(a, "type", "discrete", types) + 1
    local parts, an -- parts: kept alive until mrl_policy_new has copied them
    if tindex >= 3 then
      spec.action_kind = COMPOSITE
      parts, spec.nparts = checkparts(a, tindex)
      spec.parts = parts
    else
      spec.action_kind = tindex - 1
      if a.n == nil then raise("bad field 'action.n' (integer expected, got nil)") end
      an = optintfield(a, "n", 1, 1, MAX_WIDTH)
      spec.action_n = an
    end
    local bounds
    if spec.action_kind == BOX then
      bounds = floats_t(2 * an)
      local hl = floatsfield(a, "low", bounds, 0, an)
      local hh = floatsfield(a, "high", bounds, an, an)
      if hl ~= hh then raise("bad field 'action' (give both low and high, or neither)") end
      if hl then
        spec.low = bounds
        spec.high = bounds + an
      end
    end
    local err = ffi.new("char[256]")
    if C.mrl_policy_spec_check(spec, err, 256) ~= 0 then
      raise("cannot create policy: " .. ffi.string(err))
    end
    local out = ffi.new("mrl_policy *[1]")
    local st = C.mrl_policy_new(out, spec)
    layers = nil
    if st ~= 0 then raise("cannot create policy: " .. status_string(st)) end
    local h = ffi.gc(out[0], C.mrl_policy_free)
    local width = C.mrl_policy_action_width(h)
    an = C.mrl_policy_out_dim(h)
    local obs_dim = C.mrl_policy_obs_dim(h)
    local self = {
      h = h, box = box_t(), _kind = tonumber(spec.action_kind), _n = an, _width = width,
      _obs_dim = obs_dim, _out_dim = C.mrl_policy_out_dim(h),
      _nparams = tonumber(C.mrl_policy_nparams(h)),
      _init_log_std = spec.init_log_std, _out_gain = spec.out_gain, _seed = seed,
      -- the single-state path's rows, reused by every act(flat_table)
      obs1 = floats_t(obs_dim), act1 = floats_t(width), logp1 = floats_t(1),
      mask1 = floats_t(C.mrl_policy_out_dim(h)),
    }
    self.box[0] = h
    self.act = fast_act(obs_dim, self._kind == DISCRETE and DISCRETE or BOX) -- nil: the methods table's
    return setmetatable(self, policy_mt)
  end

  P.close = I.closer(policy_mt, "moonrl.Policy", C.mrl_policy_free)

  function P.obs_dim(self) checkpolicy(self, "obs_dim") return self._obs_dim end
  function P.action_kind(self) checkpolicy(self, "action_kind") return typename_of(self) end
  function P.action_n(self) checkpolicy(self, "action_n") return self._n end
  function P.action_width(self) checkpolicy(self, "action_width") return self._width end
  function P.nparams(self) checkpolicy(self, "nparams") return self._nparams end

  function P.spec(self)
    local h = checkpolicy(self, "spec")
    local hidden = {}
    for i = 0, C.mrl_policy_nhidden(h) - 1 do hidden[i + 1] = C.mrl_policy_hidden(h, i) end
    local action = {type = typename_of(self), n = self._n} -- n: the outputs
    if self._kind == COMPOSITE and action.type ~= "multi_binary" then
      local md, list = action.type == "multi_discrete", {}
      for i = 0, C.mrl_policy_nparts(h) - 1 do
        local part = C.mrl_policy_part(h, i)
        list[i + 1] = md and part.n or {type = part_types[tonumber(part.type) + 1], n = part.n}
      end
      action[md and "nvec" or "parts"] = list
    end
    local low = C.mrl_policy_low(h)
    if self._kind == BOX and low ~= nil then
      action.low = floatarray(low, self._n)
      action.high = floatarray(C.mrl_policy_high(h), self._n)
    end
    local spec = {obs_dim = self._obs_dim, hidden = hidden,
            activation = acts[tonumber(C.mrl_policy_activation(h)) + 1], action = action,
            init_log_std = self._init_log_std, out_gain = self._out_gain, seed = self._seed}
    I.setgrid(spec, h, C.mrl_policy_obs_shape, C.mrl_policy_nconv, C.mrl_policy_conv)
    return spec
  end

  function P.bounds(self)
    local h = checkpolicy(self, "bounds")
    local low = C.mrl_policy_low(h)
    if self._kind ~= BOX or low == nil then return end
    return floatarray(low, self._n), floatarray(C.mrl_policy_high(h), self._n)
  end

  function P.params(self)
    local h = checkpolicy(self, "params")
    local t = new1(self._nparams)
    local st = C.mrl_policy_get_params(h, t.d_, self._nparams)
    if st ~= 0 then pfail(self, st) end
    return t
  end

  function P.set_params(self, v)
    local h = checkpolicy(self, "set_params")
    local d = checkvec(v, "set_params", 1, self._nparams, false)
    local st = C.mrl_policy_set_params(h, d, self._nparams)
    if st ~= 0 then pfail(self, st) end
    return self
  end

  function P.grad(self)
    local h = checkpolicy(self, "grad")
    return pushview(self, self.box, 1, C.mrl_policy_grad(h), 1, {self._nparams})
  end

  function P.params_view(self)
    local h = checkpolicy(self, "params_view")
    return pushview(self, self.box, 1, C.mrl_policy_params(h), 1, {self._nparams})
  end

  local function optparams(self, v, fname, argn)
    if v == nil then return nil end
    return (checkvec(v, fname, argn, self._nparams, false))
  end

  function P.forward(self, obs, params)
    local h = checkpolicy(self, "forward")
    local d, rows, batched = checkmat(obs, "forward", 1, self._obs_dim, -1)
    local pp = optparams(self, params, "forward", 2)
    local out = batched and new2(rows, self._out_dim) or new1(self._out_dim)
    local st = C.mrl_policy_forward(h, pp, d, rows, out.d_)
    if st ~= 0 then pfail(self, st) end
    return out
  end

  -- Actions for rows states: a composite action's rows are width numbers.
  local function acts_of(self, v, fname, argn, rows)
    if self._kind == COMPOSITE then return checkactions(v, fname, argn, BOX, self._width, rows) end
    return checkactions(v, fname, argn, self._kind, self._n, rows)
  end

  -- Optional masks [rows][out_dim] (1 valid, 0 invalid; the runtime checks
  -- the values): nil when absent.
  local function optmasks(self, m, fname, argn, rows)
    if m == nil then return nil end
    return (checkmat(m, fname, argn, self._out_dim, rows))
  end

  local function pushaction(self, a)
    if self._kind == DISCRETE then return a[0] end
    return floatarray(a, self._width)
  end

  -- The hot path: one state as a flat Lua table of obs_dim numbers, read into
  -- the policy's own row; the discrete action comes back as a number.
  -- A flat table of n numbers into the float buffer buf; false for anything
  -- else (the general reader then gives batches or the precise error).
  local function flat_into(t, buf, n)
    if type(t) ~= "table" or #t ~= n then return false end
    for j = 1, n do
      local x = rawget(t, j)
      if type(x) ~= "number" then return false end
      buf[j - 1] = x
    end
    return true
  end

  function P.act(self, obs, det, masks)
    if getmetatable(self) ~= policy_mt then typeerror("act", 0, "moonrl.Policy", self) end
    local h = self.h
    if h == nil then raise(POLICY_CLOSED) end
    local dflag = det and 1 or 0
    if masks ~= nil then
      -- the game's call: one state and its mask as flat tables, no allocation
      local o, m = self.obs1, self.mask1
      if flat_into(obs, o, self._obs_dim) and flat_into(masks, m, self._out_dim) then
        for j = 0, self._obs_dim - 1 do
          local f = o[j]
          if f ~= f or f == huge or f == -huge then
            argerror("act", 1, format("finite number expected at [%d], got %s", j + 1,
                                      f ~= f and "nan" or "inf"))
          end
        end
        local a1, lp1 = self.act1, self.logp1
        local st = C.mrl_policy_act_masked(h, o, m, 1, dflag, a1, lp1)
        if st ~= 0 then pfail(self, st) end
        return pushaction(self, a1), lp1[0]
      end
      local d, rows, batched = checkmat(obs, "act", 1, self._obs_dim, -1)
      local m = optmasks(self, masks, "act", 3, rows)
      if not batched then
        local a1, lp1 = self.act1, self.logp1
        local st = C.mrl_policy_act_masked(h, d, m, 1, dflag, a1, lp1)
        if st ~= 0 then pfail(self, st) end
        return pushaction(self, a1), lp1[0]
      end
      local a, lp = new2(rows, self._width), new1(rows)
      local st = C.mrl_policy_act_masked(h, d, m, rows, dflag, a.d_, lp.d_)
      if st ~= 0 then pfail(self, st) end
      return a, lp
    end
    if type(obs) == "table" then
      local n = self._obs_dim
      if #obs == n then
        local o = self.obs1
        local ok = true
        for j = 1, n do
          local x = rawget(obs, j)
          if type(x) ~= "number" then ok = false break end
          o[j - 1] = x
          local f = o[j - 1]
          if f ~= f or f == huge or f == -huge then
            argerror("act", 1, format("finite number expected at [%d], got %s", j,
                                      f ~= f and "nan" or "inf"))
          end
        end
        if ok then
          local a1, lp1 = self.act1, self.logp1
          local st = C.mrl_policy_act(h, o, 1, dflag, a1, lp1)
          if st ~= 0 then pfail(self, st) end
          if self._kind == DISCRETE then return a1[0], lp1[0] end
          return floatarray(a1, self._width), lp1[0]
        end
      end
      -- not a flat row: the general reader gives batches or the precise error
    end
    local d, rows, batched = checkmat(obs, "act", 1, self._obs_dim, -1)
    if not batched then
      local a1, lp1 = self.act1, self.logp1
      local st = C.mrl_policy_act(h, d, 1, dflag, a1, lp1)
      if st ~= 0 then pfail(self, st) end
      return pushaction(self, a1), lp1[0]
    end
    local a = new2(rows, self._width)
    local lp = new1(rows)
    local st = C.mrl_policy_act(h, d, rows, dflag, a.d_, lp.d_)
    if st ~= 0 then pfail(self, st) end
    return a, lp
  end

  -- policy:act(flat_table) specialised per observation size: the reads are
  -- unrolled, so the caller's loop compiles into one trace holding the whole
  -- call (a generic `for j = 1, n` loop becomes its own short trace that
  -- exits on every call).  Anything unusual goes to the general P.act, which
  -- also raises the precise errors.  Generated once per (size, kind).
  local ACT_UNROLL_MAX = 32
  local act_makers = {}

  fast_act = function(obs_dim, kind)
    if obs_dim > ACT_UNROLL_MAX then return nil end
    local key = obs_dim * 2 + kind
    local maker = act_makers[key]
    if not maker then
      local src = {"local getmetatable, rawget, type, mt, C, slow, pfail, floatarray = ...\n",
                   "return function(self, obs, det, masks)\n",
                   "  if getmetatable(self) ~= mt or masks ~= nil then return slow(self, obs, det, masks) end\n",
                   "  local h = self.h\n",
                   "  if h == nil or type(obs) ~= 'table' or #obs ~= ", obs_dim,
                   " then return slow(self, obs, det) end\n"}
      local xs, checks, stores, sums = {}, {}, {}, {}
      for j = 1, obs_dim do
        xs[j] = "x" .. j
        checks[j] = "type(x" .. j .. ") ~= 'number'"
        stores[j] = ("  o[%d] = x%d\n"):format(j - 1, j)
        sums[j] = ("(o[%d] - o[%d])"):format(j - 1, j - 1)
      end
      local reads = {}
      for j = 1, obs_dim do reads[j] = "rawget(obs, " .. j .. ")" end
      src[#src + 1] = "  local " .. concat(xs, ", ") .. " = " .. concat(reads, ", ") .. "\n"
      src[#src + 1] = "  if " .. concat(checks, " or ") .. " then return slow(self, obs, det) end\n"
      src[#src + 1] = "  local o = self.obs1\n"
      src[#src + 1] = concat(stores)
      -- x − x is NaN exactly when x (as float32) is NaN or ±Inf
      src[#src + 1] = "  local s = " .. concat(sums, " + ") .. "\n"
      src[#src + 1] = "  if s ~= s then return slow(self, obs, det) end\n"
      src[#src + 1] = "  local a1, lp1 = self.act1, self.logp1\n"
      src[#src + 1] = "  local st = C.mrl_policy_act(h, o, 1, det and 1 or 0, a1, lp1)\n"
      src[#src + 1] = "  if st ~= 0 then pfail(self, st) end\n"
      if kind == DISCRETE then
        src[#src + 1] = "  return a1[0], lp1[0]\n"
      else
        src[#src + 1] = "  return floatarray(a1, self._width), lp1[0]\n"
      end
      src[#src + 1] = "end\n"
      maker = assert(loadstring(concat(src), "=moonrl.core act(" .. obs_dim .. ")"))
      act_makers[key] = maker
    end
    return maker(getmetatable, rawget, type, policy_mt, C, P.act, pfail, floatarray)
  end

  function P.act_into(self, obs, actions, logp, det, masks)
    local h = checkpolicy(self, "act_into")
    if not istensor(obs) then typeerror("act_into", 1, "moonrl.Tensor", obs) end
    local d, rows = checkmat(obs, "act_into", 1, self._obs_dim, -1)
    if not istensor(actions) then typeerror("act_into", 2, "moonrl.Tensor", actions) end
    if actions.n_ ~= rows * self._width then
      argerror("act_into", 2, format("%d elements expected, got %d", rows * self._width, actions.n_))
    end
    local ld = nil
    if logp ~= nil then
      if not istensor(logp) then typeerror("act_into", 3, "moonrl.Tensor or nil", logp) end
      if logp.n_ ~= rows then
        argerror("act_into", 3, format("%d elements expected, got %d", rows, logp.n_))
      end
    end
    local m = optmasks(self, masks, "act_into", 5, rows)
    local ad = tdata(actions)
    if logp ~= nil then ld = tdata(logp) end
    local st = C.mrl_policy_act_masked(h, d, m, rows, det and 1 or 0, ad, ld)
    if st ~= 0 then pfail(self, st) end
  end

  function P.evaluate(self, obs, actions, params, masks)
    local h = checkpolicy(self, "evaluate")
    local d, rows, batched = checkmat(obs, "evaluate", 1, self._obs_dim, -1)
    local a = acts_of(self, actions, "evaluate", 2, rows)
    local pp = optparams(self, params, "evaluate", 3)
    local m = optmasks(self, masks, "evaluate", 4, rows)
    if not batched then
      local out = floats_t(2)
      local st = C.mrl_policy_evaluate_masked(h, pp, d, m, a, 1, out, out + 1)
      if st ~= 0 then pfail(self, st) end
      return out[0], out[1]
    end
    local lp, ent = new1(rows), new1(rows)
    local st = C.mrl_policy_evaluate_masked(h, pp, d, m, a, rows, lp.d_, ent.d_)
    if st ~= 0 then pfail(self, st) end
    return lp, ent
  end

  function P.kl(self, po, pn, obs, masks)
    local h = checkpolicy(self, "kl")
    local a = optparams(self, po, "kl", 1)
    local b = optparams(self, pn, "kl", 2)
    local d, rows = checkmat(obs, "kl", 3, self._obs_dim, -1)
    local m = optmasks(self, masks, "kl", 4, rows)
    local kl = new1(rows)
    local mean = double1_t()
    local st = C.mrl_policy_kl_masked(h, a, b, d, m, rows, kl.d_, mean)
    if st ~= 0 then pfail(self, st) end
    return kl, mean[0]
  end

  function P.grad_weighted_logp(self, obs, actions, weights, scale, masks)
    local fname = "grad_weighted_logp"
    local h = checkpolicy(self, fname)
    local d, rows = checkmat(obs, fname, 1, self._obs_dim, -1)
    local a = acts_of(self, actions, fname, 2, rows)
    local w = checkvec(weights, fname, 3, rows, false)
    scale = optnumber(fname, 4, scale, 1)
    local m = optmasks(self, masks, fname, 5, rows)
    local obj = double1_t()
    local st = C.mrl_policy_grad_weighted_logp_masked(h, d, m, a, w, rows, scale, obj)
    if st ~= 0 then pfail(self, st) end
    return obj[0]
  end

  -- The arguments ppo_loss and trpo_step share; opts read through the
  -- runtime's option table `which` into o, which holds the defaults.
  local function surrargs(self, fname, obs, actions, old_logp, adv, opts, which, o)
    local h = checkpolicy(self, fname)
    local d, rows = checkmat(obs, fname, 1, self._obs_dim, -1)
    local a = acts_of(self, actions, fname, 2, rows)
    local olp = checkvec(old_logp, fname, 3, rows, false)
    local ad = checkvec(adv, fname, 4, rows, false)
    if opts ~= nil then
      checktable(opts, fname, 5)
      I.readopts(opts, which, o)
    end
    return h, d, rows, a, olp, ad, o
  end

  function P.ppo_loss(self, obs, actions, old_logp, adv, opts, masks)
    local h, d, rows, a, olp, ad, o = surrargs(self, "ppo_loss", obs, actions, old_logp, adv, opts,
                                               C.MRL_OPTS_PPO_LOSS, C.mrl_ppo_opts_default())
    local m = optmasks(self, masks, "ppo_loss", 6, rows)
    local s = ffi.new("mrl_ppo_stats")
    local st = C.mrl_policy_ppo_loss_masked(h, d, m, a, olp, ad, rows, o, s)
    if st ~= 0 then pfail(self, st) end
    return {loss = s.loss, policy_loss = s.policy_loss, entropy = s.entropy,
            clip_fraction = s.clip_fraction, approx_kl = s.approx_kl}
  end

  function P.kl_penalty_loss(self, params_old, obs, actions, old_logp, adv, beta, masks)
    local fname = "kl_penalty_loss"
    local h = checkpolicy(self, fname)
    local po = checkvec(params_old, fname, 1, self._nparams, false)
    local d, rows = checkmat(obs, fname, 2, self._obs_dim, -1)
    local a = acts_of(self, actions, fname, 3, rows)
    local olp = checkvec(old_logp, fname, 4, rows, false)
    local ad = checkvec(adv, fname, 5, rows, false)
    beta = checknumber(fname, 6, beta)
    local m = optmasks(self, masks, fname, 7, rows)
    local out = ffi.new("double[2]")
    local st = C.mrl_policy_kl_penalty_loss_masked(h, po, d, m, a, olp, ad, rows, beta, out,
                                                   out + 1)
    if st ~= 0 then pfail(self, st) end
    return out[0], out[1]
  end

  -- (obs, actions|nil) at argn, argn+1 and the Fisher name at farg.
  local function fisherargs(self, fname, argn, farg, obs, actions, fisher)
    local f = checkoption(fname, farg, fisher, "analytic", fishers)
    local d, rows = checkmat(obs, fname, argn, self._obs_dim, -1)
    local a = nil
    if actions ~= nil then
      a = acts_of(self, actions, fname, argn + 1, rows)
    elseif f == 1 then
      argerror(fname, argn + 1, "actions expected for the empirical Fisher")
    end
    return f, d, rows, a
  end

  local checkdamping = checknumber -- its range, like every scalar's, is the runtime's to check

  local function checkiters(fname, argn, v)
    local x = checkinteger(fname, argn, v)
    if x < 1 or x > 100000 then argerror(fname, argn, "integer in [1, 100000] expected") end
    return x
  end

  function P.fvp(self, obs, actions, v, damping, fisher, masks)
    local h = checkpolicy(self, "fvp")
    local f, d, rows, a = fisherargs(self, "fvp", 1, 5, obs, actions, fisher)
    local vv = checkvec(v, "fvp", 3, self._nparams, false)
    local dm = checkdamping("fvp", 4, damping)
    local m = optmasks(self, masks, "fvp", 6, rows)
    local out = new1(self._nparams)
    local st = C.mrl_policy_fvp_masked(h, f, d, m, a, rows, vv, dm, out.d_)
    if st ~= 0 then pfail(self, st) end
    return out
  end

  function P.cg(self, obs, actions, g, damping, iters, fisher, masks)
    local h = checkpolicy(self, "cg")
    local f, d, rows, a = fisherargs(self, "cg", 1, 6, obs, actions, fisher)
    local gg = checkvec(g, "cg", 3, self._nparams, false)
    local dm = checkdamping("cg", 4, damping)
    local it = checkiters("cg", 5, iters)
    local m = optmasks(self, masks, "cg", 7, rows)
    local x = new1(self._nparams)
    local xAx = double1_t()
    local st = C.mrl_policy_cg_masked(h, f, d, m, a, rows, gg, dm, it, x.d_, xAx)
    if st ~= 0 then pfail(self, st) end
    return x, xAx[0]
  end

  function P.npg_step(self, obs, actions, g, damping, iters, max_kl, fisher, masks)
    local h = checkpolicy(self, "npg_step")
    local f, d, rows, a = fisherargs(self, "npg_step", 1, 7, obs, actions, fisher)
    local gg = checkvec(g, "npg_step", 3, self._nparams, false)
    local dm = checkdamping("npg_step", 4, damping)
    local it = checkiters("npg_step", 5, iters)
    local mk = checknumber("npg_step", 6, max_kl)
    local m = optmasks(self, masks, "npg_step", 8, rows)
    local s = new1(self._nparams)
    local st = C.mrl_policy_npg_step_masked(h, f, d, m, a, rows, gg, dm, it, mk, s.d_)
    if st ~= 0 then pfail(self, st) end
    return s
  end

  function P.npg_update(self, obs, actions, adv, damping, iters, max_kl, fisher, masks)
    local fname = "npg_update"
    local h = checkpolicy(self, fname)
    local f, d, rows, a = fisherargs(self, fname, 1, 7, obs, actions, fisher)
    if a == nil then argerror(fname, 2, "actions expected") end
    local ad = checkvec(adv, fname, 3, rows, false)
    local dm = checkdamping(fname, 4, damping)
    local it = checkiters(fname, 5, iters)
    local mk = checknumber(fname, 6, max_kl)
    if not isfinite(mk) or mk <= 0 then argerror(fname, 6, "finite number > 0 expected") end
    local m = optmasks(self, masks, fname, 8, rows)
    local r = ffi.new("mrl_npg_report")
    local st = C.mrl_policy_npg_update_masked(h, f, d, m, a, ad, rows, dm, it, mk, r)
    if st ~= 0 then pfail(self, st) end
    return {objective = r.objective, grad_norm = r.grad_norm, mean_kl = r.mean_kl}
  end

  function P.trpo_step(self, obs, actions, old_logp, adv, opts, masks)
    local h, d, rows, a, olp, ad, o = surrargs(self, "trpo_step", obs, actions, old_logp, adv, opts,
                                               C.MRL_OPTS_TRPO, C.mrl_trpo_opts_default())
    local m = optmasks(self, masks, "trpo_step", 6, rows)
    local r = ffi.new("mrl_trpo_result")
    local st = C.mrl_policy_trpo_step_masked(h, d, m, a, olp, ad, rows, o, r)
    if st ~= 0 then pfail(self, st) end
    return {accepted = r.accepted_j >= 0, accepted_j = r.accepted_j, mean_kl = r.mean_kl,
            improvement = r.improvement, surrogate_before = r.surrogate_before}
  end

  function P.pg_gradient(self, obs, actions, rewards, blp, values, offsets, opts, masks)
    local fname = "pg_gradient"
    local h = checkpolicy(self, fname)
    local d, T = checkmat(obs, fname, 1, self._obs_dim, -1)
    local a = acts_of(self, actions, fname, 2, T)
    local r = checkvec(rewards, fname, 3, T, false)
    local b, v = nil, nil
    if blp ~= nil then b = checkvec(blp, fname, 4, T, false) end
    if values ~= nil then v = checkvec(values, fname, 5, T, false) end
    checktable(offsets, fname, 6)
    local len = #offsets
    if len < 1 or len > T + 1 then
      argerror(fname, 6, format("1 to %d offsets expected, got %d", T + 1, len))
    end
    local off = ints_t(len + 1) -- the runtime checks their order
    for i = 0, len - 1 do
      local x = rawget(offsets, i + 1)
      if type(x) ~= "number" or x ~= floor(x) or x < 0 or x > T then
        argerror(fname, 6, format("offset [%d]: integer in [0, %d] expected", i + 1, T))
      end
      off[i] = x
    end
    local nep = len
    if len > 1 and off[len - 1] == T then nep = len - 1 else off[len] = T end
    checktable(opts, fname, 7)
    local o = I.readopts(opts, C.MRL_OPTS_PG, C.mrl_pg_opts_default())
    local g = new1(self._nparams)
    local s = ffi.new("mrl_pg_stats")
    local m = optmasks(self, masks, fname, 8, T)
    local st = C.mrl_pg_gradient_masked(h, d, m, a, r, b, v, off, nep, o, g.d_, s)
    if st ~= 0 then pfail(self, st) end
    return g, {mean_ratio = s.mean_ratio, ess = s.ess, mean_return = s.mean_return}
  end

  function P.gumbel_grad(self, obs, scores, tau)
    local fname = "gumbel_grad"
    local h = checkpolicy(self, fname)
    if self._kind ~= DISCRETE then raise("gumbel_grad needs a discrete policy") end
    local d, rows, batched = checkmat(obs, fname, 1, self._obs_dim, -1)
    local sc = checkmat(scores, fname, 2, self._n, rows)
    tau = checknumber(fname, 3, tau)
    local a = new1(rows)
    local obj = double1_t()
    local st = C.mrl_policy_gumbel_grad(h, d, sc, rows, tau, a.d_, obj)
    if st ~= 0 then pfail(self, st) end
    if not batched then return a.d_[0], obj[0] end
    return a, obj[0]
  end

  local function checkpolicy_arg(v, f, n) return handle_arg(policy_mt, "moonrl.Policy", v, f, n) end

  I.acts = acts
  I.policy_mt = policy_mt
  I.POLICY_CLOSED = POLICY_CLOSED
  I.checkpolicy_arg = checkpolicy_arg
  I.checkpolicy = checkpolicy
end
