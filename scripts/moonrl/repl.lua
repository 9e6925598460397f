-- moonrl.repl — the Lua half of the `moonrl` REPL (bindings/host/repl.c is
-- the other): how results print, what Tab offers, and the `help` global.
--
--   repl.show(...)        -> text of the values, as the REPL prints them
--   repl.render(v)        -> one value pretty-printed (strings quoted)
--   repl.complete(text)   -> sorted words that may replace `text`
--                            ("rl.pol" -> {"rl.policy"}, "p:ac" -> {"p:act", "p:act_into"})
--   repl.install(env)     -> sets env.help (default _G) unless already set
--
-- Written in the common subset of Lua 5.1/LuaJIT and 5.4, and it never
-- requires moonrl.core itself: objects are known by their metatable's
-- __name, so the printer also works on plain Lua.

local M = {}

local WIDTH = 78      -- a table longer than this on one line is split
local MAXDEPTH = 4    -- deeper tables print as {…}
local MAXITEMS = 64   -- entries shown per table
local TENSOR_VALUES = 8

local format, rep, concat = string.format, string.rep, table.concat
local floor, huge = math.floor, math.huge
local mathtype = math.type -- nil on LuaJIT

-- ---------------------------------------------------------------- scalars

local function fmtnum(v)
  if v ~= v then return "nan" end
  if v == huge then return "inf" end
  if v == -huge then return "-inf" end
  if mathtype and mathtype(v) == "integer" then return format("%d", v) end
  -- an integral float (every number on LuaJIT) prints whole: step counts
  -- like 100000 must not become 1e+05
  if v == floor(v) and v > -1e15 and v < 1e15 then return format("%.0f", v) end
  return format("%.6g", v)
end
M.fmtnum = fmtnum

local function quote(s)
  return (format("%q", s):gsub("\\\n", "\\n"))
end

-- The metatable's __name ("moonrl.Policy"), or nil.
local function typename(v)
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return nil end
  local n = rawget(mt, "__name")
  return type(n) == "string" and n or nil
end
M.typename = typename

local function call(f, ...)
  local ok, a, b = pcall(f, ...)
  if ok then return a, b end
  return nil
end

-- ------------------------------------------------------- moonrl objects

