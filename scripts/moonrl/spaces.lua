-- moonrl.spaces: the kinds of space an env declares, as plain tables.
--
--   {type = "discrete", n = K}                     actions 0 .. K-1
--   {type = "box", shape = {d1, ...}, low = {...}, high = {...}}
--                                                  flat arrays of prod(shape) numbers
--                                                  (a grid {C, H, W}: C-major,
--                                                  entry (c, y, x) at (c*H + y)*W + x + 1)
--   {type = "multi_discrete", nvec = {n1, n2, ...}}
--                                                  a list of integers, entry j in 0 .. nj-1
--   {type = "multi_binary", n = K}                 a list of K values 0/1
--   {type = "hybrid", parts = {P1, P2, ...}}       a flat list: per part in order, an
--                                                  integer (a discrete part) or the
--                                                  numbers of a 1-D box part
--   {type = "dict", parts = {name = box, ...}}     a table of named box elements;
--                                                  flattened in sorted name order
--                                                  (Gymnasium's Dict orders keys so)
--
--   spaces.discrete(n), spaces.box(shape, low, high), spaces.multi_discrete(nvec),
--   spaces.multi_binary(n), spaces.hybrid(parts), spaces.dict(parts) -> space
--                                          (box: shape a number or a list,
--                                          low/high a number (broadcast) or a list)
--   spaces.validate(space)              -> true | false, message
--   spaces.flat_size(space)             -> numbers in a flat element (1 for discrete)
--   spaces.mask_size(space)             -> entries of an action mask (discrete,
--                                          multi_discrete), nil when masks do not apply
--   spaces.layout(space)                -> dict: {{name, offset, size}, ...} in
--                                          flattening order (offsets from 0)
--   spaces.flatten(space, x [, out])    -> the flat array of element x
--   spaces.contains(space, x)           -> boolean
--   spaces.sample(space, rng)           -> element (rng: moonrl.envs.rng generator)
--   spaces.describe(space)              -> "Discrete(2)", "Box(-2, 2, (1,))", ...
--   spaces.policy_action(space)         -> the `action` of core.policy for an action
--                                          space (or rl.discrete / rl.box's tables)
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

local function check_new(s, who)
  local ok, err = spaces.validate(s)
  if not ok then error("spaces." .. who .. ": " .. err, 3) end
  return s
end

function spaces.multi_discrete(nvec)
  if type(nvec) ~= "table" then
    error("spaces.multi_discrete: nvec must be a list of positive integers, got " .. type(nvec), 2)
  end
  local t = {}
  for i = 1, #nvec do t[i] = nvec[i] end
  return check_new({type = "multi_discrete", nvec = t}, "multi_discrete")
end

function spaces.multi_binary(n)
  return check_new({type = "multi_binary", n = n}, "multi_binary")
end

function spaces.hybrid(parts)
  if type(parts) ~= "table" then
    error("spaces.hybrid: parts must be a list of discrete and box spaces, got " .. type(parts), 2)
  end
  local t = {}
  for i = 1, #parts do t[i] = parts[i] end
  return check_new({type = "hybrid", parts = t}, "hybrid")
end

function spaces.dict(parts)
  if type(parts) ~= "table" then
    error("spaces.dict: parts must be a table of named box spaces, got " .. type(parts), 2)
  end
  local t = {}
  for k, v in pairs(parts) do t[k] = v end
  return check_new({type = "dict", parts = t}, "dict")
end

-- The names of a dict's parts in flattening order.
local function sorted_names(parts)
  local names = {}
  for k in pairs(parts) do names[#names + 1] = k end
  table.sort(names)
  return names
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
  elseif s.type == "multi_discrete" then
    local nvec = s.nvec
    if type(nvec) ~= "table" or #nvec < 1 then
      return false, "(multi_discrete) needs nvec, a non-empty list of positive integers"
    end
    for i = 1, #nvec do
      if not is_int(nvec[i]) or nvec[i] < 1 then
        return false, "(multi_discrete) nvec[" .. i .. "] must be a positive integer, got " .. tostring(nvec[i])
      end
    end
    return true
  elseif s.type == "multi_binary" then
    if not is_int(s.n) or s.n < 1 then
      return false, "(multi_binary) needs n, a positive integer, got " .. tostring(s.n)
    end
    return true
  elseif s.type == "hybrid" then
    local parts = s.parts
    if type(parts) ~= "table" or #parts < 1 then
      return false, "(hybrid) needs parts, a non-empty list of discrete and box spaces"
    end
    for i = 1, #parts do
      local p = parts[i]
      local ok, err = spaces.validate(p)
      if not ok then return false, "(hybrid) parts[" .. i .. "] " .. err end
      if p.type == "box" and #p.shape ~= 1 then
        return false, "(hybrid) parts[" .. i .. "] must be a 1-D box, got " .. #p.shape .. " dimensions"
      elseif p.type ~= "box" and p.type ~= "discrete" then
        return false, "(hybrid) parts[" .. i .. "] must be a discrete or a box space, got " .. p.type
      end
    end
    return true
  elseif s.type == "dict" then
    if type(s.parts) ~= "table" then
      return false, "(dict) needs parts, a table of named box spaces"
    end
    local names = {}
    for k in pairs(s.parts) do
      if type(k) ~= "string" then
        return false, "(dict) part names must be strings, got a " .. type(k)
      end
      names[#names + 1] = k
    end
    if #names == 0 then return false, "(dict) needs at least one part" end
    table.sort(names)
    for _, k in ipairs(names) do
      local p = s.parts[k]
      local ok, err = spaces.validate(p)
      if not ok then return false, "(dict) part '" .. k .. "' " .. err end
      if p.type ~= "box" then
        return false, "(dict) part '" .. k .. "' must be a box, got " .. p.type
      end
    end
    return true
  end
  return false, "must have type \"discrete\", \"box\", \"multi_discrete\", \"multi_binary\", " ..
    "\"hybrid\" or \"dict\", got " .. tostring(s.type)
end

function spaces.flat_size(s)
  local t = s.type
  if t == "discrete" then return 1 end
  if t == "multi_discrete" then return #s.nvec end
  if t == "multi_binary" then return s.n end
  if t == "hybrid" or t == "dict" then
    local n = 0
    for _, p in pairs(s.parts) do n = n + spaces.flat_size(p) end
    return n
  end
  return prod(s.shape)
end

function spaces.mask_size(s)
  if s.type == "discrete" then return s.n end
  if s.type == "multi_discrete" then
    local n = 0
    for i = 1, #s.nvec do n = n + s.nvec[i] end
    return n
  end
  return nil
end

function spaces.layout(s)
  if s.type ~= "dict" then error("spaces.layout: a dict space expected, got " .. tostring(s.type), 2) end
  local out, offset = {}, 0
  for _, k in ipairs(sorted_names(s.parts)) do
    local n = spaces.flat_size(s.parts[k])
    out[#out + 1] = {name = k, offset = offset, size = n}
    offset = offset + n
  end
  return out
end

-- The flat array of a dict element (the parts' numbers in layout order);
-- any other element is returned as it is (a number becomes {x}).  Errors
-- name the part that is missing or has the wrong length.
function spaces.flatten(s, x, out)
  if s.type ~= "dict" then
    if type(x) == "number" then return {x} end
    return x
  end
  if type(x) ~= "table" then
    error("spaces.flatten: a dict element must be a table, got " .. type(x), 2)
  end
  out = out or {}
  local j = 0
  for _, k in ipairs(sorted_names(s.parts)) do
    local v, n = x[k], spaces.flat_size(s.parts[k])
    if type(v) == "number" and n == 1 then v = {v} end
    if type(v) ~= "table" or #v ~= n then
      error("spaces.flatten: part '" .. k .. "' must be " .. n .. " numbers, got " ..
            (type(v) == "table" and #v .. " numbers" or type(v)), 2)
    end
    for i = 1, n do out[j + i] = v[i] end
    j = j + n
  end
  for i = #out, j + 1, -1 do out[i] = nil end
  return out
end

-- A discrete element is an integer-valued number in [0, n); a box element
-- a flat array of numbers within [low, high] (a plain number for a
-- one-element box).
function spaces.contains(s, x)
  local t = s.type
  if t == "discrete" then
    return is_int(x) and x >= 0 and x < s.n
  elseif t == "multi_discrete" then
    if type(x) ~= "table" or #x ~= #s.nvec then return false end
    for i = 1, #s.nvec do
      if not (is_int(x[i]) and x[i] >= 0 and x[i] < s.nvec[i]) then return false end
    end
    return true
  elseif t == "multi_binary" then
    if type(x) ~= "table" or #x ~= s.n then return false end
    for i = 1, s.n do
      if x[i] ~= 0 and x[i] ~= 1 then return false end
    end
    return true
  elseif t == "hybrid" then
    if type(x) ~= "table" or #x ~= spaces.flat_size(s) then return false end
    local j = 0
    for _, p in ipairs(s.parts) do
      if p.type == "discrete" then
        if not spaces.contains(p, x[j + 1]) then return false end
        j = j + 1
      else
        local n, part = prod(p.shape), {}
        for i = 1, n do part[i] = x[j + i] end
        if not spaces.contains(p, part) then return false end
        j = j + n
      end
    end
    return true
  elseif t == "dict" then
    if type(x) ~= "table" then return false end
    for k, p in pairs(s.parts) do
      if not spaces.contains(p, x[k]) then return false end
    end
    for k in pairs(x) do
      if s.parts[k] == nil then return false end
    end
    return true
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
  local t = s.type
  if t == "discrete" then return rng:integer(s.n) end
  if t == "multi_discrete" then
    local out = {}
    for i = 1, #s.nvec do out[i] = rng:integer(s.nvec[i]) end
    return out
  elseif t == "multi_binary" then
    local out = {}
    for i = 1, s.n do out[i] = rng:integer(2) end
    return out
  elseif t == "hybrid" then
    local out = {}
    for _, p in ipairs(s.parts) do
      local e = spaces.sample(p, rng)
      if type(e) == "number" then out[#out + 1] = e
      else for i = 1, #e do out[#out + 1] = e[i] end end
    end
    return out
  elseif t == "dict" then
    local out = {}
    for _, k in ipairs(sorted_names(s.parts)) do out[k] = spaces.sample(s.parts[k], rng) end
    return out
  end
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

-- Bounds a policy can clip to: all finite (else none: an infinite or
-- float-overflowing bound means unbounded).
local function finite_bounds(lo, hi, n)
  if type(lo) ~= "table" and type(lo) ~= "number" then return nil, nil end
  local l, h = {}, {}
  for i = 1, n do
    local a = type(lo) == "table" and lo[i] or lo
    local b = type(hi) == "table" and hi[i] or hi
    if type(a) ~= "number" or type(b) ~= "number" or a < -1e30 or b > 1e30 then return nil, nil end
    l[i], h[i] = a, b
  end
  return l, h
end

function spaces.policy_action(s)
  local t = s.type
  if t == "discrete" then return {type = "discrete", n = s.n} end
  if t == "multi_discrete" then return {type = "multi_discrete", nvec = s.nvec} end
  if t == "multi_binary" then return {type = "multi_binary", n = s.n} end
  if t == "hybrid" then
    -- the engine clips box parts to their bounds; the policy's Gaussian
    -- parts need their sizes
    local parts = {}
    for i, p in ipairs(s.parts) do
      if p.type == "discrete" then parts[i] = {type = "discrete", n = p.n}
      else parts[i] = {type = "box", n = p.n or prod(p.shape)} end
    end
    return {type = "hybrid", parts = parts}
  end
  if t == "box" then
    local n = s.n or prod(s.shape)
    local low, high = finite_bounds(s.low, s.high, n)
    return {type = "box", n = n, low = low, high = high}
  end
  return s  -- core.policy names what is wrong
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
  local t = s.type
  if t == "discrete" then return "Discrete(" .. s.n .. ")" end
  if t == "multi_discrete" then
    local v = {}
    for i = 1, #s.nvec do v[i] = string.format("%d", s.nvec[i]) end
    return "MultiDiscrete([" .. table.concat(v, " ") .. "])"
  end
  if t == "multi_binary" then return "MultiBinary(" .. s.n .. ")" end
  if t == "hybrid" then
    local v = {}
    for i, p in ipairs(s.parts) do v[i] = spaces.describe(p) end
    return "Hybrid(" .. table.concat(v, ", ") .. ")"
  end
  if t == "dict" then
    local v = {}
    for i, k in ipairs(sorted_names(s.parts)) do v[i] = "'" .. k .. "': " .. spaces.describe(s.parts[k]) end
    return "Dict(" .. table.concat(v, ", ") .. ")"
  end
  local dims = {}
  for i = 1, #s.shape do dims[i] = string.format("%d", s.shape[i]) end
  return "Box(" .. uniform_or_list(s.low) .. ", " .. uniform_or_list(s.high) .. ", ("
    .. table.concat(dims, ", ") .. (#dims == 1 and ",))" or "))")
end

return spaces
