-- moonrl.core.tensor (LuaJIT), the counterpart of bindings/lua54/l_tensor.c:
-- moonrl.Tensor (a variable-length cdata) and the reading of array arguments
-- (a tensor used in place, or a Lua table copied into a scratch array).
-- A part of moonrl/core.lua (see PARTS there): it takes helpers from I, adds
-- its functions to core, and puts in I what later parts use.

return function(core, I)
  local type, select, setmetatable, rawget, floor = type, select, setmetatable, rawget, math.floor
  local format = string.format
  local C, ffi, memmove, MAXDIM, MAXNUMEL = I.C, I.ffi, I.memmove, I.MAXDIM, I.MAXNUMEL
  local MAX_BATCH, floats_t, raise, argerror = I.MAX_BATCH, I.floats_t, I.raise, I.argerror
  local TT, istensor, isobj, typename = I.TT, I.istensor, I.isobj, I.typename
  local typeerror, numstr, nonfinite_name = I.typeerror, I.numstr, I.nonfinite_name
  local isfinite, checknumber, checkinteger = I.isfinite, I.checknumber, I.checkinteger

  local anchors = setmetatable({}, {__mode = "k"}) -- view → the object it lives in
  local OWNERNAME = {"moonrl.Policy", "moonrl.Net", "moonrl.Rollout", "moonrl.VecEnv"}

  local function tdata(t)
    local own = t.own_
    if own ~= nil and own[0] == nil then
      raise("attempt to use a view of a closed " .. OWNERNAME[t.okind_])
    end
    return t.d_
  end

  local function checkshape(shape, ndim)
    if ndim < 1 or ndim > MAXDIM then
      raise(format("a tensor has 1 to %d dimensions, got %d", MAXDIM, ndim))
    end
    local n = 1
    for d = 1, ndim do
      if shape[d] < 0 then raise(format("negative tensor dimension %d", shape[d])) end
      n = n * shape[d]
      if n > MAXNUMEL then raise("tensor too large") end
    end
    return n
  end

  -- shape: a Lua array, or a Tensor's sh_ (0-based, with `off` skipped dims)
  local function newtensor(ndim, shape)
    local n = checkshape(shape, ndim)
    local t = TT(n)
    t.d_ = t.st_
    t.n_ = n
    t.nd_ = ndim
    for d = 0, MAXDIM - 1 do t.sh_[d] = d < ndim and shape[d + 1] or 1 end
    return t
  end

  local function new1(n)
    local t = TT(n)
    t.d_ = t.st_
    t.n_ = n
    t.nd_ = 1
    t.sh_[0], t.sh_[1], t.sh_[2], t.sh_[3] = n, 1, 1, 1
    return t
  end

  local function new2(r, c)
    local t = TT(r * c)
    t.d_ = t.st_
    t.n_ = r * c
    t.nd_ = 2
    t.sh_[0], t.sh_[1], t.sh_[2], t.sh_[3] = r, c, 1, 1
    return t
  end

  local function pushview(base, own, okind, data, ndim, shape)
    local n = checkshape(shape, ndim)
    local t = TT(0)
    t.d_ = data
    t.own_ = own
    t.okind_ = okind or 0
    t.n_ = n
    t.nd_ = ndim
    t.view_ = 1
    for d = 0, MAXDIM - 1 do t.sh_[d] = d < ndim and shape[d + 1] or 1 end
    anchors[t] = base
    return t
  end

  local function baseof(t)
    if t.view_ ~= 0 then return anchors[t] end
    return t
  end

  local function shapeof(t, from)
    local s = {}
    for d = from or 0, t.nd_ - 1 do s[#s + 1] = t.sh_[d] end
    return s
  end

  -- t printed (mrl_tensor_str): shape only (show 0), or with its values
  -- (show 1), or as a view of a closed object (show -1).
  local strbuf = ffi.new("char[?]", C.MRL_TENSOR_STR)
  local function tostr(t, show)
    return ffi.string(C.mrl_tensor_str(strbuf, C.MRL_TENSOR_STR, t.nd_, t.sh_, t.d_, show))
  end
  local function shapestr(t) return tostr(t, 0) end

  local function copyfloats(x, ndim, shape)
    local t = newtensor(ndim, shape)
    if t.n_ > 0 then ffi.copy(t.d_, x, t.n_ * 4) end
    return t
  end

  -- Infers the shape of nested tables by following first elements.
  local function infershape(v, fname, argn)
    local shape, ndim = {}, 0
    local cur = v
    while true do
      if ndim == MAXDIM then
        argerror(fname, argn, format("tables nested deeper than %d levels", MAXDIM))
      end
      local len = #cur
      if len <= 0 then argerror(fname, argn, format("empty table at depth %d", ndim + 1)) end
      if len > MAXNUMEL then argerror(fname, argn, "tensor too large") end
      ndim = ndim + 1
      shape[ndim] = len
      local first = rawget(cur, 1)
      if type(first) == "number" then break end
      if type(first) ~= "table" or isobj(first) then
        argerror(fname, argn, format("number or table expected at depth %d, got %s",
                                     ndim + 1, typename(first)))
      end
      cur = first
    end
    return ndim, shape
  end

  -- Copies nested table v (depth d) into out from index pos; returns next pos.
  local function filltable(v, d, ndim, shape, out, pos, fname, argn)
    local len = #v
    if len ~= shape[d] then
      argerror(fname, argn, format("ragged table: %d elements at depth %d, expected %d",
                                   len, d, shape[d]))
    end
    for i = 1, shape[d] do
      local x = rawget(v, i)
      if d < ndim then
        if type(x) ~= "table" or isobj(x) then
          argerror(fname, argn, format("ragged table: table expected at depth %d, got %s",
                                       d + 1, typename(x)))
        end
        pos = filltable(x, d + 1, ndim, shape, out, pos, fname, argn)
      else
        if type(x) ~= "number" then
          argerror(fname, argn, format("ragged table: number expected at depth %d, got %s",
                                       d, typename(x)))
        end
        out[pos] = x
        pos = pos + 1
      end
    end
    return pos
  end

  -- A shape given as a table {d1, d2, …}.
  local function tableshape(v, fname, argn)
    local len = #v
    if len < 1 or len > MAXDIM then
      argerror(fname, argn, format("shape of 1 to %d dimensions expected", MAXDIM))
    end
    local shape = {}
    for i = 1, len do
      local x = rawget(v, i)
      if type(x) ~= "number" or x ~= floor(x) or x < 0 or x > MAXNUMEL then
        argerror(fname, argn, "shape entries must be non-negative integers")
      end
      shape[i] = x
    end
    return len, shape
  end

  local function readdims(fname, first, ...)
    local ndim = select("#", ...)
    if ndim < 1 or ndim > MAXDIM then
      raise(format("a tensor has 1 to %d dimensions, got %d", MAXDIM, ndim))
    end
    local shape = {}
    for i = 1, ndim do
      local v = checkinteger(fname, first + i - 1, (select(i, ...)))
      if v < 0 or v > MAXNUMEL then argerror(fname, first + i - 1, "dimension out of range") end
      shape[i] = v
    end
    return ndim, shape
  end

  function core.tensor(v, fill)
    if istensor(v) then
      return copyfloats(tdata(v), v.nd_, shapeof(v))
    end
    if type(v) ~= "table" or isobj(v) then typeerror("tensor", 1, "table or moonrl.Tensor", v) end
    if fill ~= nil then
      fill = checknumber("tensor", 2, fill)
      local ndim, shape = tableshape(v, "tensor", 1)
      local t = newtensor(ndim, shape)
      C.mrl_fill(t.d_, t.n_, fill)
      return t
    end
    local ndim, shape = infershape(v, "tensor", 1)
    local n = checkshape(shape, ndim)
    -- a scratch block first, so a ragged table raises before the tensor exists
    local buf = floats_t(n)
    filltable(v, 1, ndim, shape, buf, 0, "tensor", 1)
    return copyfloats(buf, ndim, shape)
  end

  -- A shape given as the arguments d1, d2, … or a table {d1, d2, …}.
  local function shapeargs(fname, ...)
    local first = ...
    if type(first) == "table" and not isobj(first) then return tableshape(first, fname, 1) end
    return readdims(fname, 1, ...)
  end

  function core.zeros(...)
    return newtensor(shapeargs("zeros", ...))
  end

  local T = {} -- tensor methods

  local function checkself_t(t, fname)
    if not istensor(t) then typeerror(fname, 0, "moonrl.Tensor", t) end
    tdata(t)
    return t
  end

  function T.shape(t)
    checkself_t(t, "shape")
    return shapeof(t)
  end

  function T.dim(t) return checkself_t(t, "dim").nd_ end
  function T.numel(t) return checkself_t(t, "numel").n_ end

  local function elemoffset(t, fname, ...)
    local n = select("#", ...)
    local nd = t.nd_
    if n ~= nd then raise(format("%d indices expected for a %d-D tensor, got %d", nd, nd, n)) end
    local off = 0
    for d = 0, nd - 1 do
      local i = checkinteger(fname, d + 1, (select(d + 1, ...)))
      if i < 1 or i > t.sh_[d] then
        argerror(fname, d + 1, format("index %d out of range [1, %d]", i, t.sh_[d]))
      end
      off = off * t.sh_[d] + (i - 1)
    end
    return off
  end

  function T.get(t, ...)
    checkself_t(t, "get")
    return t.d_[elemoffset(t, "get", ...)]
  end

  function T.set(t, ...)
    checkself_t(t, "set")
    local top = select("#", ...)
    local v = checknumber("set", top, (select(top, ...)))
    -- the value is the last argument; the indices come before it
    local idx = {...}
    idx[top] = nil
    t.d_[elemoffset(t, "set", unpack(idx, 1, top - 1))] = v
    return t
  end

  local function row(t, i)
    local n0 = t.sh_[0]
    if i < 1 or i > n0 then
      raise(format("index %d out of range [1, %d] of moonrl.Tensor", i, n0))
    end
    local d = tdata(t)
    if t.nd_ == 1 then return d[i - 1] end
    local rowlen = t.n_ / n0
    return pushview(baseof(t), t.own_, t.okind_, d + (i - 1) * rowlen, t.nd_ - 1, shapeof(t, 1))
  end

  -- Copies n floats from v (a number fills; a tensor or a flat or nested
  -- table of n elements copies) into dst.
  local function assign(v, dst, n, fname, argn)
    if type(v) == "number" then
      C.mrl_fill(dst, n, v)
    elseif istensor(v) then
      local sd = tdata(v)
      if v.n_ ~= n then
        argerror(fname, argn, format("%d elements expected, got %d", n, v.n_))
      end
      memmove(dst, sd, n * 4)
    elseif type(v) == "table" and not isobj(v) then
      local ndim, shape = infershape(v, fname, argn)
      local m = checkshape(shape, ndim)
      if m ~= n then argerror(fname, argn, format("%d elements expected, got %d", n, m)) end
      local buf = floats_t(m)
      filltable(v, 1, ndim, shape, buf, 0, fname, argn)
      ffi.copy(dst, buf, n * 4)
    else
      typeerror(fname, argn, "number, table or moonrl.Tensor", v)
    end
  end

  function T.totable(t)
    checkself_t(t, "totable")
    local d, nd = t.d_, t.nd_
    local pos = 0
    local function build(dim)
      local out = {}
      local len = t.sh_[dim]
      if dim + 1 == nd then
        for i = 1, len do out[i] = d[pos]; pos = pos + 1 end
      else
        for i = 1, len do out[i] = build(dim + 1) end
      end
      return out
    end
    return build(0)
  end

  function T.fill(t, v)
    checkself_t(t, "fill")
    v = checknumber("fill", 1, v)
    C.mrl_fill(t.d_, t.n_, v)
    return t
  end

  function T.copy(t, src)
    checkself_t(t, "copy")
    if src == nil then argerror("copy", 1, "value expected") end
    assign(src, t.d_, t.n_, "copy", 1)
    return t
  end

  function T.view(t, first, count)
    checkself_t(t, "view")
    first = checkinteger("view", 1, first)
    local n0 = t.sh_[0]
    if count == nil then count = n0 - first + 1 else count = checkinteger("view", 2, count) end
    if first < 1 or first > n0 + 1 then
      argerror("view", 1, format("row %d out of range [1, %d]", first, n0))
    end
    if count < 0 or first - 1 + count > n0 then
      argerror("view", 2, format("count %d out of range [0, %d]", count, n0 - first + 1))
    end
    local shape = shapeof(t)
    shape[1] = count
    local rowlen = n0 > 0 and t.n_ / n0 or 0
    return pushview(baseof(t), t.own_, t.okind_, t.d_ + (first - 1) * rowlen, t.nd_, shape)
  end

  function T.reshape(t, ...)
    checkself_t(t, "reshape")
    local ndim, shape = shapeargs("reshape", ...)
    local n = checkshape(shape, ndim)
    if n ~= t.n_ then raise(format("cannot reshape %d elements into %d", t.n_, n)) end
    return pushview(baseof(t), t.own_, t.okind_, t.d_, ndim, shape)
  end

  function T.clone(t)
    checkself_t(t, "clone")
    return copyfloats(t.d_, t.nd_, shapeof(t))
  end

  function T.sum(t)
    checkself_t(t, "sum")
    return C.mrl_sum(t.d_, t.n_)
  end

  function T.norm(t)
    checkself_t(t, "norm")
    return C.mrl_norm2(t.d_, t.n_)
  end

  local tensor_mt = {
    __index = function(t, k)
      if type(k) == "number" and k == floor(k) then
        tdata(t)
        return row(t, k)
      end
      return T[k]
    end,
    __newindex = function(t, k, v)
      tdata(t)
      if type(k) ~= "number" or k ~= floor(k) then
        raise("moonrl.Tensor fields cannot be assigned (index with an integer)")
      end
      local n0 = t.sh_[0]
      if k < 1 or k > n0 then
        raise(format("index %d out of range [1, %d] of moonrl.Tensor", k, n0))
      end
      local rowlen = t.n_ / n0
      if t.nd_ == 1 and type(v) ~= "number" then
        raise(format("number expected to assign to a 1-D moonrl.Tensor, got %s", typename(v)))
      end
      assign(v, t.d_ + (k - 1) * rowlen, rowlen, "__newindex", 2)
    end,
    __len = function(t)
      tdata(t)
      return t.sh_[0]
    end,
    __tostring = function(t)
      local own = t.own_
      return tostr(t, (own ~= nil and own[0] == nil) and -1 or 1)
    end,
  }
  ffi.metatype(TT, tensor_mt)

  -- ------------------------------------------------- arrays from arguments

  local function checkfinite_t(d, n, fname, argn)
    local i = tonumber(C.mrl_first_nonfinite(d, n))
    if i < n then
      argerror(fname, argn, format("finite numbers expected, got %s at element %d",
                                   nonfinite_name(d[i]), i + 1))
    end
  end

  local function badelem(fname, argn, i, j, v)
    if j then
      argerror(fname, argn, format("number expected at [%d][%d], got %s", i, j, type(v)))
    end
    argerror(fname, argn, format("number expected at [%d], got %s", i, type(v)))
  end

  local function nonfinite(fname, argn, i, j, x)
    if j then
      argerror(fname, argn, format("finite number expected at [%d][%d], got %s", i, j,
                                   nonfinite_name(x)))
    end
    argerror(fname, argn, format("finite number expected at [%d], got %s", i, nonfinite_name(x)))
  end

  -- A matrix with `cols` columns (rows_want < 0: any number ≥ 1).  Returns
  -- data (a float pointer or a scratch array to keep referenced), rows,
  -- batched (false when the argument was a single row).
  local function checkmat(v, fname, argn, cols, rows_want)
    if istensor(v) then
      local d = tdata(v)
      local rows, batched = -1, false
      if v.nd_ == 1 and v.sh_[0] == cols then
        rows = 1
      elseif v.nd_ == 2 and v.sh_[1] == cols then
        rows = v.sh_[0]
        batched = true
      end
      if rows < 0 or (rows_want >= 0 and rows ~= rows_want) then
        if rows_want >= 0 then
          argerror(fname, argn, format("moonrl.Tensor [%d][%d] expected, got %s",
                                       rows_want, cols, shapestr(v)))
        end
        argerror(fname, argn, format("moonrl.Tensor [%d] or [N][%d] expected, got %s",
                                     cols, cols, shapestr(v)))
      end
      if rows == 0 then argerror(fname, argn, "at least one row expected, got an empty moonrl.Tensor") end
      if rows > MAX_BATCH then argerror(fname, argn, "too many rows") end
      checkfinite_t(d, v.n_, fname, argn)
      return d, rows, batched
    end
    if type(v) ~= "table" or isobj(v) then
      typeerror(fname, argn, format("moonrl.Tensor or table of %d numbers", cols), v)
    end
    local first = rawget(v, 1)
    local len = #v
    if type(first) == "table" then
      if len > MAX_BATCH then argerror(fname, argn, "too many rows") end
      if rows_want >= 0 and len ~= rows_want then
        argerror(fname, argn, format("%d rows expected, got %d", rows_want, len))
      end
      local d = floats_t(len * cols)
      local k = 0
      for i = 1, len do
        local r = rawget(v, i)
        if type(r) ~= "table" then
          argerror(fname, argn, format("row %d: table of %d numbers expected, got %s",
                                       i, cols, type(r)))
        end
        local rl = #r
        if rl ~= cols then
          argerror(fname, argn, format("row %d: %d numbers expected, got %d", i, cols, rl))
        end
        for j = 1, cols do
          local x = rawget(r, j)
          if type(x) ~= "number" then badelem(fname, argn, i, j, x) end
          d[k] = x
          local f = d[k]
          if not isfinite(f) then nonfinite(fname, argn, i, j, f) end
          k = k + 1
        end
      end
      return d, len, true
    elseif type(first) == "number" then
      if len ~= cols or (rows_want >= 0 and rows_want ~= 1) then
        if rows_want > 1 then
          argerror(fname, argn, format("%d rows of %d numbers expected, got a flat table",
                                       rows_want, cols))
        end
        argerror(fname, argn, format("table of %d numbers expected, got %d", cols, len))
      end
      local d = floats_t(cols)
      for j = 1, cols do
        local x = rawget(v, j)
        if type(x) ~= "number" then badelem(fname, argn, j, nil, x) end
        d[j - 1] = x
        local f = d[j - 1]
        if not isfinite(f) then nonfinite(fname, argn, j, nil, f) end
      end
      return d, 1, false
    end
    argerror(fname, argn, format("table of %d numbers or of rows expected, got a table whose [1] is %s",
                                 cols, type(first)))
  end

  -- A vector of n floats (n_want < 0: any n ≥ 1).  Returns data, n.
  local function checkvec(v, fname, argn, n_want, allow_bool)
    if istensor(v) then
      local d = tdata(v)
      local n = v.n_
      if (n_want >= 0 and n ~= n_want) or n == 0 or n > MAX_BATCH then
        if n_want >= 0 then
          argerror(fname, argn, format("moonrl.Tensor of %d elements expected, got %s",
                                       n_want, shapestr(v)))
        end
        argerror(fname, argn, format("non-empty moonrl.Tensor expected, got %s", shapestr(v)))
      end
      checkfinite_t(d, n, fname, argn)
      return d, n
    end
    if type(v) ~= "table" or isobj(v) then
      if n_want >= 0 then
        typeerror(fname, argn, format("moonrl.Tensor or table of %d numbers", n_want), v)
      end
      typeerror(fname, argn, "moonrl.Tensor or table of numbers", v)
    end
    local len = #v
    if (n_want >= 0 and len ~= n_want) or len <= 0 or len > MAX_BATCH then
      if n_want >= 0 then
        argerror(fname, argn, format("table of %d numbers expected, got %d", n_want, len))
      end
      argerror(fname, argn, format("non-empty table of numbers expected, got %d", len))
    end
    local d = floats_t(len)
    for i = 1, len do
      local x = rawget(v, i)
      local tx = type(x)
      if tx == "boolean" and allow_bool then
        x = x and 1 or 0
      elseif tx ~= "number" then
        badelem(fname, argn, i, nil, x)
      end
      d[i - 1] = x
      local f = d[i - 1]
      if not isfinite(f) then nonfinite(fname, argn, i, nil, f) end
    end
    return d, len
  end

  -- Actions for `batch` rows: discrete integers in [0, n), box [batch][n].
  local DISCRETE, BOX = 0, 1
  local function checkactions(v, fname, argn, kind, n, batch)
    if kind == DISCRETE then
      local a
      if batch == 1 and type(v) == "number" then
        a = floats_t(1)
        a[0] = v
      else
        a = checkvec(v, fname, argn, batch, false)
      end
      for i = 0, batch - 1 do
        local x = a[i]
        if x ~= floor(x) or x < 0 or x >= n then
          argerror(fname, argn, format("action at [%d] must be an integer in [0, %d), got %s",
                                       i + 1, n, numstr(x)))
        end
      end
      return a
    end
    if n == 1 and type(v) == "table" and not isobj(v) and type(rawget(v, 1)) == "number" then
      return (checkvec(v, fname, argn, batch, false))
    end
    if n == 1 and batch == 1 and type(v) == "number" then
      local d = floats_t(1)
      d[0] = v
      if not isfinite(d[0]) then
        argerror(fname, argn, format("finite numbers expected, got %s at element 1",
                                     nonfinite_name(d[0])))
      end
      return d
    end
    if istensor(v) and n == 1 and v.nd_ == 1 and v.sh_[0] == batch then
      local d = tdata(v)
      checkfinite_t(d, v.n_, fname, argn)
      return d
    end
    return (checkmat(v, fname, argn, n, batch))
  end

  I.tdata = tdata
  I.newtensor = newtensor
  I.new1 = new1
  I.new2 = new2
  I.pushview = pushview
  I.copyfloats = copyfloats
  I.checkmat = checkmat
  I.checkvec = checkvec
  I.DISCRETE = DISCRETE
  I.BOX = BOX
  I.checkactions = checkactions
end
