-- Plain-Lua checker for the env_trajectory golden cases.
--
--   lua5.4 tests/env_golden.lua /work/shared/golden/envs.json [more.json ...]
--   luajit tests/env_golden.lua /work/shared/golden/envs.json
--
-- Prints `ok N - name` / `not ok N - name: ...` per case, then
-- `N passed, N failed`; exits 0 only when nothing failed.  Cases of other
-- kinds are failures, never skips (the golden contract).

-- Find the repo root from this file's location so the script runs from any
-- working directory.
local here = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./")
local root = here .. "../"
package.path = root .. "scripts/?.lua;" .. root .. "scripts/?/init.lua;" .. package.path

local envs = require "moonrl.envs"

---------------------------------------------------------------- JSON

-- A small decoder kept local to this script (objects, arrays, strings with
-- escapes, numbers, true/false/null); moonrl.json is used when present.
local function local_decode(s)
  local pos = 1
  local function err(msg) error("JSON: " .. msg .. " at byte " .. pos, 0) end
  local function ws()
    pos = s:find("[^ \t\r\n]", pos) or #s + 1
  end
  local value
  local escapes = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t"}
  local function str()
    pos = pos + 1
    local buf = {}
    while true do
      local c = s:sub(pos, pos)
      if c == "" then err("unterminated string") end
      if c == '"' then pos = pos + 1 break end
      if c == "\\" then
        local e = s:sub(pos + 1, pos + 1)
        if escapes[e] then
          buf[#buf + 1] = escapes[e]
          pos = pos + 2
        elseif e == "u" then
          local code = tonumber(s:sub(pos + 2, pos + 5), 16) or err("bad \\u escape")
          -- names in golden files are ASCII; anything else becomes '?'
          buf[#buf + 1] = code < 128 and string.char(code) or "?"
          pos = pos + 6
        else
          err("bad escape")
        end
      else
        local j = s:find('["\\]', pos) or #s + 1
        buf[#buf + 1] = s:sub(pos, j - 1)
        pos = j
      end
    end
    return table.concat(buf)
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      pos = pos + 1
      local t = {}
      ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1 return t end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then err("expected a key") end
        local k = str()
        ws()
        if s:sub(pos, pos) ~= ":" then err("expected ':'") end
        pos = pos + 1
        t[k] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then err("expected ',' or '}'") end
      end
    elseif c == "[" then
      pos = pos + 1
      local t = {}
      ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1 return t end
      while true do
        t[#t + 1] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then err("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    elseif s:sub(pos, pos + 3) == "true" then
      pos = pos + 4 return true
    elseif s:sub(pos, pos + 4) == "false" then
      pos = pos + 5 return false
    elseif s:sub(pos, pos + 3) == "null" then
      pos = pos + 4 return nil
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" then err("unexpected character '" .. c .. "'") end
      pos = pos + #num
      return tonumber(num) or err("bad number " .. num)
    end
  end
  local v = value()
  ws()
  if pos <= #s then err("trailing data") end
  return v
end

local decode = local_decode
do
  local ok, json = pcall(require, "moonrl.json")
  if ok and type(json) == "table" and type(json.decode) == "function" then decode = json.decode end
end

---------------------------------------------------------------- compare

local function flatten(x, out)
  out = out or {}
  if type(x) == "table" then
    for i = 1, #x do flatten(x[i], out) end
  else
    out[#out + 1] = x
  end
  return out
end

-- ‖got − exp‖₂ ≤ atol·√n + rtol·‖exp‖₂ over the flattened array; booleans
-- and lengths exact.  Returns nil when it matches, else a message.
local function compare(name, got, exp, tol)
  local g, e = flatten(got), flatten(exp)
  if #g ~= #e then
    return string.format("%s: got %d values, expected %d", name, #g, #e)
  end
  if type(e[1]) == "boolean" then
    for i = 1, #e do
      if g[i] ~= e[i] then
        return string.format("%s[%d]: got %s, expected %s", name, i - 1, tostring(g[i]), tostring(e[i]))
      end
    end
    return nil
  end
  local d2, e2, worst, wi = 0, 0, -1, 0
  for i = 1, #e do
    if type(g[i]) ~= "number" then
      return string.format("%s[%d]: got %s, expected a number", name, i - 1, type(g[i]))
    end
    local d = g[i] - e[i]
    d2 = d2 + d * d
    e2 = e2 + e[i] * e[i]
    if math.abs(d) > worst then worst, wi = math.abs(d), i end
  end
  local err, bound = math.sqrt(d2), tol.atol * math.sqrt(#e) + tol.rtol * math.sqrt(e2)
  if not (err <= bound) then
    return string.format("%s: |got-exp| = %.3g > %.3g (worst at flat index %d: got %.9g, expected %.9g)",
      name, err, bound, wi - 1, g[wi], e[wi])
  end
  return nil
end

local function run_case(case)
  if case.kind ~= "env_trajectory" then
    return "unknown kind '" .. tostring(case.kind) .. "'"
  end
  local tol = case.tol or {}
  tol = {rtol = tol.rtol or 1e-4, atol = tol.atol or 1e-6}
  local ok, got = pcall(envs.run_trajectory, case.env, case.state, case.actions)
  if not ok then return tostring(got) end
  local keys = {}
  for k in pairs(case.expect) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if got[k] == nil then return "unknown expect field '" .. k .. "'" end
    local msg = compare(k, got[k], case.expect[k], tol)
    if msg then return msg end
  end
  return nil
end

---------------------------------------------------------------- main

local files = {...}
if #files == 0 then
  io.stderr:write("usage: lua tests/env_golden.lua FILE.json [FILE.json ...]\n")
  os.exit(2)
end

local n, passed, failed = 0, 0, 0
for _, path in ipairs(files) do
  local f, ferr = io.open(path, "rb")
  local doc, derr
  if f then
    local text = f:read("*a")
    f:close()
    local ok, v = pcall(decode, text)
    if ok then doc = v else derr = tostring(v) end
  else
    derr = ferr
  end
  if not doc or type(doc.cases) ~= "table" then
    n = n + 1
    failed = failed + 1
    print(string.format("not ok %d - %s: %s", n, path, derr or "no cases array"))
  else
    for _, case in ipairs(doc.cases) do
      n = n + 1
      local msg = run_case(case)
      local name = tostring(case.name)
      if msg then
        failed = failed + 1
        print(string.format("not ok %d - %s: %s", n, name, msg))
      else
        passed = passed + 1
        print(string.format("ok %d - %s", n, name))
      end
    end
  end
end
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
