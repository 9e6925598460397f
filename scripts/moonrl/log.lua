-- moonrl.log — the CSV log of a training run, and the live progress line.
--
--   local log = require("moonrl.log").csv("runs/x/log.csv", {"steps", "mean_return", ...})
--   log:row(stats)      -- missing columns are left empty
--   log:close()
--
-- The file is rewritten through a temporary file and a rename every
-- `flush_every` rows and at close, so a crash never leaves a torn log.
-- With moonrl.core's write_file_atomic (both bindings: mrl_write_file_atomic)
-- the data is also fsynced before the rename; M.write_atomic is that for any
-- module.
local M = {}

local has_core, core = pcall(require, "moonrl.core")
local atomic = has_core and type(core) == "table" and core.write_file_atomic or nil

-- Writes text to path atomically: true, or nil and a message.
function M.write_atomic(path, text)
  if atomic then return atomic(path, text) end
  -- plain Lua: a temporary file and a rename (no fsync available)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, path .. ": cannot write " .. tmp .. ": " .. tostring(err) end
  local ok, werr = f:write(text)
  local cok, cerr = f:close()
  if not ok or not cok then
    os.remove(tmp)
    return nil, path .. ": write failed: " .. tostring(werr or cerr)
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return nil, path .. ": cannot rename: " .. tostring(rerr)
  end
  return true
end

local function cell(v)
  if v == nil then return "" end
  if type(v) == "number" then
    if v ~= v then return "nan" end
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
    return string.format("%.7g", v)
  end
  if type(v) == "boolean" then return v and "1" or "0" end
  local s = tostring(v)
  if s:find('[,"\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

local Csv = {}
Csv.__index = Csv

function M.csv(path, columns, opts)
  assert(type(path) == "string", "csv: path must be a string")
  assert(type(columns) == "table" and #columns > 0, "csv: columns must be a non-empty array")
  local self = setmetatable({path = path, columns = columns, lines = {},
                             flush_every = (opts and opts.flush_every) or 10,
                             pending = 0}, Csv)
  self.lines[1] = table.concat(columns, ",")
  self:flush()
  return self
end

function Csv:row(t)
  local c = {}
  for i, k in ipairs(self.columns) do c[i] = cell(t[k]) end
  self.lines[#self.lines + 1] = table.concat(c, ",")
  self.pending = self.pending + 1
  if self.pending >= self.flush_every then self:flush() end
end

function Csv:flush()
  local ok, err = M.write_atomic(self.path, table.concat(self.lines, "\n") .. "\n")
  if not ok then error("csv log: " .. tostring(err), 2) end
  self.pending = 0
end

function Csv:close() self:flush() end

-- Reads a CSV written by this module back into {columns = {...}, rows = {{...}}}.
function M.read_csv(path)
  local f = assert(io.open(path, "r"))
  local header = f:read("*l")
  local cols = {}
  for name in header:gmatch("[^,]+") do cols[#cols + 1] = name end
  local rows = {}
  for line in f:lines() do
    local r, i = {}, 1
    for v in (line .. ","):gmatch("([^,]*),") do r[cols[i]] = tonumber(v) or v; i = i + 1 end
    rows[#rows + 1] = r
  end
  f:close()
  return {columns = cols, rows = rows}
end

-- The live progress line: steps, steps/s, mean return, ETA; redrawn in place
-- on a terminal, printed every `every` seconds otherwise.
local Progress = {}
Progress.__index = Progress

function M.progress(total, opts)
  opts = opts or {}
  return setmetatable({total = total, out = opts.out or io.stdout, clock = opts.clock or os.clock,
                       t0 = (opts.clock or os.clock)(), last = -math.huge,
                       every = opts.every or 0.5, tty = opts.tty}, Progress)
end

local function hms(s)
  if s ~= s or s == math.huge then return "--:--" end
  s = math.floor(s + 0.5)
  local f = math.floor -- %d needs integral values on Lua 5.4
  if s >= 3600 then return string.format("%d:%02d:%02d", f(s / 3600), f((s % 3600) / 60), s % 60) end
  return string.format("%d:%02d", f(s / 60), s % 60)
end

function Progress:update(steps, mean_return, force)
  local now = self.clock()
  if not force and now - self.last < self.every then return end
  self.last = now
  local dt = math.max(now - self.t0, 1e-9)
  local sps = steps / dt
  local eta = (self.total - steps) / math.max(sps, 1e-9)
  local pct = self.total > 0 and 100 * steps / self.total or 0
  local line = string.format("%5.1f%%  %9d steps  %9.0f steps/s  return %8s  ETA %s",
                             pct, steps, sps,
                             mean_return and string.format("%.1f", mean_return) or "-", hms(eta))
  if self.tty then self.out:write("\r", line, "   ") else self.out:write(line, "\n") end
  self.out:flush()
end

function Progress:finish(steps, mean_return)
  self:update(steps, mean_return, true)
  if self.tty then self.out:write("\n") end
end

return M
