-- moonrl.core for LuaJIT: the interface of docs/CORE_API.md over
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
-- This file loads the library and its declarations and assembles the module
-- from the parts in moonrl/core/ (PARTS below), one per file of the Lua 5.4
-- module: util.lua <-> l_util.c, tensor.lua <-> l_tensor.c, and so on.
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

local type, tostring, error = type, tostring, error
local format, concat = string.format, table.concat

local EXPECTED_ABI = 4

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


-- What the parts share (their internal helpers, each added by the part that
-- defines it) and what the vecenv part reads as core._internal.
local I = {C = C, ffi = ffi, LIBPATH = LIBPATH, memmove = memmove, SRC_PREFIX = SRC_PREFIX,
           HERE = HERE, ROOT = ROOT, EXPECTED_ABI = EXPECTED_ABI}

local core = {version = "0.1.0", abi = EXPECTED_ABI, binding = "luajit", _internal = I}

-- The parts, one per file of bindings/lua54 (util <-> l_util.c, ...), in
-- dependency order: each is moonrl/core/<name>.lua returning
-- function(core, I), which adds its functions to core and the helpers later
-- parts use to I.  A new part is a new file plus its name here.
local PARTS = {"util", "tensor", "policy", "net", "optim", "funcs", "train", "ppo", "st", "norm", "bgtrain"}
for i = 1, #PARTS do
  require("moonrl.core." .. PARTS[i])(core, I)
end

-- core.vecenv / core.rollout live in moonrl/core/vecenv.lua
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
