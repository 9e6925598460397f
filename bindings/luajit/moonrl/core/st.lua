-- moonrl.core.st (LuaJIT), the counterpart of bindings/lua54/l_st.c:
-- checkpoint plumbing: safetensors files, the exact state of a generator and
-- an optimiser, durable file replacement (core.write_file_atomic) and a
-- monotonic clock (core.now).
-- A part of moonrl/core.lua (see PARTS there): it takes helpers from I, adds
-- its functions to core, and puts in I what later parts use.

return function(core, I)
  local type, tostring, tonumber, getmetatable = type, tostring, tonumber, getmetatable
  local format = string.format
  local C, ffi, MAXDIM, MAX_BATCH, raise = I.C, I.ffi, I.MAXDIM, I.MAX_BATCH, I.raise
  local argerror, istensor, isobj, typename = I.argerror, I.istensor, I.isobj, I.typename
  local typeerror, optintfield, status_string = I.typeerror, I.optintfield, I.status_string
  local checktable, tdata, newtensor, copyfloats = I.checktable, I.tdata, I.newtensor, I.copyfloats
  local checkvec, policy_mt, POLICY_CLOSED = I.checkvec, I.policy_mt, I.POLICY_CLOSED
  local checkoptim_arg, rng_mt = I.checkoptim_arg, I.rng_mt

  -- mrl_st_write sorts the names, so hash order does not show in the file.
  function core.st_write(path, tensors, metadata)
    local fname = "st_write"
    if type(path) == "number" then path = tostring(path) end
    if type(path) ~= "string" then typeerror(fname, 1, "string", path) end
    checktable(tensors, fname, 2)
    if metadata ~= nil then checktable(metadata, fname, 3) end
    local nt, keep = 0, {}
    for k, v in pairs(tensors) do
      if type(k) ~= "string" then argerror(fname, 2, "tensor names must be strings") end
      if not istensor(v) then
        if type(v) ~= "table" or isobj(v) then
          argerror(fname, 2, format("'%s': moonrl.Tensor or table expected, got %s", k, typename(v)))
        end
        v = core.tensor(v)
      end
      keep[k] = v
      nt = nt + 1
    end
    local ts = ffi.new("mrl_st_tensor[?]", nt + 1)
    local i = 0
    for k, t in pairs(keep) do -- the strings stay referenced by keep
      local e = ts[i]
      e.name = k
      e.data = tdata(t)
      e.ndim = t.nd_
      for d = 0, t.nd_ - 1 do e.shape[d] = t.sh_[d] end
      i = i + 1
    end
    local nk = 0
    for k, v in pairs(metadata or {}) do
      if type(k) ~= "string" or type(v) ~= "string" then
        argerror(fname, 3, "metadata must map strings to strings")
      end
      nk = nk + 1
    end
    local keys = ffi.new("const char *[?]", nk + 1)
    local vals = ffi.new("const char *[?]", nk + 1)
    nk = 0
    for k, v in pairs(metadata or {}) do
      keys[nk], vals[nk] = k, v
      nk = nk + 1
    end
    local err = ffi.new("char[256]")
    local st = C.mrl_st_write(path, ts, nt, keys, vals, nk, err, 256)
    if st ~= 0 then return nil, I.errmsg(err, st) end
    return true
  end

  local nd1, shape1 = ffi.new("int[1]"), ffi.new("int[?]", MAXDIM)

  function core.st_read(path)
    if type(path) == "number" then path = tostring(path) end
    if type(path) ~= "string" then typeerror("st_read", 1, "string", path) end
    local err = ffi.new("char[256]")
    local out = ffi.new("mrl_st_file *[1]")
    local st = C.mrl_st_open(out, path, err, 256)
    if st ~= 0 then return nil, I.errmsg(err, st) end
    -- closed by its finaliser too, should anything below raise
    local f = ffi.gc(out[0], C.mrl_st_close)
    local function done(...)
      ffi.gc(f, nil)
      C.mrl_st_close(f)
      return ...
    end
    local tensors = {}
    for i = 0, C.mrl_st_count(f) - 1 do
      local name = ffi.string(C.mrl_st_name(f, i))
      if C.mrl_st_shape(f, i, MAXDIM, MAX_BATCH, nd1, shape1, err, 256) ~= 0 then
        return done(nil, path .. ": " .. ffi.string(err))
      end
      local nd, shape = nd1[0], {}
      for d = 1, nd do shape[d] = shape1[d - 1] end
      local t = newtensor(nd, shape)
      st = C.mrl_st_read(f, i, t.d_, t.n_)
      if st ~= 0 then
        return done(nil, format("%s: tensor '%s': dtype %s cannot be read (%s)", path, name,
                                ffi.string(C.mrl_st_dtype(f, i)), status_string(st)))
      end
      tensors[name] = t
    end
    local meta = {}
    for i = 0, C.mrl_st_meta_count(f) - 1 do
      local key = C.mrl_st_meta_key(f, i)
      local val = C.mrl_st_meta_get(f, key)
      meta[ffi.string(key)] = val ~= nil and ffi.string(val) or ""
    end
    return done(tensors, meta)
  end

  function core.now() return C.mrl_now() end

  local RNG_STATE_BYTES = ffi.C.MRL_RNG_STATE_BYTES

  -- The generator of a Policy (sampling, minibatch shuffling) or an Rng.
  local function checkgen(v, fname)
    local mt = getmetatable(v)
    if mt == policy_mt then
      if v.h == nil then raise(POLICY_CLOSED) end
      return C.mrl_policy_rng(v.h)
    elseif mt == rng_mt then
      if v.h == nil then raise("attempt to use a closed moonrl.Rng") end
      return v.h
    end
    typeerror(fname, 1, "moonrl.Policy or moonrl.Rng", v)
  end

  function core.rng_state(g)
    local h = checkgen(g, "rng_state")
    local buf = ffi.new("uint8_t[?]", RNG_STATE_BYTES)
    C.mrl_rng_get_state(h, buf)
    return ffi.string(buf, RNG_STATE_BYTES)
  end

  function core.set_rng_state(g, s)
    local h = checkgen(g, "set_rng_state")
    if type(s) == "number" then s = tostring(s) end
    if type(s) ~= "string" then typeerror("set_rng_state", 2, "string", s) end
    if #s ~= RNG_STATE_BYTES then
      argerror("set_rng_state", 2, format("a state of %d bytes expected, got %d", RNG_STATE_BYTES, #s))
    end
    if C.mrl_rng_set_state(h, s) ~= 0 then argerror("set_rng_state", 2, "invalid generator state") end
  end

  function core.optim_state(o)
    local h = checkoptim_arg(o, "optim_state", 1)
    local n = tonumber(C.mrl_optim_nparams(h))
    if n > MAX_BATCH * 16 then raise("optim_state: optimiser too large") end
    local out = {steps = tonumber(C.mrl_optim_steps(h))}
    local names = {"m", "v"}
    for w = 0, 1 do
      local m = C.mrl_optim_moment(h, w)
      if m ~= nil then out[names[w + 1]] = copyfloats(m, 1, {n}) end
    end
    return out
  end

  function core.set_optim_state(o, t)
    local h = checkoptim_arg(o, "set_optim_state", 1)
    checktable(t, "set_optim_state", 2)
    local n = tonumber(C.mrl_optim_nparams(h))
    local steps = optintfield(t, "steps", -1, 0, 2 ^ 53)
    if steps < 0 then raise("bad field 'steps' (integer >= 0 expected)") end
    local m = t.m ~= nil and checkvec(t.m, "set_optim_state", 2, n, false) or nil
    local v = t.v ~= nil and checkvec(t.v, "set_optim_state", 2, n, false) or nil
    if C.mrl_optim_set_state(h, steps, m, v, n) ~= 0 then
      raise(ffi.string(C.mrl_optim_error(h)))
    end
  end

  function core.write_file_atomic(path, data)
    if type(path) == "number" then path = tostring(path) end
    if type(path) ~= "string" then typeerror("write_file_atomic", 1, "string", path) end
    if type(data) == "number" then data = tostring(data) end
    if type(data) ~= "string" then typeerror("write_file_atomic", 2, "string", data) end
    if path == "" or path:find("\0", 1, true) then
      argerror("write_file_atomic", 1, "a non-empty path without NUL bytes expected")
    end
    local err = ffi.new("char[512]")
    if C.mrl_write_file_atomic(path, data, #data, err, 512) ~= 0 then
      return nil, ffi.string(err)
    end
    return true
  end
end
