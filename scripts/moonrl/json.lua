-- moonrl.json — a small, strict JSON decoder and an encoder for logs.
-- Runs on Lua 5.4 and LuaJIT.  Integer literals decode to Lua integers where
-- the language has them (5.4), so callers can tell 1 from 1.0.
--
--   json.decode(text) → value        raises "json: <what> at line L, column C"
--   json.try_decode(text) → value | nil, message
--   json.encode(value) → text        sorted keys; raises on NaN/Inf or cycles
--   json.null                        what a JSON null decodes to
--   json.array(t)                    marks t to encode as an array even empty

local json = {}

local byte, sub, find, char = string.byte, string.sub, string.find, string.char
local concat, floor = table.concat, math.floor
local tointeger = math.tointeger
local huge = math.huge

json.null = setmetatable({}, {__tostring = function() return "null" end})
local array_mt = {__jsontype = "array"}

function json.array(t)
  return setmetatable(t or {}, array_mt)
end

-- ------------------------------------------------------------------ decode

local function where(s, pos)
  local line, col, i = 1, 1, 1
  while true do
    local nl = find(s, "\n", i, true)
    if not nl or nl >= pos then break end
    line = line + 1
    i = nl + 1
  end
  col = pos - i + 1
  return line, col
end

local function fail(s, pos, msg)
  if pos > #s then msg = "unexpected end of input" end
  local line, col = where(s, pos)
  error(("json: %s at line %d, column %d"):format(msg, line, col), 0)
end

local function skip(s, pos)
  local _, e = find(s, "^[ \t\r\n]*", pos)
  return e + 1
end

local function utf8char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then
    return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40)
  end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
              0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local escapes = {
  [0x22] = '"', [0x5C] = "\\", [0x2F] = "/", [0x62] = "\b",
  [0x66] = "\f", [0x6E] = "\n", [0x72] = "\r", [0x74] = "\t",
}

local function hex4(s, pos)
  local h = sub(s, pos, pos + 3)
  if not find(h, "^%x%x%x%x$") then fail(s, pos, "bad \\u escape") end
  return tonumber(h, 16)
end

local function decode_string(s, pos)
  -- pos is just after the opening quote
  local parts, n = {}, 0
  local i = pos
  while true do
    local a, b = find(s, '^[^"\\%c]+', i)
    if a then
      n = n + 1; parts[n] = sub(s, a, b)
      i = b + 1
    end
    local c = byte(s, i)
    if c == nil then fail(s, pos - 1, "unterminated string") end
    if c == 0x22 then return concat(parts), i + 1 end
    if c < 0x20 then fail(s, i, "control character in string") end
    -- a backslash
    local e = byte(s, i + 1)
    if e == 0x75 then
      local cp = hex4(s, i + 2)
      i = i + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        if sub(s, i, i + 1) ~= "\\u" then fail(s, i, "lone high surrogate") end
        local lo = hex4(s, i + 2)
        if lo < 0xDC00 or lo > 0xDFFF then fail(s, i, "bad low surrogate") end
        cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
        i = i + 6
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        fail(s, i - 6, "lone low surrogate")
      end
      n = n + 1; parts[n] = utf8char(cp)
    else
      local r = e and escapes[e]
      if not r then fail(s, i, "bad escape") end
      n = n + 1; parts[n] = r
      i = i + 2
    end
  end
end

local function decode_number(s, pos)
  local a, b = find(s, "^-?%d+", pos)
  if not a then fail(s, pos, "unexpected character") end
  local intpart = sub(s, byte(s, a) == 0x2D and a + 1 or a, b)
  if #intpart > 1 and byte(intpart, 1) == 0x30 then fail(s, pos, "leading zero in number") end
  local isint = true
  local fa, fb = find(s, "^%.%d+", b + 1)
  if fa then b = fb; isint = false
  elseif byte(s, b + 1) == 0x2E then fail(s, b + 1, "digit expected after '.'") end
  local ea, eb = find(s, "^[eE][-+]?%d+", b + 1)
  if ea then b = eb; isint = false
  elseif find(s, "^[eE]", b + 1) then fail(s, b + 1, "digit expected in exponent") end
  local text = sub(s, pos, b)
  local v = tonumber(text)
  if isint and tointeger then
    local iv = tointeger(v)
    -- keep integers that are exact; huge ones stay floats
    if iv and #text < 16 then v = iv end
  end
  return v, b + 1
end

local decode_value

local function decode_array(s, pos, depth)
  local t, n = {}, 0
  pos = skip(s, pos)
  if byte(s, pos) == 0x5D then return t, pos + 1 end
  while true do
    local v
    v, pos = decode_value(s, pos, depth)
    n = n + 1; t[n] = v
    pos = skip(s, pos)
    local c = byte(s, pos)
    if c == 0x5D then return t, pos + 1 end
    if c ~= 0x2C then fail(s, pos, "',' or ']' expected") end
    pos = pos + 1
  end
