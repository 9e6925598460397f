-- moonrl.core for LuaJIT: the interface of bindings/CORE_API.md over
-- libmoonrl.so through the FFI, so scripts/ runs unchanged under LuaJIT
-- (LÖVE, or `luajit bindings/luajit/run.lua …`).
--
-- To use it, put this folder first on the path, e.g. from the repository:
--   LUA_PATH="bindings/luajit/?.lua;scripts/?.lua;scripts/?/init.lua;;" luajit …
-- The library is found through $MOONRL_LIB, then $BUILD/libmoonrl.so and
-- build/libmoonrl.so next to this checkout, then the system's "moonrl"; the
-- declarations through $MOONRL_CDEF, then moonrl_cdef.h next to the library
-- (`make build/moonrl_cdef.h`), then runtime/moonrl.h stripped here the same
-- way.  The library's mrl_abi_version() must be the one this file expects.
--
-- Design (../../../shared/STYLE.md, lua-resty-core's lessons):
--  - the C library namespace is an upvalue; C calls are compiled by the JIT;
--  - every handle is owned through ffi.gc; close() detaches the finaliser
--    and frees at once, so it is idempotent and a later call raises;
--  - a Tensor is a cdata (a variable-length struct: header + inline floats,
--    or a header pointing into another object's memory for a view); views
--    keep their base alive through a weak-keyed anchor table;
--  - policy:act(flat_table) reads into a per-policy float row and returns
--    numbers: no allocation on the hot path;
--  - Policy, Net, Optim and Rng are Lua tables with a class metatable
--    (__name is the class name, as in error messages of the C module).
-- Error messages follow bindings/lua54 word for word where the specs can
-- see them: "bad argument #1 to 'act' (… expected, got …)".

local ffi = require "ffi"

local type, tostring, tonumber, select, error = type, tostring, tonumber, select, error
local getmetatable, setmetatable, rawget = getmetatable, setmetatable, rawget
local floor, huge, sqrt = math.floor, math.huge, math.sqrt
local format, concat = string.format, table.concat

local EXPECTED_ABI = 2

-- The FFI's declarations and metatypes are per Lua state and cannot be
-- made twice, so a second load (package.loaded cleared, a test runner's
-- insulation) returns the module built the first time.
local REGKEY = "moonrl.core (LuaJIT FFI binding)"
do
  local done = debug.getregistry()[REGKEY]
  if done then return done end
end

-- ------------------------------------------------------------ loading

local HERE = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local ROOT = HERE .. "../../../"
-- frames whose source starts with this are the binding's own (see raise)
local SRC_PREFIX = "@" .. HERE

local function readfile(path)
  local f = path and io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- The same mechanical extraction as the Makefile's rule for moonrl_cdef.h.
local function strip_header(text)
  local out = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if not line:match("^%s*#") and not line:match('^extern "C"') and line ~= "}" then
      out[#out + 1] = line
    end
  end
  return concat(out, "\n")
end

local function load_library()
  local tried = {}
  local candidates = {}
  local env_lib = os.getenv("MOONRL_LIB")
  if env_lib and env_lib ~= "" then candidates[#candidates + 1] = env_lib end
  local build = os.getenv("BUILD")
  if build and build ~= "" then
    if build:sub(1, 1) ~= "/" then build = ROOT .. build end
    candidates[#candidates + 1] = build .. "/libmoonrl.so"
  end
  candidates[#candidates + 1] = ROOT .. "build/libmoonrl.so"
  for _, path in ipairs(candidates) do
    if path == env_lib or exists(path) then
      local ok, lib = pcall(ffi.load, path)
      if ok then return lib, path end
      tried[#tried + 1] = tostring(lib)
    else
      tried[#tried + 1] = path .. ": not found"
    end
  end
  local ok, lib = pcall(ffi.load, "moonrl")
  if ok then return lib, nil end
  tried[#tried + 1] = tostring(lib)
  error("moonrl.core: cannot load libmoonrl (set MOONRL_LIB):\n  " .. concat(tried, "\n  "), 3)
end

local function load_cdef(libpath)
  local candidates = {}
  local env = os.getenv("MOONRL_CDEF")
  if env and env ~= "" then candidates[#candidates + 1] = {env, false} end
  if libpath then
    local dir = libpath:match("^(.*[/\\])") or "./"
    candidates[#candidates + 1] = {dir .. "moonrl_cdef.h", false}
  end
  candidates[#candidates + 1] = {ROOT .. "build/moonrl_cdef.h", false}
  candidates[#candidates + 1] = {ROOT .. "runtime/moonrl.h", true}
  for _, prefix in ipairs{"/usr/local", "/usr"} do
    candidates[#candidates + 1] = {prefix .. "/include/moonrl.h", true}
  end
  for _, c in ipairs(candidates) do
    local text = readfile(c[1])
    if text then return c[2] and strip_header(text) or text, c[1] end
  end
  error("moonrl.core: cannot find moonrl_cdef.h (set MOONRL_CDEF or run `make build/moonrl_cdef.h`)", 3)
end

local C, LIBPATH = load_library()
-- (a host that declared the header itself already has the types)
if not pcall(ffi.typeof, "mrl_policy_spec") then
  local text, where = load_cdef(LIBPATH)
  local ok, err = pcall(ffi.cdef, text)
  if not ok then error("moonrl.core: ffi.cdef of " .. where .. " failed: " .. tostring(err), 2) end
end
if C.mrl_abi_version() ~= EXPECTED_ABI or ffi.C.MRL_ABI_VERSION ~= EXPECTED_ABI then
  error(format("moonrl.core: libmoonrl ABI %d (header %d), this binding expects %d",
               C.mrl_abi_version(), ffi.C.MRL_ABI_VERSION, EXPECTED_ABI), 2)
end
pcall(ffi.cdef, "void *memmove(void *dst, const void *src, size_t n);")
local memmove = ffi.C.memmove

ffi.cdef [[
typedef struct mrl_lj_tensor {
  float *d_;         /* the elements */
  void **own_;       /* NULL, or the owner's handle slot (NULL once closed) */
  double n_;         /* element count */
  int32_t nd_, view_, okind_;
  int32_t sh_[4];
  float st_[?];      /* inline storage of an owning tensor */
} mrl_lj_tensor;
]]

local MAXDIM = 4
local MAXNUMEL = 2 ^ 28  -- as the Lua 5.4 module: 1 GiB of floats
local MAX_BATCH = 16777216
local MAX_WIDTH = 65536
local MAX_LAYERS = 16

local floats_t = ffi.typeof("float[?]")
local u8s_t = ffi.typeof("uint8_t[?]")
local ints_t = ffi.typeof("int[?]")
local double1_t = ffi.typeof("double[1]")
local box_t = ffi.typeof("void *[1]")

local core = {version = "0.1.0", abi = EXPECTED_ABI, binding = "luajit"}

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

-- ------------------------------------------------------------- tensors

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

local function shapestr(t)
  local parts = {"moonrl.Tensor "}
  for d = 0, t.nd_ - 1 do parts[#parts + 1] = "[" .. t.sh_[d] .. "]" end
  return concat(parts)
end

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
    local d = t.d_
    for i = 0, t.n_ - 1 do d[i] = fill end
    return t
  end
  local ndim, shape = infershape(v, "tensor", 1)
  local n = checkshape(shape, ndim)
  -- a scratch block first, so a ragged table raises before the tensor exists
  local buf = floats_t(n)
  filltable(v, 1, ndim, shape, buf, 0, "tensor", 1)
  return copyfloats(buf, ndim, shape)
end

function core.zeros(...)
  local first = ...
  local ndim, shape
  if type(first) == "table" and not isobj(first) then
    ndim, shape = tableshape(first, "zeros", 1)
  else
    ndim, shape = readdims("zeros", 1, ...)
  end
  return newtensor(ndim, shape)
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
    for k = 0, n - 1 do dst[k] = v end
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
  local d = t.d_
  for i = 0, t.n_ - 1 do d[i] = v end
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
  local first = ...
  local ndim, shape
  if type(first) == "table" and not isobj(first) then
    ndim, shape = tableshape(first, "reshape", 1)
  else
    ndim, shape = readdims("reshape", 1, ...)
  end
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
  local s, d = 0, t.d_
  for i = 0, t.n_ - 1 do s = s + d[i] end
  return s
end

function T.norm(t)
  checkself_t(t, "norm")
  local s, d = 0, t.d_
  for i = 0, t.n_ - 1 do local x = d[i]; s = s + x * x end
  return sqrt(s)
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
    local parts = {"moonrl.Tensor "}
    for d = 0, t.nd_ - 1 do parts[#parts + 1] = "[" .. t.sh_[d] .. "]" end
    local own = t.own_
    if own ~= nil and own[0] == nil then
      parts[#parts + 1] = " (view of a closed object)"
    else
      parts[#parts + 1] = " {"
      local shown = t.n_ < 8 and t.n_ or 8
      for i = 0, shown - 1 do
        parts[#parts + 1] = format("%s%.6g", i > 0 and ", " or "", t.d_[i])
      end
      if shown < t.n_ then parts[#parts + 1] = ", …" end
      parts[#parts + 1] = "}"
    end
    return concat(parts)
  end,
}
ffi.metatype(TT, tensor_mt)

-- ------------------------------------------------- arrays from arguments

local function checkfinite_t(d, n, fname, argn)
  if C.mrl_all_finite(d, n) ~= 0 then return end
  for i = 0, n - 1 do
    local x = d[i]
    if not isfinite(x) then
      argerror(fname, argn, format("finite numbers expected, got %s at element %d",
                                   nonfinite_name(x), i + 1))
    end
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

-- ------------------------------------------------------------- classes

local function newclass(name, methods)
  local mt = {__index = methods, __name = name}
  CLASSNAME[mt] = name
  return mt
end

local function status_string(st)
  return ffi.string(C.mrl_status_string(st))
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

local kinds = {"discrete", "box"}
local acts = {"tanh", "relu"}
local fishers = {"analytic", "empirical"}

-- ------------------------------------------------------------- Policy

local P = {}
local policy_mt = newclass("moonrl.Policy", P)
local POLICY_CLOSED = "attempt to use a closed moonrl.Policy"
local fast_act -- defined after P.act

local function checkpolicy(self, fname)
  if getmetatable(self) ~= policy_mt then typeerror(fname, 0, "moonrl.Policy", self) end
  local h = self.h
  if h == nil then raise(POLICY_CLOSED) end
  return h
end

local function pfail(self, st) failwith(C.mrl_policy_error, self.h, st) end

policy_mt.__tostring = function(self)
  local h = self.h
  if h == nil then return "moonrl.Policy (closed)" end
  local hid = {}
  for i = 0, C.mrl_policy_nhidden(h) - 1 do hid[#hid + 1] = tostring(C.mrl_policy_hidden(h, i)) end
  return format("moonrl.Policy (obs %d, %s %d, hidden {%s}, %s, %d params)", self._obs_dim,
                kinds[self._kind + 1], self._n, concat(hid, ", "),
                acts[tonumber(C.mrl_policy_activation(h)) + 1], self._nparams)
end

function core.policy(t)
  if type(t) ~= "table" or isobj(t) then typeerror("policy", 1, "table", t) end
  if t.obs_dim == nil then raise("bad field 'obs_dim' (integer expected, got nil)") end
  local spec = ffi.new("mrl_policy_spec")
  spec.obs_dim = optintfield(t, "obs_dim", 0, 1, MAX_WIDTH)
  local hidden = {64, 64}
  if t.hidden ~= nil then hidden = intarrayfield(t, "hidden", MAX_LAYERS, 1, MAX_WIDTH) end
  local hbuf = ints_t(#hidden > 0 and #hidden or 1)
  for i = 1, #hidden do hbuf[i - 1] = hidden[i] end
  spec.nhidden = #hidden
  spec.hidden = #hidden > 0 and hbuf or nil
  spec.activation = optenumfield(t, "activation", "tanh", acts)
  spec.init_log_std = optnumfield(t, "init_log_std", 0)
  spec.out_gain = optnumfield(t, "out_gain", 0.01)
  local seed = optintfield(t, "seed", 0)
  spec.seed = seed < 0 and ffi.cast("uint64_t", ffi.cast("int64_t", seed)) or seed
  local a = t.action
  if type(a) ~= "table" or isobj(a) then
    raise(format("bad field 'action' (table expected, got %s)", typename(a)))
  end
  if a.type == nil then raise("bad field 'action.type' ('discrete' or 'box' expected, got nil)") end
  spec.action_kind = optenumfield(a, "type", "discrete", kinds)
  if a.n == nil then raise("bad field 'action.n' (integer expected, got nil)") end
  local an = optintfield(a, "n", 1, 1, MAX_WIDTH)
  spec.action_n = an
  local bounds
  if spec.action_kind == BOX then
    bounds = floats_t(2 * an)
    local hl = floatsfield(a, "low", bounds, 0, an)
    local hh = floatsfield(a, "high", bounds, an, an)
    if hl ~= hh then raise("bad field 'action' (give both low and high, or neither)") end
    if hl then
      spec.low = bounds
      spec.high = bounds + an
      for i = 0, an - 1 do
        local lo, hi = bounds[i], bounds[an + i]
        if not (lo <= hi) then
          raise(format("bad field 'action' (low[%d] <= high[%d] expected)", i + 1, i + 1))
        end
      end
    end
  end
  local out = ffi.new("mrl_policy *[1]")
  local st = C.mrl_policy_new(out, spec)
  if st ~= 0 then raise("cannot create policy: " .. status_string(st)) end
  local h = ffi.gc(out[0], C.mrl_policy_free)
  local width = C.mrl_policy_action_width(h)
  local obs_dim = spec.obs_dim
  local self = {
    h = h, box = box_t(), _kind = tonumber(spec.action_kind), _n = an, _width = width,
    _obs_dim = obs_dim, _out_dim = C.mrl_policy_out_dim(h),
    _nparams = tonumber(C.mrl_policy_nparams(h)),
    _init_log_std = spec.init_log_std, _out_gain = spec.out_gain, _seed = seed,
    -- the single-state path's rows, reused by every act(flat_table)
    obs1 = floats_t(obs_dim), act1 = floats_t(width), logp1 = floats_t(1),
  }
  self.box[0] = h
  self.act = fast_act(obs_dim, self._kind) -- nil: the methods table's
  return setmetatable(self, policy_mt)
end

function P.close(self)
  if getmetatable(self) ~= policy_mt then typeerror("close", 0, "moonrl.Policy", self) end
  local h = self.h
  if h ~= nil then
    self.h = nil
    self.box[0] = nil
    ffi.gc(h, nil)
    C.mrl_policy_free(h)
  end
end

function P.obs_dim(self) checkpolicy(self, "obs_dim") return self._obs_dim end
function P.action_kind(self) checkpolicy(self, "action_kind") return kinds[self._kind + 1] end
function P.action_n(self) checkpolicy(self, "action_n") return self._n end
function P.action_width(self) checkpolicy(self, "action_width") return self._width end
function P.nparams(self) checkpolicy(self, "nparams") return self._nparams end

function P.spec(self)
  local h = checkpolicy(self, "spec")
  local hidden = {}
  for i = 0, C.mrl_policy_nhidden(h) - 1 do hidden[i + 1] = C.mrl_policy_hidden(h, i) end
  local action = {type = kinds[self._kind + 1], n = self._n}
  local low = C.mrl_policy_low(h)
  if self._kind == BOX and low ~= nil then
    action.low = floatarray(low, self._n)
    action.high = floatarray(C.mrl_policy_high(h), self._n)
  end
  return {obs_dim = self._obs_dim, hidden = hidden,
          activation = acts[tonumber(C.mrl_policy_activation(h)) + 1], action = action,
          init_log_std = self._init_log_std, out_gain = self._out_gain, seed = self._seed}
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

local function pushaction(self, a)
  if self._kind == DISCRETE then return a[0] end
  return floatarray(a, self._width)
end

-- The hot path: one state as a flat Lua table of obs_dim numbers, read into
-- the policy's own row; the discrete action comes back as a number.
function P.act(self, obs, det)
  if getmetatable(self) ~= policy_mt then typeerror("act", 0, "moonrl.Policy", self) end
  local h = self.h
  if h == nil then raise(POLICY_CLOSED) end
  local dflag = det and 1 or 0
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
                 "return function(self, obs, det)\n",
                 "  if getmetatable(self) ~= mt then return slow(self, obs, det) end\n",
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

function P.act_into(self, obs, actions, logp, det)
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
  local ad = tdata(actions)
  if logp ~= nil then ld = tdata(logp) end
  local st = C.mrl_policy_act(h, d, rows, det and 1 or 0, ad, ld)
  if st ~= 0 then pfail(self, st) end
end

function P.evaluate(self, obs, actions, params)
  local h = checkpolicy(self, "evaluate")
  local d, rows, batched = checkmat(obs, "evaluate", 1, self._obs_dim, -1)
  local a = checkactions(actions, "evaluate", 2, self._kind, self._n, rows)
  local pp = optparams(self, params, "evaluate", 3)
  if not batched then
    local out = floats_t(2)
    local st = C.mrl_policy_evaluate(h, pp, d, a, 1, out, out + 1)
    if st ~= 0 then pfail(self, st) end
    return out[0], out[1]
  end
  local lp, ent = new1(rows), new1(rows)
  local st = C.mrl_policy_evaluate(h, pp, d, a, rows, lp.d_, ent.d_)
  if st ~= 0 then pfail(self, st) end
  return lp, ent
end

function P.kl(self, po, pn, obs)
  local h = checkpolicy(self, "kl")
  local a = optparams(self, po, "kl", 1)
  local b = optparams(self, pn, "kl", 2)
  local d, rows = checkmat(obs, "kl", 3, self._obs_dim, -1)
  local kl = new1(rows)
  local mean = double1_t()
  local st = C.mrl_policy_kl(h, a, b, d, rows, kl.d_, mean)
  if st ~= 0 then pfail(self, st) end
  return kl, mean[0]
end

function P.grad_weighted_logp(self, obs, actions, weights, scale)
  local fname = "grad_weighted_logp"
  local h = checkpolicy(self, fname)
  local d, rows = checkmat(obs, fname, 1, self._obs_dim, -1)
  local a = checkactions(actions, fname, 2, self._kind, self._n, rows)
  local w = checkvec(weights, fname, 3, rows, false)
  scale = optnumber(fname, 4, scale, 1)
  if not isfinite(scale) then argerror(fname, 4, "finite number expected") end
  local obj = double1_t()
  local st = C.mrl_policy_grad_weighted_logp(h, d, a, w, rows, scale, obj)
  if st ~= 0 then pfail(self, st) end
  return obj[0]
end

local function checktable(v, fname, argn)
  if type(v) ~= "table" or isobj(v) then typeerror(fname, argn, "table", v) end
end

function P.ppo_loss(self, obs, actions, old_logp, adv, opts)
  local fname = "ppo_loss"
  local h = checkpolicy(self, fname)
  local d, rows = checkmat(obs, fname, 1, self._obs_dim, -1)
  local a = checkactions(actions, fname, 2, self._kind, self._n, rows)
  local olp = checkvec(old_logp, fname, 3, rows, false)
  local ad = checkvec(adv, fname, 4, rows, false)
  local o = ffi.new("mrl_ppo_opts")
  o.clip_eps, o.ent_coef, o.normalize_advantages = 0.2, 0, 1
  if opts ~= nil then
    checktable(opts, fname, 5)
    o.clip_eps = optnumfield(opts, "clip_eps", 0.2)
    o.ent_coef = optnumfield(opts, "ent_coef", 0)
    o.normalize_advantages = optboolfield(opts, "normalize_advantages", true) and 1 or 0
  end
  local s = ffi.new("mrl_ppo_stats")
  local st = C.mrl_policy_ppo_loss(h, d, a, olp, ad, rows, o, s)
  if st ~= 0 then pfail(self, st) end
  return {loss = s.loss, policy_loss = s.policy_loss, entropy = s.entropy,
          clip_fraction = s.clip_fraction, approx_kl = s.approx_kl}
end

function P.kl_penalty_loss(self, params_old, obs, actions, old_logp, adv, beta)
  local fname = "kl_penalty_loss"
  local h = checkpolicy(self, fname)
  local po = checkvec(params_old, fname, 1, self._nparams, false)
  local d, rows = checkmat(obs, fname, 2, self._obs_dim, -1)
  local a = checkactions(actions, fname, 3, self._kind, self._n, rows)
  local olp = checkvec(old_logp, fname, 4, rows, false)
  local ad = checkvec(adv, fname, 5, rows, false)
  beta = checknumber(fname, 6, beta)
  if not isfinite(beta) or beta < 0 then argerror(fname, 6, "finite number >= 0 expected") end
  local out = ffi.new("double[2]")
  local st = C.mrl_policy_kl_penalty_loss(h, po, d, a, olp, ad, rows, beta, out, out + 1)
  if st ~= 0 then pfail(self, st) end
  return out[0], out[1]
end

-- (obs, actions|nil) at argn, argn+1 and the Fisher name at farg.
local function fisherargs(self, fname, argn, farg, obs, actions, fisher)
  local f = checkoption(fname, farg, fisher, "analytic", fishers)
  local d, rows = checkmat(obs, fname, argn, self._obs_dim, -1)
  local a = nil
  if actions ~= nil then
    a = checkactions(actions, fname, argn + 1, self._kind, self._n, rows)
  elseif f == 1 then
    argerror(fname, argn + 1, "actions expected for the empirical Fisher")
  end
  return f, d, rows, a
end

local function checkdamping(fname, argn, v)
  local x = checknumber(fname, argn, v)
  if not isfinite(x) or x < 0 then argerror(fname, argn, "finite number >= 0 expected") end
  return x
end

local function checkiters(fname, argn, v)
  local x = checkinteger(fname, argn, v)
  if x < 1 or x > 100000 then argerror(fname, argn, "integer in [1, 100000] expected") end
  return x
end

function P.fvp(self, obs, actions, v, damping, fisher)
  local h = checkpolicy(self, "fvp")
  local f, d, rows, a = fisherargs(self, "fvp", 1, 5, obs, actions, fisher)
  local vv = checkvec(v, "fvp", 3, self._nparams, false)
  local dm = checkdamping("fvp", 4, damping)
  local out = new1(self._nparams)
  local st = C.mrl_policy_fvp(h, f, d, a, rows, vv, dm, out.d_)
  if st ~= 0 then pfail(self, st) end
  return out
end

function P.cg(self, obs, actions, g, damping, iters, fisher)
  local h = checkpolicy(self, "cg")
  local f, d, rows, a = fisherargs(self, "cg", 1, 6, obs, actions, fisher)
  local gg = checkvec(g, "cg", 3, self._nparams, false)
  local dm = checkdamping("cg", 4, damping)
  local it = checkiters("cg", 5, iters)
  local x = new1(self._nparams)
  local xAx = double1_t()
  local st = C.mrl_policy_cg(h, f, d, a, rows, gg, dm, it, x.d_, xAx)
  if st ~= 0 then pfail(self, st) end
  return x, xAx[0]
end

function P.npg_step(self, obs, actions, g, damping, iters, max_kl, fisher)
  local h = checkpolicy(self, "npg_step")
  local f, d, rows, a = fisherargs(self, "npg_step", 1, 7, obs, actions, fisher)
  local gg = checkvec(g, "npg_step", 3, self._nparams, false)
  local dm = checkdamping("npg_step", 4, damping)
  local it = checkiters("npg_step", 5, iters)
  local mk = checknumber("npg_step", 6, max_kl)
  if not isfinite(mk) or mk <= 0 then argerror("npg_step", 6, "finite number > 0 expected") end
  local s = new1(self._nparams)
  local st = C.mrl_policy_npg_step(h, f, d, a, rows, gg, dm, it, mk, s.d_)
  if st ~= 0 then pfail(self, st) end
  return s
end

function P.trpo_step(self, obs, actions, old_logp, adv, opts)
  local fname = "trpo_step"
  local h = checkpolicy(self, fname)
  local d, rows = checkmat(obs, fname, 1, self._obs_dim, -1)
  local a = checkactions(actions, fname, 2, self._kind, self._n, rows)
  local olp = checkvec(old_logp, fname, 3, rows, false)
  local ad = checkvec(adv, fname, 4, rows, false)
  local o = ffi.new("mrl_trpo_opts")
  o.max_kl, o.damping, o.backtrack_coef, o.cg_iters, o.max_backtracks = 0.01, 0.1, 0.8, 10, 10
  if opts ~= nil then
    checktable(opts, fname, 5)
    o.max_kl = optnumfield(opts, "max_kl", 0.01)
    o.damping = optnumfield(opts, "damping", 0.1)
    o.backtrack_coef = optnumfield(opts, "backtrack_coef", 0.8)
    o.cg_iters = optintfield(opts, "cg_iters", 10, 1, 100000)
    o.max_backtracks = optintfield(opts, "max_backtracks", 10, 1, 1000)
  end
  local r = ffi.new("mrl_trpo_result")
  local st = C.mrl_policy_trpo_step(h, d, a, olp, ad, rows, o, r)
  if st ~= 0 then pfail(self, st) end
  return {accepted = r.accepted_j >= 0, accepted_j = r.accepted_j, mean_kl = r.mean_kl,
          improvement = r.improvement, surrogate_before = r.surrogate_before}
end

local estimators = {"reinforce", "reward_to_go", "is_trajectory", "is_per_decision",
                    "is_full", "is_first_order"}
local baselines = {"none", "mean", "optimal", "value"}

function P.pg_gradient(self, obs, actions, rewards, blp, values, offsets, opts)
  local fname = "pg_gradient"
  local h = checkpolicy(self, fname)
  local d, T = checkmat(obs, fname, 1, self._obs_dim, -1)
  local a = checkactions(actions, fname, 2, self._kind, self._n, T)
  local r = checkvec(rewards, fname, 3, T, false)
  local b, v = nil, nil
  if blp ~= nil then b = checkvec(blp, fname, 4, T, false) end
  if values ~= nil then v = checkvec(values, fname, 5, T, false) end
  checktable(offsets, fname, 6)
  local len = #offsets
  if len < 1 or len > T + 1 then
    argerror(fname, 6, format("1 to %d offsets expected, got %d", T + 1, len))
  end
  local off = ints_t(len + 1)
  for i = 0, len - 1 do
    local x = rawget(offsets, i + 1)
    if type(x) ~= "number" or x ~= floor(x) or x < 0 or x > T or (i == 0 and x ~= 0) or
       (i > 0 and x <= off[i - 1]) then
      argerror(fname, 6, format("offset [%d]: strictly increasing integers from 0 to %d expected",
                                i + 1, T))
    end
    off[i] = x
  end
  local nep = len
  if off[len - 1] == T then nep = len - 1 else off[len] = T end
  if nep < 1 then argerror(fname, 6, "at least one episode expected") end
  checktable(opts, fname, 7)
  local o = ffi.new("mrl_pg_opts")
  o.estimator = optenumfield(opts, "estimator", "reinforce", estimators)
  o.baseline = optenumfield(opts, "baseline", "none", baselines)
  o.gamma = optnumfield(opts, "gamma", 0.99)
  o.weight_clip = optnumfield(opts, "weight_clip", 0)
  o.self_normalize = optboolfield(opts, "self_normalize", false) and 1 or 0
  if o.estimator >= 2 and b == nil then
    argerror(fname, 4, format("behavior_logp expected for estimator '%s'",
                              estimators[tonumber(o.estimator) + 1]))
  end
  if o.baseline == 3 and v == nil then argerror(fname, 5, "values expected for baseline 'value'") end
  local g = new1(self._nparams)
  local s = ffi.new("mrl_pg_stats")
  local st = C.mrl_pg_gradient(h, d, a, r, b, v, off, nep, o, g.d_, s)
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
  if not isfinite(tau) or tau <= 0 then argerror(fname, 3, "finite number > 0 expected") end
  local a = new1(rows)
  local obj = double1_t()
  local st = C.mrl_policy_gumbel_grad(h, d, sc, rows, tau, a.d_, obj)
  if st ~= 0 then pfail(self, st) end
  if not batched then return a.d_[0], obj[0] end
  return a, obj[0]
end

-- ---------------------------------------------------------------- Net

local N = {}
local net_mt = newclass("moonrl.Net", N)
local NET_CLOSED = "attempt to use a closed moonrl.Net"

local function checknet(self, fname)
  if getmetatable(self) ~= net_mt then typeerror(fname, 0, "moonrl.Net", self) end
  local h = self.h
  if h == nil then raise(NET_CLOSED) end
  return h
end

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
  if t.in_dim == nil then raise("bad field 'in_dim' (integer expected, got nil)") end
  local in_dim = optintfield(t, "in_dim", 1, 1, MAX_WIDTH)
  local hidden = {64, 64}
  if t.hidden ~= nil then hidden = intarrayfield(t, "hidden", MAX_LAYERS, 1, MAX_WIDTH) end
  local hbuf = ints_t(#hidden > 0 and #hidden or 1)
  for i = 1, #hidden do hbuf[i - 1] = hidden[i] end
  local act = optenumfield(t, "activation", "tanh", acts)
  local out_dim = optintfield(t, "out_dim", 1, 1, MAX_WIDTH)
  local gain = optnumfield(t, "out_gain", 1)
  local seed = optintfield(t, "seed", 0)
  local useed = seed < 0 and ffi.cast("uint64_t", ffi.cast("int64_t", seed)) or seed
  local out = ffi.new("mrl_net *[1]")
  local st = C.mrl_net_new(out, in_dim, #hidden > 0 and hbuf or nil, #hidden, out_dim, act,
                           gain, useed)
  if st ~= 0 then raise("cannot create net: " .. status_string(st)) end
  local h = ffi.gc(out[0], C.mrl_net_free)
  local self = {h = h, box = box_t(), _in_dim = in_dim, _out_dim = out_dim,
                _nparams = tonumber(C.mrl_net_nparams(h)), _last_batch = 0,
                _out_gain = gain, _seed = seed}
  self.box[0] = h
  return setmetatable(self, net_mt)
end

function N.close(self)
  if getmetatable(self) ~= net_mt then typeerror("close", 0, "moonrl.Net", self) end
  local h = self.h
  if h ~= nil then
    self.h = nil
    self.box[0] = nil
    ffi.gc(h, nil)
    C.mrl_net_free(h)
  end
end

function N.in_dim(self) checknet(self, "in_dim") return self._in_dim end
function N.out_dim(self) checknet(self, "out_dim") return self._out_dim end
function N.nparams(self) checknet(self, "nparams") return self._nparams end

function N.spec(self)
  local h = checknet(self, "spec")
  local hidden = {}
  for i = 0, C.mrl_net_nhidden(h) - 1 do hidden[i + 1] = C.mrl_net_hidden(h, i) end
  return {in_dim = self._in_dim, hidden = hidden,
          activation = acts[tonumber(C.mrl_net_activation(h)) + 1], out_dim = self._out_dim,
          out_gain = self._out_gain, seed = self._seed}
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

-- -------------------------------------------------------------- Optim

local O = {}
local optim_mt = newclass("moonrl.Optim", O)
local optkinds = {"adam", "sgd"}

local function checkoptim(self, fname)
  if getmetatable(self) ~= optim_mt then typeerror(fname, 0, "moonrl.Optim", self) end
  local h = self.h
  if h == nil then raise("attempt to use a closed moonrl.Optim") end
  return h
end

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
  local b1 = optnumfield(t, "beta1", kind == 0 and 0.9 or 0)
  local b2 = optnumfield(t, "beta2", 0.999)
  local eps = optnumfield(t, "eps", 1e-8)
  local out = ffi.new("mrl_optim *[1]")
  local st = C.mrl_optim_new(out, kind, n, b1, b2, eps)
  if st ~= 0 then raise("cannot create optimiser: " .. status_string(st)) end
  local h = ffi.gc(out[0], C.mrl_optim_free)
  return setmetatable({h = h, _kind = kind, _n = n}, optim_mt)
end

function O.close(self)
  if getmetatable(self) ~= optim_mt then typeerror("close", 0, "moonrl.Optim", self) end
  local h = self.h
  if h ~= nil then
    self.h = nil
    ffi.gc(h, nil)
    C.mrl_optim_free(h)
  end
end

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
  if not isfinite(lr) then argerror("step", lrarg, "finite number expected") end
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
  for i = 0, T - 1 do
    local x = f[i]
    if x ~= 0 and x ~= 1 then
      argerror(fname, argn, format("boolean or 0/1 expected at [%d]", i + 1))
    end
    u[i] = x
  end
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

local function checkrng(self, fname)
  if getmetatable(self) ~= rng_mt then typeerror(fname, 0, "moonrl.Rng", self) end
  local h = self.h
  if h == nil then raise("attempt to use a closed moonrl.Rng") end
  return h
end

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

function R.close(self)
  if getmetatable(self) ~= rng_mt then typeerror("close", 0, "moonrl.Rng", self) end
  local h = self.h
  if h ~= nil then
    self.h = nil
    ffi.gc(h, nil)
    C.mrl_rng_free(h)
  end
end

-- ----------------------------------------------------------- training

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

-- What the vecenv module (moonrl/core/vecenv.lua) needs from this file.
core._internal = {
  C = C, ffi = ffi, raise = raise, argerror = argerror, typeerror = typeerror,
  typename = typename, newclass = newclass, CLASSNAME = CLASSNAME, isobj = isobj,
  istensor = istensor, tdata = tdata, pushview = pushview, newtensor = newtensor,
  new1 = new1, new2 = new2, checkmat = checkmat, checkvec = checkvec, checknumber = checknumber,
  checkinteger = checkinteger, optintfield = optintfield, optnumfield = optnumfield,
  optboolfield = optboolfield, checkpolicy = checkpolicy, checknet = checknet,
  checkoptim = checkoptim, policy_mt = policy_mt, net_mt = net_mt, optim_mt = optim_mt,
  failwith = failwith, status_string = status_string, checktable = checktable,
  isfinite = isfinite, numstr = numstr, checkactions = checkactions,
}

-- Handles of objects given as arguments (not self), for the functions that
-- take several objects.
local function handle_arg(mt, name, v, fname, argn)
  if getmetatable(v) ~= mt then typeerror(fname, argn, name, v) end
  local h = v.h
  if h == nil then raise("attempt to use a closed " .. name) end
  return h
end
core._internal.checkpolicy_arg = function(v, f, n) return handle_arg(policy_mt, "moonrl.Policy", v, f, n) end
core._internal.checknet_arg = function(v, f, n) return handle_arg(net_mt, "moonrl.Net", v, f, n) end
core._internal.checkoptim_arg = function(v, f, n) return handle_arg(optim_mt, "moonrl.Optim", v, f, n) end

-- ------------------------------------------ checkpoints, state, clock

-- Names sorted, so a file's layout does not depend on hash order.
function core.st_write(path, tensors, metadata)
  local fname = "st_write"
  if type(path) == "number" then path = tostring(path) end
  if type(path) ~= "string" then typeerror(fname, 1, "string", path) end
  checktable(tensors, fname, 2)
  if metadata ~= nil then checktable(metadata, fname, 3) end
  local names, keep = {}, {}
  for k, v in pairs(tensors) do
    if type(k) ~= "string" then argerror(fname, 2, "tensor names must be strings") end
    if not istensor(v) then
      if type(v) ~= "table" or isobj(v) then
        argerror(fname, 2, format("'%s': moonrl.Tensor or table expected, got %s", k, typename(v)))
      end
      v = core.tensor(v)
    end
    keep[k] = v
    names[#names + 1] = k
  end
  table.sort(names)
  local nt = #names
  local ts = ffi.new("mrl_st_tensor[?]", nt + 1)
  for i, k in ipairs(names) do
    local t = keep[k]
    local e = ts[i - 1]
    e.name = k -- the string stays referenced by names
    e.data = tdata(t)
    e.ndim = t.nd_
    for d = 0, t.nd_ - 1 do e.shape[d] = t.sh_[d] end
  end
  local mkeys = {}
  if metadata ~= nil then
    for k, v in pairs(metadata) do
      if type(k) ~= "string" or type(v) ~= "string" then
        argerror(fname, 3, "metadata must map strings to strings")
      end
      mkeys[#mkeys + 1] = k
    end
    table.sort(mkeys)
  end
  local nk = #mkeys
  local keys = ffi.new("const char *[?]", nk + 1)
  local vals = ffi.new("const char *[?]", nk + 1)
  for i, k in ipairs(mkeys) do
    keys[i - 1] = k
    vals[i - 1] = metadata[k]
  end
  local err = ffi.new("char[256]")
  local st = C.mrl_st_write(path, ts, nt, keys, vals, nk, err, 256)
  if st ~= 0 then
    local msg = ffi.string(err)
    return nil, msg ~= "" and msg or status_string(st)
  end
  return true
end

function core.st_read(path)
  if type(path) == "number" then path = tostring(path) end
  if type(path) ~= "string" then typeerror("st_read", 1, "string", path) end
  local err = ffi.new("char[256]")
  local out = ffi.new("mrl_st_file *[1]")
  local st = C.mrl_st_open(out, path, err, 256)
  if st ~= 0 then
    local msg = ffi.string(err)
    return nil, msg ~= "" and msg or status_string(st)
  end
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
    local nd = C.mrl_st_ndim(f, i)
    if nd > MAXDIM then
      return done(nil, format("%s: tensor '%s' has %d dimensions (at most %d supported)",
                              path, name, nd, MAXDIM))
    end
    local numel = tonumber(C.mrl_st_numel(f, i))
    if numel < 1 then return done(nil, format("%s: tensor '%s' is empty", path, name)) end
    local shape = {}
    if nd == 0 then
      nd, shape[1] = 1, 1 -- a scalar becomes a 1-element vector
    else
      for d = 0, nd - 1 do
        local dim = tonumber(C.mrl_st_dim(f, i, d))
        if dim < 1 or dim > MAX_BATCH then
          return done(nil, format("%s: tensor '%s' has a bad dimension", path, name))
        end
        shape[d + 1] = dim
      end
    end
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

do
  -- CLOCK_MONOTONIC through libc; os.clock (CPU time) where that fails
  local ok = pcall(ffi.cdef, [[
    typedef struct mrl_lj_timespec { long tv_sec; long tv_nsec; } mrl_lj_timespec;
    int clock_gettime(int clk, mrl_lj_timespec *ts);
  ]])
  local ts = ok and ffi.new("mrl_lj_timespec")
  local CLOCK_MONOTONIC = ffi.os == "OSX" and 6 or 1
  if ok and pcall(function() return ffi.C.clock_gettime end) and ffi.os ~= "Windows" then
    local clock_gettime = ffi.C.clock_gettime
    function core.now()
      clock_gettime(CLOCK_MONOTONIC, ts)
      return tonumber(ts.tv_sec) + 1e-9 * tonumber(ts.tv_nsec)
    end
  else
    core.now = os.clock
  end
end

local RNG_STATE_BYTES = 48

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
  local h = core._internal.checkoptim_arg(o, "optim_state", 1)
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
  local h = core._internal.checkoptim_arg(o, "set_optim_state", 1)
  checktable(t, "set_optim_state", 2)
  local n = tonumber(C.mrl_optim_nparams(h))
  local steps = optintfield(t, "steps", -1, 0, 2 ^ 53)
  if steps < 0 then raise("bad field 'steps' (integer >= 0 expected)") end
  local names, src = {"m", "v"}, {}
  for w = 0, 1 do
    if C.mrl_optim_moment(h, w) ~= nil then
      local v = t[names[w + 1]]
      if v == nil then
        raise(format("bad field '%s' (a vector of %d numbers expected, got nil)", names[w + 1], n))
      end
      src[w] = checkvec(v, "set_optim_state", 2, n, false)
    end
  end
  -- every check passed: now change the optimiser
  for w = 0, 1 do
    if src[w] ~= nil then ffi.copy(C.mrl_optim_moment(h, w), src[w], n * 4) end
  end
  C.mrl_optim_set_steps(h, steps)
end

-- core.vecenv / core.rollout / core.ppo_update live in moonrl/core/vecenv.lua
-- (environments stepped in this Lua state; see there).
do
  local ok, err = pcall(require, "moonrl.core.vecenv")
  if ok and type(err) == "function" then
    err(core)
  elseif not ok and not tostring(err):find("module 'moonrl.core.vecenv' not found", 1, true) then
    error(err, 0)
  end
end

debug.getregistry()[REGKEY] = core
return core
