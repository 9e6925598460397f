-- moonrl.core.util (LuaJIT), the counterpart of bindings/lua54/l_util.c:
-- errors in the C module's words, argument and table-field checks, class
-- metatables, and the binding's limits.
-- A part of moonrl/core.lua (see PARTS there): it takes helpers from I, adds
-- its functions to core, and puts in I what later parts use.

return function(core, I)
  local type, tostring, tonumber, error = type, tostring, tonumber, error
  local getmetatable, rawget, floor, huge = getmetatable, rawget, math.floor, math.huge
  local format, concat = string.format, table.concat
  local C, ffi, SRC_PREFIX = I.C, I.ffi, I.SRC_PREFIX

  local MAXDIM = 4
  local MAXNUMEL = 2 ^ 28  -- as the Lua 5.4 module: 1 GiB of floats
  -- the runtime's limits (moonrl.h), as the C module uses them
  local MAX_BATCH = ffi.C.MRL_MAX_BATCH
  local MAX_WIDTH = ffi.C.MRL_MAX_WIDTH
  local MAX_LAYERS = ffi.C.MRL_MAX_LAYERS

  local floats_t = ffi.typeof("float[?]")
  local u8s_t = ffi.typeof("uint8_t[?]")
  local ints_t = ffi.typeof("int[?]")
  local double1_t = ffi.typeof("double[1]")
  local box_t = ffi.typeof("void *[1]")

  -- ------------------------------------------------------------- errors

  -- Raises msg at the position of the first caller outside this binding, as
  -- luaL_error does for the C module (whose checks run inside the C function).
  local function raise(msg)
    local level = 2
    while true do
      local info = debug.getinfo(level, "S")
      if info == nil then level = 0 break end
      local src = info.source
      if src:sub(1, #SRC_PREFIX) ~= SRC_PREFIX and src:sub(1, 12) ~= "=moonrl.core" then break end
      level = level + 1
    end
    error(msg, level)
  end

  local function argerror(fname, n, msg)
    if n == 0 then raise(format("calling '%s' on bad self (%s)", fname, msg)) end
    raise(format("bad argument #%d to '%s' (%s)", n, fname, msg))
  end

  local CLASSNAME = {} -- class metatable → its name

  local TT = ffi.typeof("mrl_lj_tensor")
  local function istensor(v) return type(v) == "cdata" and ffi.istype(TT, v) end

  local function isobj(v)
    return type(v) == "table" and CLASSNAME[getmetatable(v)] ~= nil
  end

  local function typename(v)
    local t = type(v)
    if t == "cdata" then
      if ffi.istype(TT, v) then return "moonrl.Tensor" end
    elseif t == "table" then
      local name = CLASSNAME[getmetatable(v)]
      if name then return name end
    end
    return t
  end

  local function typeerror(fname, n, expected, v)
    argerror(fname, n, format("%s expected, got %s", expected, typename(v)))
  end

  -- lua_pushfstring's %f: numbers as "%.14g"
  local function numstr(x)
    if x ~= x then return "nan" end
    if x == huge then return "inf" end
    if x == -huge then return "-inf" end
    return format("%.14g", x)
  end

  local function nonfinite_name(x)
    return x ~= x and "nan" or (x > 0 and "inf" or "-inf")
  end

  local function isfinite(x) return x == x and x ~= huge and x ~= -huge end

  -- luaL_checknumber: a number or a numeric string
  local function checknumber(fname, n, v)
    if type(v) == "number" then return v end
    if type(v) == "string" then
      local x = tonumber(v)
      if x then return x end
    end
    typeerror(fname, n, "number", v)
  end

  local function optnumber(fname, n, v, def)
    if v == nil then return def end
    return checknumber(fname, n, v)
  end

  local function checkinteger(fname, n, v)
    local x = v
    if type(x) == "string" then x = tonumber(x) end
    if type(x) ~= "number" then typeerror(fname, n, "number", v) end
    if x ~= floor(x) or x ~= x or x == huge or x == -huge then
      argerror(fname, n, "number has no integer representation")
    end
    return x
  end

  local function checkoption(fname, n, v, def, list)
    local s = v
    if s == nil then s = def end
    if type(s) == "number" then s = tostring(s) end
    if type(s) ~= "string" then typeerror(fname, n, "string", v) end
    for i = 1, #list do
      if list[i] == s then return i - 1 end
    end
    argerror(fname, n, format("invalid option '%s'", s))
  end

  -- ------------------------------------------------------- table fields

  local function optintfield(t, k, def, lo, hi)
    local v = t[k]
    if v == nil then return def end
    if type(v) ~= "number" or v ~= floor(v) or v ~= v or v == huge or v == -huge then
      raise(format("bad field '%s' (integer expected, got %s)", k,
                   type(v) == "number" and "non-integer number" or type(v)))
    end
    if (lo and v < lo) or (hi and v > hi) then
      raise(format("bad field '%s' (integer in [%d, %d] expected, got %d)", k, lo, hi, v))
    end
    return v
  end

  local function optnumfield(t, k, def)
    local v = t[k]
    if v == nil then return def end
    if type(v) ~= "number" then
      raise(format("bad field '%s' (number expected, got %s)", k, type(v)))
    end
    if not isfinite(v) then
      raise(format("bad field '%s' (finite number expected, got %s)", k, numstr(v)))
    end
    return v
  end

  local function optboolfield(t, k, def)
    local v = t[k]
    if v == nil then return def end
    if type(v) ~= "boolean" then
      raise(format("bad field '%s' (boolean expected, got %s)", k, type(v)))
    end
    return v
  end

  -- An array of integers in [lo, hi] as a Lua array (nil when absent).
  local function intarrayfield(t, k, max, lo, hi)
    local v = t[k]
    if v == nil then return nil end
    if type(v) ~= "table" then
      raise(format("bad field '%s' (table of integers expected, got %s)", k, typename(v)))
    end
    local len = #v
    if len > max then
      raise(format("bad field '%s' (at most %d entries expected, got %d)", k, max, len))
    end
    local out = {}
    for i = 1, len do
      local x = rawget(v, i)
      if type(x) ~= "number" or x ~= floor(x) or x < lo or x > hi then
        raise(format("bad field '%s' (entry %d must be an integer in [%d, %d])", k, i, lo, hi))
      end
      out[i] = x
    end
    return out
  end

  local function optenumfield(t, k, def, list)
    local v = t[k]
    local s = def
    if type(v) == "string" then
      s = v
    elseif v ~= nil then
      raise(format("bad field '%s' (string expected, got %s)", k, type(v)))
    end
    for i = 1, #list do
      if list[i] == s then return i - 1 end
    end
    local names = {}
    for i = 1, #list do names[i] = "'" .. list[i] .. "'" end
    local expected = #list == 2 and (names[1] .. " or " .. names[2]) or concat(names, ", ")
    raise(format("bad field '%s' (%s expected, got '%s')", k, expected, s))
  end

  -- Fills out[0 … n−1] from a number (repeated) or an array; false if absent.
  local function floatsfield(t, k, out, off, n)
    local v = t[k]
    if v == nil then return false end
    if type(v) == "number" then
      for i = 0, n - 1 do out[off + i] = v end
    elseif type(v) == "table" and not isobj(v) then
      if #v ~= n then
        raise(format("bad field '%s' (%d numbers expected, got %d)", k, n, #v))
      end
      for i = 1, n do
        local x = rawget(v, i)
        if type(x) ~= "number" then
          raise(format("bad field '%s' (number expected at [%d])", k, i))
        end
        out[off + i - 1] = x
      end
    else
      raise(format("bad field '%s' (number or table expected, got %s)", k, typename(v)))
    end
    return true
  end

  -- The runtime's option table `which` (mrl_opts) read once into Lua
  -- ({name, kind, offset, lo, hi, names}); readopts writes the fields of t
  -- it names into the struct dst (cdata holding the defaults).
  local opt_tables = {}
  local function opttable(which)
    local list = opt_tables[which]
    if list then return list end
    list = {}
    local o = C.mrl_opts(which)
    while o ~= nil and o.name ~= nil do
      local names = {}
      if o.names ~= nil then
        local i = 0
        while o.names[i] ~= nil do names[i + 1] = ffi.string(o.names[i]); i = i + 1 end
      end
      list[#list + 1] = {name = ffi.string(o.name), kind = o.kind, offset = o.offset,
                         lo = o.lo, hi = o.hi, names = names}
      o = o + 1
    end
    opt_tables[which] = list
    return list
  end
  local charp, intp, doublep = ffi.typeof("char *"), ffi.typeof("int *"), ffi.typeof("double *")
  local function readopts(t, which, dst)
    local base = ffi.cast(charp, dst)
    for _, o in ipairs(opttable(which)) do
      local k = o.name
      if o.kind == C.MRL_OPT_NUM then
        local f = ffi.cast(doublep, base + o.offset)
        f[0] = optnumfield(t, k, f[0])
      else
        local f = ffi.cast(intp, base + o.offset)
        if o.kind == C.MRL_OPT_BOOL then
          f[0] = optboolfield(t, k, f[0] ~= 0) and 1 or 0
        elseif o.kind == C.MRL_OPT_ENUM then
          f[0] = optenumfield(t, k, o.names[f[0] + 1], o.names)
        else
          f[0] = optintfield(t, k, f[0], o.lo, o.hi)
        end
      end
    end
    return dst
  end

  -- ------------------------------------------------------------- classes

  local function newclass(name, methods)
    local mt = {__index = methods, __name = name}
    CLASSNAME[mt] = name
    return mt
  end

  -- The handle of self for a method of class mt (named name), raising in
  -- the C module's words when self is another value or closed.
  local function selfchecker(mt, name)
    local closed = "attempt to use a closed " .. name
    return function(self, fname)
      if getmetatable(self) ~= mt then typeerror(fname, 0, name, self) end
      local h = self.h
      if h == nil then raise(closed) end
      return h
    end
  end

  -- A class's close(): free(handle) once, the finaliser detached, self.h
  -- and the views' box cleared; idempotent.
  local function closer(mt, name, free)
    return function(self)
      if getmetatable(self) ~= mt then typeerror("close", 0, name, self) end
      local h = self.h
      if h ~= nil then
        self.h = nil
        local box = rawget(self, "box")
        if box then box[0] = nil end
        ffi.gc(h, nil)
        free(h)
      end
    end
  end

  local function status_string(st)
    return ffi.string(C.mrl_status_string(st))
  end

  -- The message a runtime call wrote into err (a char buffer), or the
  -- status string when it wrote none.
  local function errmsg(err, st)
    local msg = ffi.string(err)
    return msg ~= "" and msg or status_string(st)
  end

  -- Raises with a handle's message, or the status string when it has none.
  local function failwith(errfn, h, st)
    local msg
    if h ~= nil then
      local m = errfn(h)
      if m ~= nil then msg = ffi.string(m) end
    end
    if msg == nil or msg == "" then msg = status_string(st) end
    raise(msg)
  end

  local function floatarray(x, n)
    local out = {}
    for i = 1, n do out[i] = x[i - 1] end
    return out
  end

  local function checktable(v, fname, argn)
    if type(v) ~= "table" or isobj(v) then typeerror(fname, argn, "table", v) end
  end

  -- Handles of objects given as arguments (not self), for the functions that
  -- take several objects.
  local function handle_arg(mt, name, v, fname, argn)
    if getmetatable(v) ~= mt then typeerror(fname, argn, name, v) end
    local h = v.h
    if h == nil then raise("attempt to use a closed " .. name) end
    return h
  end

  -- obs_shape = {C, H, W} and conv = {{out=, kernel=, stride=, padding=}, ...}
  -- of t (stride 1 and padding 0 when absent), as l_util.c's mrlL_checkgrid:
  -- the shape into shape (an int[3]); returns whether obs_shape was given,
  -- the layers (an mrl_conv_layer array the caller keeps alive until the
  -- constructor has copied it) and their count.
  local conv_keys = {out = true, kernel = true, stride = true, padding = true}
  local function checkgrid(t, shape)
    local has = t.obs_shape ~= nil
    if has then
      local sh = intarrayfield(t, "obs_shape", 3, 1, MAX_WIDTH)
      if #sh ~= 3 then raise("bad field 'obs_shape' ({C, H, W} expected)") end
      for i = 1, 3 do shape[i - 1] = sh[i] end
    end
    local c = t.conv
    if c == nil then return has, nil, 0 end
    if not has then raise("bad field 'conv' (needs obs_shape = {C, H, W})") end
    if type(c) ~= "table" or isobj(c) then
      raise(format("bad field 'conv' (table expected, got %s)", typename(c)))
    end
    local n = #c
    if n > C.MRL_MAX_CONV then
      raise(format("bad field 'conv' (%d layers, at most %d)", n, C.MRL_MAX_CONV))
    end
    local layers = ffi.new("mrl_conv_layer[?]", n + 1)
    for i = 1, n do
      local l = c[i]
      if type(l) ~= "table" or isobj(l) then
        raise(format("bad field 'conv[%d]' (table expected, got %s)", i, typename(l)))
      end
      for k in pairs(l) do
        if not conv_keys[k] then
          raise(format("bad field 'conv[%d]' (unknown key %s; out, kernel, stride, padding)", i,
                       type(k) == "string" and k or "(not a string)"))
        end
      end
      for _, k in ipairs({"out", "kernel"}) do
        if l[k] == nil then raise(format("bad field 'conv[%d].%s' (integer expected, got nil)", i, k)) end
      end
      local L = layers[i - 1]
      L.out = optintfield(l, "out", 1, 1, MAX_WIDTH)
      L.kernel = optintfield(l, "kernel", 1, 1, 1024)
      L.stride = optintfield(l, "stride", 1, 1, 1024)
      L.padding = optintfield(l, "padding", 0, 0, 1024)
    end
    return has, layers, n
  end

  -- Sets obs_shape and conv of the spec table t from handle h, through the
  -- class's accessors (mrl_policy_obs_shape / _nconv / _conv or mrl_net_*).
  local function setgrid(t, h, obs_shape, nconv, conv)
    local shape = ints_t(3)
    if obs_shape(h, shape) ~= 0 then t.obs_shape = {shape[0], shape[1], shape[2]} end
    local nc = nconv(h)
    if nc > 0 then
      local list, l = {}, ffi.new("mrl_conv_layer[1]")
      for i = 0, nc - 1 do
        conv(h, i, l)
        list[i + 1] = {out = l[0].out, kernel = l[0].kernel, stride = l[0].stride, padding = l[0].padding}
      end
      t.conv = list
    end
  end

  I.checkgrid = checkgrid
  I.setgrid = setgrid
  I.MAXDIM = MAXDIM
  I.MAXNUMEL = MAXNUMEL
  I.MAX_BATCH = MAX_BATCH
  I.MAX_WIDTH = MAX_WIDTH
  I.MAX_LAYERS = MAX_LAYERS
  I.floats_t = floats_t
  I.u8s_t = u8s_t
  I.ints_t = ints_t
  I.double1_t = double1_t
  I.box_t = box_t
  I.raise = raise
  I.argerror = argerror
  I.TT = TT
  I.istensor = istensor
  I.isobj = isobj
  I.typename = typename
  I.typeerror = typeerror
  I.numstr = numstr
  I.nonfinite_name = nonfinite_name
  I.isfinite = isfinite
  I.checknumber = checknumber
  I.optnumber = optnumber
  I.checkinteger = checkinteger
  I.checkoption = checkoption
  I.optintfield = optintfield
  I.optnumfield = optnumfield
  I.optboolfield = optboolfield
  I.intarrayfield = intarrayfield
  I.optenumfield = optenumfield
  I.floatsfield = floatsfield
  I.readopts = readopts
  I.newclass = newclass
  I.selfchecker = selfchecker
  I.closer = closer
  I.status_string = status_string
  I.errmsg = errmsg
  I.failwith = failwith
  I.floatarray = floatarray
  I.checktable = checktable
  I.handle_arg = handle_arg
  I.CLASSNAME = CLASSNAME
end
