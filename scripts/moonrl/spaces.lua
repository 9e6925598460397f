-- moonrl.spaces: the two kinds of space an env declares, as plain tables.
--
--   {type = "discrete", n = K}                     actions 0 .. K-1
--   {type = "box", shape = {d1, ...}, low = {...}, high = {...}}
--                                                  flat arrays of prod(shape) numbers
--
--   spaces.discrete(n)                  -> space
--   spaces.box(shape, low, high)        -> space; shape a number or a list,
--                                          low/high a number (broadcast) or a list
--   spaces.validate(space)              -> true | false, message
--   spaces.flat_size(space)             -> numbers in a flat element (1 for discrete)
--   spaces.contains(space, x)           -> boolean
--   spaces.sample(space, rng)           -> element (rng: moonrl.envs.rng generator)
--   spaces.describe(space)              -> "Discrete(2)", "Box(-2, 2, (1,))", ...
--
-- Written in the common subset of Lua 5.1/LuaJIT and 5.4.

local spaces = {}

local floor = math.floor
local huge = math.huge

local function is_int(x)
  return type(x) == "number" and x == floor(x) and x > -huge and x < huge
end

local function prod(shape)
  local n = 1
  for i = 1, #shape do n = n * shape[i] end
  return n
end

function spaces.discrete(n)
  if not is_int(n) or n < 1 then
    error("spaces.discrete: n must be a positive integer, got " .. tostring(n), 2)
  end
  return {type = "discrete", n = n}
end

function spaces.box(shape, low, high)
  if type(shape) == "number" then shape = {shape} end
  if type(shape) ~= "table" then
    error("spaces.box: shape must be a number or a list of numbers, got " .. type(shape), 2)
  end
  for i = 1, #shape do
    if not is_int(shape[i]) or shape[i] < 1 then
      error("spaces.box: shape[" .. i .. "] must be a positive integer, got " .. tostring(shape[i]), 2)
    end
  end
  local n = prod(shape)
  local function fill(v, name, default)
    if v == nil then v = default end
    if type(v) == "number" then
      local t = {}
      for i = 1, n do t[i] = v end
      return t
    end
    if type(v) ~= "table" or #v ~= n then
      error("spaces.box: " .. name .. " must be a number or a list of " .. n .. " numbers", 3)
    end
    local t = {}
    for i = 1, n do t[i] = v[i] end
    return t
  end
  local sh = {}
  for i = 1, #shape do sh[i] = shape[i] end
  local s = {type = "box", shape = sh, low = fill(low, "low", -huge), high = fill(high, "high", huge)}
  local ok, err = spaces.validate(s)
  if not ok then error("spaces.box: " .. err, 2) end
  return s
end

-- true, or false and what is wrong ("must be ..."), for use after a name.
function spaces.validate(s)
  if type(s) ~= "table" then return false, "must be a table, got " .. type(s) end
  if s.type == "discrete" then
    if not is_int(s.n) or s.n < 1 then
      return false, "(discrete) needs n, a positive integer, got " .. tostring(s.n)
    end
    return true
  elseif s.type == "box" then
    local shape = s.shape
    if type(shape) ~= "table" or #shape < 1 then
      return false, "(box) needs shape, a non-empty list of positive integers"
    end
    for i = 1, #shape do
      if not is_int(shape[i]) or shape[i] < 1 then
        return false, "(box) shape[" .. i .. "] must be a positive integer, got " .. tostring(shape[i])
      end
    end
    local n = prod(shape)
    for _, name in ipairs({"low", "high"}) do
      local b = s[name]
      if type(b) ~= "table" or #b ~= n then
        return false, "(box) needs " .. name .. ", a list of " .. n .. " numbers"
      end
      for i = 1, n do
        if type(b[i]) ~= "number" or b[i] ~= b[i] then
          return false, "(box) " .. name .. "[" .. i .. "] must be a number, got " .. tostring(b[i])
        end
      end
    end
    for i = 1, n do
      if s.low[i] > s.high[i] then
        return false, "(box) low[" .. i .. "] = " .. s.low[i] .. " exceeds high[" .. i .. "] = " .. s.high[i]
      end
    end
    return true
  end
  return false, "must have type \"discrete\" or \"box\", got " .. tostring(s.type)
end

function spaces.flat_size(s)
  if s.type == "discrete" then return 1 end
  return prod(s.shape)
end

-- A discrete element is an integer-valued number in [0, n); a box element
-- a flat array of numbers within [low, high] (a plain number for a
-- one-element box).
function spaces.contains(s, x)
  if s.type == "discrete" then
    return is_int(x) and x >= 0 and x < s.n
  end
  local n = prod(s.shape)
  if type(x) == "number" then
    if n ~= 1 then return false end
    x = {x}
  end
  if type(x) ~= "table" or #x ~= n then return false end
  for i = 1, n do
    local v = x[i]
    if type(v) ~= "number" or v ~= v or v < s.low[i] or v > s.high[i] then return false end
  end
  return true
end

-- Like Gymnasium: uniform on a bounded interval, exponential on a
-- half-bounded one, normal on an unbounded one.
function spaces.sample(s, rng)
  if s.type == "discrete" then return rng:integer(s.n) end
  local out = {}
  for i = 1, prod(s.shape) do
    local lo, hi = s.low[i], s.high[i]
    local blo, bhi = lo > -huge, hi < huge
    if blo and bhi then
      out[i] = rng:uniform(lo, hi)
    elseif blo then
      out[i] = lo - math.log(1.0 - rng:random())
    elseif bhi then
      out[i] = hi + math.log(1.0 - rng:random())
    else
      out[i] = rng:normal()
    end
  end
  return out
end

local function fmt(v)
  if v == huge then return "inf" elseif v == -huge then return "-inf" end
  return string.format("%.6g", v)
end

local function uniform_or_list(t)
  for i = 2, #t do
    if t[i] ~= t[1] then
      local parts = {}
      for j = 1, #t do parts[j] = fmt(t[j]) end
      return "[" .. table.concat(parts, ", ") .. "]"
    end
  end
  return fmt(t[1])
end

function spaces.describe(s)
  local ok, err = spaces.validate(s)
  if not ok then return "InvalidSpace(" .. err .. ")" end
  if s.type == "discrete" then return "Discrete(" .. s.n .. ")" end
  local dims = {}
  for i = 1, #s.shape do dims[i] = string.format("%d", s.shape[i]) end
  return "Box(" .. uniform_or_list(s.low) .. ", " .. uniform_or_list(s.high) .. ", ("
    .. table.concat(dims, ", ") .. (#dims == 1 and ",))" or "))")
end

return spaces
