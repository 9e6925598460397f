-- moonrl.core.net (LuaJIT), the counterpart of bindings/lua54/l_net.c:
-- moonrl.Net, the MLP value/critic network.
-- A part of moonrl/core.lua (see PARTS there): it takes helpers from I, adds
-- its functions to core, and puts in I what later parts use.

return function(core, I)
  local type, tonumber, setmetatable = type, tonumber, setmetatable
  local format = string.format
  local C, ffi, MAX_WIDTH, MAX_LAYERS, ints_t = I.C, I.ffi, I.MAX_WIDTH, I.MAX_LAYERS, I.ints_t
  local double1_t, box_t, raise, argerror = I.double1_t, I.box_t, I.raise, I.argerror
  local isobj, typeerror, isfinite, checknumber = I.isobj, I.typeerror, I.isfinite, I.checknumber
  local optintfield, intarrayfield = I.optintfield, I.intarrayfield
  local newclass, failwith = I.newclass, I.failwith
  local handle_arg, new1, new2, pushview = I.handle_arg, I.new1, I.new2, I.pushview
  local checkmat, checkvec, acts = I.checkmat, I.checkvec, I.acts

  local N = {}
  local net_mt = newclass("moonrl.Net", N)
  local NET_CLOSED = "attempt to use a closed moonrl.Net"

  local checknet = I.selfchecker(net_mt, "moonrl.Net")

  local function nfail(self, st) failwith(C.mrl_net_error, self.h, st) end

  net_mt.__tostring = function(self)
    local h = self.h
    if h == nil then return "moonrl.Net (closed)" end
    return format("moonrl.Net (%d -> %d, %d hidden layers, %s, %d params)", self._in_dim,
                  self._out_dim, C.mrl_net_nhidden(h), acts[tonumber(C.mrl_net_activation(h)) + 1],
                  self._nparams)
  end

  function core.net(t)
    if type(t) ~= "table" or isobj(t) then typeerror("net", 1, "table", t) end
    local s = C.mrl_net_spec_default()
    local grid, layers, nconv = I.checkgrid(t, s.obs_shape) -- layers: kept alive until new_spec
    if nconv > 0 then s.conv, s.nconv = layers, nconv end
    if t.in_dim == nil and not grid then raise("bad field 'in_dim' (integer expected, got nil)") end
    s = I.readopts(t, C.MRL_OPTS_NET, s)
    local in_dim, out_dim, gain = s.in_dim, s.out_dim, s.out_gain
    local hbuf
    if t.hidden ~= nil then
      local hidden = intarrayfield(t, "hidden", MAX_LAYERS, 1, MAX_WIDTH)
      hbuf = ints_t(#hidden + 1)
      for i = 1, #hidden do hbuf[i - 1] = hidden[i] end
      s.nhidden, s.hidden = #hidden, hbuf
    end
    local seed = optintfield(t, "seed", tonumber(s.seed))
    local useed = seed < 0 and ffi.cast("uint64_t", ffi.cast("int64_t", seed)) or seed
    s.seed = useed
    local err = ffi.new("char[256]")
    if C.mrl_net_spec_check(s, err, 256) ~= 0 then raise("cannot create net: " .. ffi.string(err)) end
    local out = ffi.new("mrl_net *[1]")
    local st = C.mrl_net_new_spec(out, s)
    layers = nil
    if st ~= 0 then raise("cannot create net: " .. status_string(st)) end
    local h = ffi.gc(out[0], C.mrl_net_free)
    in_dim = C.mrl_net_in_dim(h)
    local self = {h = h, box = box_t(), _in_dim = in_dim, _out_dim = out_dim,
                  _nparams = tonumber(C.mrl_net_nparams(h)), _last_batch = 0,
                  _out_gain = gain, _seed = seed}
    self.box[0] = h
    return setmetatable(self, net_mt)
  end

  N.close = I.closer(net_mt, "moonrl.Net", C.mrl_net_free)

  function N.in_dim(self) checknet(self, "in_dim") return self._in_dim end
  function N.out_dim(self) checknet(self, "out_dim") return self._out_dim end
  function N.nparams(self) checknet(self, "nparams") return self._nparams end

  function N.spec(self)
    local h = checknet(self, "spec")
    local hidden = {}
    for i = 0, C.mrl_net_nhidden(h) - 1 do hidden[i + 1] = C.mrl_net_hidden(h, i) end
    local spec = {in_dim = self._in_dim, hidden = hidden,
            activation = acts[tonumber(C.mrl_net_activation(h)) + 1], out_dim = self._out_dim,
            out_gain = self._out_gain, seed = self._seed}
    I.setgrid(spec, h, C.mrl_net_obs_shape, C.mrl_net_nconv, C.mrl_net_conv)
    return spec
  end

  function N.params(self)
    local h = checknet(self, "params")
    local t = new1(self._nparams)
    local st = C.mrl_net_get_params(h, t.d_, self._nparams)
    if st ~= 0 then nfail(self, st) end
    return t
  end

  function N.set_params(self, v)
    local h = checknet(self, "set_params")
    local d = checkvec(v, "set_params", 1, self._nparams, false)
    local st = C.mrl_net_set_params(h, d, self._nparams)
    if st ~= 0 then nfail(self, st) end
    return self
  end

  function N.grad(self)
    local h = checknet(self, "grad")
    return pushview(self, self.box, 2, C.mrl_net_grad(h), 1, {self._nparams})
  end

  function N.params_view(self)
    local h = checknet(self, "params_view")
    return pushview(self, self.box, 2, C.mrl_net_params(h), 1, {self._nparams})
  end

  function N.zero_grad(self)
    C.mrl_net_zero_grad(checknet(self, "zero_grad"))
    return self
  end

  function N.forward(self, x)
    local h = checknet(self, "forward")
    local d, rows, batched = checkmat(x, "forward", 1, self._in_dim, -1)
    local y = batched and new2(rows, self._out_dim) or new1(self._out_dim)
    self._last_batch = 0
    local st = C.mrl_net_forward(h, d, rows, y.d_)
    if st ~= 0 then nfail(self, st) end
    self._last_batch = rows
    return y
  end

  function N.backward(self, dy, want_dx)
    local h = checknet(self, "backward")
    if self._last_batch <= 0 then raise("backward needs a forward first") end
    local d, rows, batched = checkmat(dy, "backward", 1, self._out_dim, self._last_batch)
    if want_dx then
      local dx = batched and new2(rows, self._in_dim) or new1(self._in_dim)
      local st = C.mrl_net_backward(h, d, dx.d_)
      if st ~= 0 then nfail(self, st) end
      return dx
    end
    local st = C.mrl_net_backward(h, d, nil)
    if st ~= 0 then nfail(self, st) end
  end

  function N.jvp(self, x, v)
    local h = checknet(self, "jvp")
    local d, rows, batched = checkmat(x, "jvp", 1, self._in_dim, -1)
    local vv = checkvec(v, "jvp", 2, self._nparams, false)
    local y = batched and new2(rows, self._out_dim) or new1(self._out_dim)
    local jy = batched and new2(rows, self._out_dim) or new1(self._out_dim)
    self._last_batch = 0
    local st = C.mrl_net_jvp(h, d, rows, vv, y.d_, jy.d_)
    if st ~= 0 then nfail(self, st) end
    self._last_batch = rows
    return y, jy
  end

  function N.value_loss(self, obs, targets)
    local h = checknet(self, "value_loss")
    if self._out_dim ~= 1 then raise("value_loss needs a net with out_dim = 1") end
    local d, rows = checkmat(obs, "value_loss", 1, self._in_dim, -1)
    local tg = checkvec(targets, "value_loss", 2, rows, false)
    self._last_batch = 0
    local v = new1(rows)
    local loss = double1_t()
    local st = C.mrl_net_value_loss(h, d, tg, rows, loss, v.d_)
    if st ~= 0 then nfail(self, st) end
    return loss[0], v
  end

  function N.value_loss_clipped(self, obs, targets, old_values, clip)
    local fname = "value_loss_clipped"
    local h = checknet(self, fname)
    if self._out_dim ~= 1 then raise("value_loss_clipped needs a net with out_dim = 1") end
    local d, rows = checkmat(obs, fname, 1, self._in_dim, -1)
    local tg = checkvec(targets, fname, 2, rows, false)
    local old = checkvec(old_values, fname, 3, rows, false)
    clip = checknumber(fname, 4, clip)
    if not isfinite(clip) then argerror(fname, 4, "finite number expected") end
    self._last_batch = 0
    local loss = double1_t()
    local st = C.mrl_net_value_loss_clipped(h, d, tg, old, rows, clip, loss)
    if st ~= 0 then nfail(self, st) end
    return loss[0]
  end

  local function checknet_arg(v, f, n) return handle_arg(net_mt, "moonrl.Net", v, f, n) end

  I.net_mt = net_mt
  I.NET_CLOSED = NET_CLOSED
  I.checknet_arg = checknet_arg
  I.checknet = checknet
end