local function layers(first, hidden, activation)
  local parts = {tostring(first)}
  for i = 1, #(hidden or {}) do
    parts[#parts + 1] = activation .. " " .. tostring(hidden[i])
  end
  return parts
end

local function allsame(t)
  for i = 2, #t do
    if t[i] ~= t[1] then return false end
  end
  return true
end

local function listnums(t)
  local out = {}
  for i = 1, #t do out[i] = fmtnum(t[i]) end
  return "{" .. concat(out, ", ") .. "}"
end

local function actiondesc(a)
  if a.type == "discrete" then return "discrete(" .. fmtnum(a.n) .. ")" end
  if a.type == "multi_discrete" then return "multi_discrete" .. listnums(a.nvec or {}) end
  if a.type == "multi_binary" then return "multi_binary(" .. fmtnum(a.n) .. ")" end
  if a.type == "hybrid" then
    local parts = {}
    for i, p in ipairs(a.parts or {}) do parts[i] = actiondesc(p) end
    return "hybrid{" .. concat(parts, ", ") .. "}"
  end
  local s = "box(" .. fmtnum(a.n)
  if type(a.low) == "table" and type(a.high) == "table" and #a.low > 0 then
    if allsame(a.low) and allsame(a.high) then
      s = s .. ", [" .. fmtnum(a.low[1]) .. ", " .. fmtnum(a.high[1]) .. "]"
    else
      s = s .. ", low " .. listnums(a.low) .. ", high " .. listnums(a.high)
    end
  end
  return s .. ")"
end

local function nparams(o)
  local n = call(function() return o:nparams() end)
  return n and (fmtnum(n) .. " params") or "? params"
end

local function describe_policy(p)
  local s = call(function() return p:spec() end)
  if type(s) ~= "table" then return nil end
  local obs = "obs " .. fmtnum(s.obs_dim)
  if type(s.obs_shape) == "table" and #s.obs_shape == 3 then
    -- a grid through Conv2d layers: each as filters, kernel and stride
    local conv = {}
    for i, c in ipairs(s.conv or {}) do
      conv[i] = ("conv %d k%d s%d"):format(c.out, c.kernel, c.stride or 1) ..
                ((c.padding or 0) > 0 and (" p" .. c.padding) or "")
    end
    obs = "obs " .. concat(s.obs_shape, "x") .. (#conv > 0 and (" → " .. concat(conv, " → ")) or "")
  end
  local parts = layers(obs, s.hidden, s.activation)
  parts[#parts + 1] = actiondesc(s.action)
  return "moonrl.Policy " .. concat(parts, " → ") .. ", " .. nparams(p)
end

local function describe_net(n)
  local s = call(function() return n:spec() end)
  if type(s) ~= "table" then return nil end
  local parts = layers(fmtnum(s.in_dim), s.hidden, s.activation)
  parts[#parts + 1] = fmtnum(s.out_dim)
  return "moonrl.Net " .. concat(parts, " → ") .. ", " .. nparams(n)
end

local function describe_tensor(t)
  local shape = call(function() return t:shape() end)
  local numel = call(function() return t:numel() end)
  if type(shape) ~= "table" or not numel then return nil end
  local dims = {}
  for i = 1, #shape do dims[i] = "[" .. fmtnum(shape[i]) .. "]" end
  local flat = numel > 0 and call(function() return t:reshape(numel) end)
  local vals = {}
  if flat then
    for i = 1, math.min(numel, TENSOR_VALUES) do
      local x = call(function() return flat[i] end)
      vals[i] = x and fmtnum(x) or "?"
    end
  end
  local s = "moonrl.Tensor " .. concat(dims) .. " {" .. concat(vals, ", ")
  if numel > TENSOR_VALUES then
    s = s .. ", … (" .. fmtnum(numel) .. " values)"
  end
  return s .. "}"
end

-- A trainer (moonrl.trainer's objects: tables whose class has learn) is
-- summed up instead of dumped: it holds envs, buffers and the whole config.
local function describe_trainer(t)
  local mt = getmetatable(t)
  if type(mt) ~= "table" or rawget(t, "policy") == nil then return nil end
  local learn = call(function() return t.learn end)
  if type(learn) ~= "function" then return nil end
  local name = call(function() return t.name end)
  local parts = {}
  local pol = rawget(t, "policy")
  local d = describe_policy(pol)
  parts[#parts + 1] = d and d:gsub("^moonrl%.Policy ", "policy ") or tostring(pol)
  local steps, updates = rawget(t, "steps_done"), rawget(t, "updates")
  if type(steps) == "number" then parts[#parts + 1] = fmtnum(steps) .. " steps" end
  if type(updates) == "number" then parts[#parts + 1] = fmtnum(updates) .. " updates" end
  return "moonrl trainer " .. (type(name) == "string" and name or "?") .. ": "
         .. concat(parts, ", ")
end

local describers = {
  ["moonrl.Policy"] = describe_policy,
  ["moonrl.Net"] = describe_net,
  ["moonrl.Tensor"] = describe_tensor,
}

-- The name help knows a function by ("rl.policy"), if any.
local function funcname(f)
  local ok, help = pcall(require, "moonrl.help")
  if not ok or type(help) ~= "table" or not help.nameof then return nil end
  return help.nameof(f)
end

-- A value that is not a plain table, on one line.
local function describe(v)
  local t = type(v)
  if t == "number" then return fmtnum(v) end
  if t == "string" then return quote(v) end
  if t == "function" then
    local name = funcname(v)
    return name and (tostring(v) .. " (" .. name .. ")") or tostring(v)
  end
  local d = describers[typename(v) or ""]
  local s = d and d(v)
  if s then return s end
  local ok, str = pcall(tostring, v)
  return ok and tostring(str) or "?"
end
M.describe = describe

-- ---------------------------------------------------------------- tables

local function isident(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local typeorder = {number = 1, string = 2, boolean = 3}
local function keyless(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (typeorder[ta] or 9) < (typeorder[tb] or 9) end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- n: the length of the array part 1..n that is all non-nil (raw).
local function arraylen(t)
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  return n
end

local render

local function renderkey(k, ctx, indent, depth)
  if isident(k) then return k end
  return "[" .. render(k, ctx, indent, depth) .. "]"
end

local function hastostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__tostring") ~= nil
end

-- Packs short scalar items several to a line (long arrays of numbers).
local function packlines(items, indent)
  local lines, line = {}, nil
  local pad = rep(" ", indent + 2)
  for i = 1, #items do
    local item = items[i] .. ","
    if line and #line + 1 + #item <= WIDTH then
      line = line .. " " .. item
    else
      if line then lines[#lines + 1] = line end
      line = pad .. item
    end
  end
  if line then lines[#lines + 1] = line end
  return "{\n" .. concat(lines, "\n") .. "\n" .. rep(" ", indent) .. "}"
end

function render(v, ctx, indent, depth)
  if type(v) ~= "table" then return describe(v) end
  local tr = getmetatable(v) ~= nil and describe_trainer(v)
  if tr then return tr end
  if hastostring(v) then return describe(v) end
  if ctx.path[v] then return "<cycle: " .. tostring(v) .. ">" end
  if depth >= MAXDEPTH then return "{…}" end
  ctx.path[v] = true
  local n = arraylen(v)
  local keys = {}
  for k in next, v do
    if not (type(k) == "number" and k >= 1 and k <= n and k == floor(k)) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, keyless)
  local items, multi, scalars = {}, false, true
  local total = n + #keys
  for i = 1, math.min(n, MAXITEMS) do
    local s = render(rawget(v, i), ctx, indent + 2, depth + 1)
    items[#items + 1] = s
    if s:find("\n") then multi = true end
    if type(rawget(v, i)) == "table" then scalars = false end
  end
  for i = 1, math.min(#keys, MAXITEMS - #items) do
    local k = keys[i]
    local s = renderkey(k, ctx, indent + 2, depth + 1) .. " = "
              .. render(rawget(v, k), ctx, indent + 2, depth + 1)
    items[#items + 1] = s
    if s:find("\n") then multi = true end
    scalars = false
  end
  if total > #items then items[#items + 1] = "… (" .. (total - #items) .. " more)" end
  ctx.path[v] = nil
  if #items == 0 then return "{}" end
  local inline = "{" .. concat(items, ", ") .. "}"
  if not multi and indent + #inline <= WIDTH then return inline end
  if scalars and not multi then return packlines(items, indent) end
  local pad = rep(" ", indent + 2)
  return "{\n" .. pad .. concat(items, ",\n" .. pad) .. ",\n" .. rep(" ", indent) .. "}"
end

function M.render(v)
  return render(v, {path = {}}, 0, 0)
end

-- A flat table of numbers under string keys (training statistics) prints
-- as two aligned columns, keys sorted.
local function isstats(t)
  if getmetatable(t) ~= nil or rawget(t, 1) ~= nil then return false end
  local count = 0
  for k, v in next, t do
    if type(k) ~= "string" then return false end
    local tv = type(v)
    if tv ~= "number" and tv ~= "boolean" then return false end
    count = count + 1
  end
  return count >= 2
end

local function stats(t)
  local keys, w = {}, 0
  for k in next, t do
    keys[#keys + 1] = k
    if #k > w then w = #k end
  end
  table.sort(keys)
  local lines = {}
  for i, k in ipairs(keys) do
    local v = t[k]
    lines[i] = k .. rep(" ", w - #k + 2) .. (type(v) == "number" and fmtnum(v) or tostring(v))
  end
  return concat(lines, "\n")
end

-- The REPL's printout of a chunk's results: strings raw (as print does),
-- one value per line once any of them takes several lines, else tabs.
function M.show(...)
  local n = select("#", ...)
  local out, multi = {}, false
  for i = 1, n do
    local v = select(i, ...)
    local s
    if type(v) == "string" then
      s = v
    elseif type(v) == "table" and isstats(v) then
      s = stats(v)
    else
      s = M.render(v)
    end
    if s:find("\n") then multi = true end
    out[i] = s
  end
  return concat(out, multi and "\n" or "\t")
end

-- ------------------------------------------------------------ completion

local keywords = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function",
  "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then",
  "true", "until", "while",
}

-- Modules rl loads on first use (see moonrl/init.lua): offered after `rl.`
-- if they exist, without loading them.
local lazy = {
  "envs", "wrap", "spaces", "json", "log", "plot", "schedule", "vec", "make",
  "ppo", "trpo", "npg", "reinforce", "offpolicy", "trainer", "checkpoint",
  "buffer", "train", "help", "repl",
}

local function module_exists(name)
  if package.loaded[name] ~= nil or package.preload[name] ~= nil then return true end
  local search = package.searchpath
  return search ~= nil and search(name, package.path) ~= nil
end

local function rawindex(obj, k)
  local ok, v = pcall(function() return obj[k] end)
  if ok then return v end
  return nil
end

-- Keys of a table and of the tables its __index chain leads to; for other
-- values, the class methods their metatable exposes (__methods, as the
-- core's classes keep them, or an __index table: strings, Lua classes).
local function fields(obj, methods_only, out, seen)
  seen = seen or {}
  if obj == nil or seen[obj] then return out end
  local tobj = type(obj)
  if tobj == "table" then
    seen[obj] = true
    for k, v in next, obj do
      if isident(k) and (not methods_only or type(v) == "function" or
                         (type(v) == "table" and getmetatable(v) and
                          rawget(getmetatable(v), "__call"))) then
        out[k] = true
      end
    end
  end
  local mt = getmetatable(obj)
  if type(mt) == "table" and not seen[mt] then
    seen[mt] = true
    local methods = rawget(mt, "__methods")
    local index = rawget(mt, "__index")
    if type(methods) == "table" then fields(methods, methods_only, out, seen) end
    if type(index) == "table" then fields(index, methods_only, out, seen) end
  end
  local rl = package.loaded.moonrl
  if obj == rl and rl ~= nil then
    for _, k in ipairs(lazy) do
      if rawget(rl, k) == nil and (module_exists("moonrl." .. k) or
                                   (k == "make" and module_exists("moonrl.envs"))) then
        out[k] = true
      end
    end
  end
  return out
end

local function sorted(set, prefix, part)
  local out = {}
  for k in pairs(set) do
    if k:sub(1, #part) == part then out[#out + 1] = prefix .. k end
  end
  table.sort(out)
  return out
end

-- text: the word before the cursor — `name`, `a.b.c.part` or `a.b:part`.
function M.complete(text)
  local head, sep, part = text:match("^(.-)([%.:])([%a_]?[%w_]*)$")
  if not head then
    if not text:match("^[%a_]?[%w_]*$") then return {} end
    local set = fields(_G, false, {})
    for _, k in ipairs(keywords) do set[k] = true end
    return sorted(set, "", text)
  end
  if head == "" then return {} end
  local obj
  for name, dot in (head .. "."):gmatch("([^%.:]*)([%.:])") do
    if dot ~= "." or not isident(name) then return {} end -- `a:b.c` is not a path
    if obj == nil then obj = rawindex(_G, name) else obj = rawindex(obj, name) end
    if obj == nil then return {} end
  end
  local t = type(obj)
  if t ~= "table" and t ~= "userdata" and t ~= "cdata" and t ~= "string" then return {} end
  return sorted(fields(obj, sep == ":", {}), head .. sep, part)
end

-- ---------------------------------------------------------------- install

function M.install(env)
  env = env or _G
  if rawget(env, "help") == nil then
    local ok, help = pcall(require, "moonrl.help")
    if ok and type(help) == "table" then env.help = help.help end
  end
end

return M