end

local function decode_object(s, pos, depth)
  local t = {}
  pos = skip(s, pos)
  if byte(s, pos) == 0x7D then return t, pos + 1 end
  while true do
    if byte(s, pos) ~= 0x22 then fail(s, pos, "string key expected") end
    local k
    k, pos = decode_string(s, pos + 1)
    pos = skip(s, pos)
    if byte(s, pos) ~= 0x3A then fail(s, pos, "':' expected") end
    local v
    v, pos = decode_value(s, pos + 1, depth)
    t[k] = v
    pos = skip(s, pos)
    local c = byte(s, pos)
    if c == 0x7D then return t, pos + 1 end
    if c ~= 0x2C then fail(s, pos, "',' or '}' expected") end
    pos = skip(s, pos + 1)
  end
end

local literals = {t = {"true", true}, f = {"false", false}, n = {"null", json.null}}

function decode_value(s, pos, depth)
  pos = skip(s, pos)
  local c = byte(s, pos)
  if c == nil then fail(s, pos, "unexpected end of input") end
  if c == 0x7B or c == 0x5B then
    if depth >= 512 then fail(s, pos, "nested too deeply") end
    if c == 0x7B then return decode_object(s, pos + 1, depth + 1) end
    return decode_array(s, pos + 1, depth + 1)
  end
  if c == 0x22 then return decode_string(s, pos + 1) end
  local lit = literals[char(c)]
  if lit then
    if sub(s, pos, pos + #lit[1] - 1) ~= lit[1] then fail(s, pos, "unexpected character") end
    return lit[2], pos + #lit[1]
  end
  return decode_number(s, pos)
end

function json.decode(s)
  if type(s) ~= "string" then
    error("json.decode: string expected, got " .. type(s), 2)
  end
  local v, pos = decode_value(s, 1, 0)
  pos = skip(s, pos)
  if pos <= #s then fail(s, pos, "trailing character") end
  return v
end

function json.try_decode(s)
  local ok, v = pcall(json.decode, s)
  if ok then return v end
  return nil, v
end

-- ------------------------------------------------------------------ encode

local function quote(str)
  return '"' .. str:gsub('[%c"\\]', function(c)
    local e = ({['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r",
                ["\t"] = "\\t", ["\b"] = "\\b", ["\f"] = "\\f"})[c]
    return e or ("\\u%04x"):format(byte(c))
  end) .. '"'
end

local function isarray(t)
  if getmetatable(t) == array_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function encode_number(v)
  if v ~= v or v == huge or v == -huge then
    error("json.encode: cannot encode " .. tostring(v), 0)
  end
  if tointeger and math.type(v) == "integer" then return ("%d"):format(v) end
  if v == floor(v) and v > -1e15 and v < 1e15 then
    -- 5.4 keeps 1.0 a float in the text; LuaJIT cannot tell, so plain 1
    return (tointeger and "%.1f" or "%.0f"):format(v)
  end
  local str = ("%.17g"):format(v)
  -- the shortest form that reads back the same
  for prec = 6, 16 do
    local t = ("%." .. prec .. "g"):format(v)
    if tonumber(t) == v then str = t break end
  end
  return str
end

local encode_value

local function encode_table(t, out, seen)
  if seen[t] then error("json.encode: cycle in table", 0) end
  seen[t] = true
  if isarray(t) then
    out[#out + 1] = "["
    for i = 1, #t do
      if i > 1 then out[#out + 1] = "," end
      encode_value(t[i], out, seen)
    end
    out[#out + 1] = "]"
  else
    local keys = {}
    for k in pairs(t) do
      if type(k) ~= "string" and type(k) ~= "number" then
        error("json.encode: key of type " .. type(k), 0)
      end
      keys[#keys + 1] = k
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    out[#out + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = quote(tostring(k))
      out[#out + 1] = ":"
      encode_value(t[k], out, seen)
    end
    out[#out + 1] = "}"
  end
  seen[t] = nil
end

function encode_value(v, out, seen)
  local tv = type(v)
  if v == nil or v == json.null then out[#out + 1] = "null"
  elseif tv == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then out[#out + 1] = encode_number(v)
  elseif tv == "string" then out[#out + 1] = quote(v)
  elseif tv == "table" then encode_table(v, out, seen)
  elseif (tv == "userdata" or tv == "cdata") and pcall(function() return v.totable end) and v.totable then
    encode_value(v:totable(), out, seen)
  else error("json.encode: cannot encode a " .. tv, 0) end
end

function json.encode(v)
  local out = {}
  encode_value(v, out, {})
  return concat(out)
end

return json
