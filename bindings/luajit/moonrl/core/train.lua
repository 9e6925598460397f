-- moonrl.core.train (LuaJIT), the counterpart of bindings/lua54/l_train.c:
-- the update routines over several handles: value_fit (ppo_update is in
-- moonrl/core/vecenv.lua, beside the rollout).
-- A part of moonrl/core.lua (see PARTS there): it takes helpers from I, adds
-- its functions to core, and puts in I what later parts use.

return function(core, I)
  local getmetatable, format = getmetatable, string.format
  local C, ffi, MAX_BATCH, double1_t, raise = I.C, I.ffi, I.MAX_BATCH, I.double1_t, I.raise
  local argerror, typename, typeerror = I.argerror, I.typename, I.typeerror
  local optintfield, optnumfield, status_string = I.optintfield, I.optnumfield, I.status_string
  local checktable, checkmat, checkvec, net_mt = I.checktable, I.checkmat, I.checkvec, I.net_mt
  local NET_CLOSED, optim_mt, rng_mt, checkrng = I.NET_CLOSED, I.optim_mt, I.rng_mt, I.checkrng
  local newrng = I.newrng

  function core.value_fit(value, optim, obs, targets, opts)
    local fname = "value_fit"
    if getmetatable(value) ~= net_mt then typeerror(fname, 1, "moonrl.Net", value) end
    local v = value.h
    if v == nil then raise(NET_CLOSED) end
    if getmetatable(optim) ~= optim_mt then typeerror(fname, 2, "moonrl.Optim", optim) end
    local o = optim.h
    if o == nil then raise("attempt to use a closed moonrl.Optim") end
    if value._out_dim ~= 1 then argerror(fname, 1, "a net with out_dim = 1 expected") end
    local d, rows = checkmat(obs, fname, 3, value._in_dim, -1)
    local tg = checkvec(targets, fname, 4, rows, false)
    local epochs, mb, lr, seed = 5, 64, 1e-3, 0
    local rng
    if opts ~= nil then
      checktable(opts, fname, 5)
      epochs = optintfield(opts, "epochs", epochs, 1, 1000000)
      mb = optintfield(opts, "minibatch", mb, 1, MAX_BATCH)
      lr = optnumfield(opts, "lr", lr)
      seed = optintfield(opts, "seed", 0)
      local r = opts.rng
      if r ~= nil then
        if getmetatable(r) ~= rng_mt then
          raise(format("bad field 'rng' (moonrl.Rng expected, got %s)", typename(r)))
        end
        rng = r
        checkrng(r, fname)
      end
    end
    if rng == nil then rng = newrng(seed) end
    local err = ffi.new("char[256]")
    local loss = double1_t()
    local st = C.mrl_value_fit(v, o, d, tg, rows, epochs, mb, lr, rng.h, loss, err, 256)
    if st ~= 0 then
      local msg = ffi.string(err)
      raise("value_fit: " .. (msg ~= "" and msg or status_string(st)))
    end
    return loss[0]
  end
end
