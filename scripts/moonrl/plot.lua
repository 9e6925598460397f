-- moonrl.plot — line charts as standalone SVG files (no dependencies), for
-- learning curves and benchmark scaling pictures.
--
--   plot.svg{path = "curve.svg", title = "CartPole-v1 (PPO)",
--            xlabel = "env steps", ylabel = "mean return",
--            series = {{name = "seed 1", x = {...}, y = {...}}, ...},
--            hline = 475, logx = false}
local M = {}

local floor, log10, max, min = math.floor, math.log10 or function(x) return math.log(x, 10) end, math.max, math.min

local palette = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                 "#8c564b", "#e377c2", "#17becf"}

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;"}))
end

-- "Nice" tick positions covering [lo, hi].
local function ticks(lo, hi, n)
  if hi <= lo then hi = lo + 1 end
  local raw = (hi - lo) / (n or 5)
  local mag = 10 ^ floor(log10(raw))
  local step = mag
  for _, m in ipairs({1, 2, 2.5, 5, 10}) do
    if m * mag >= raw then step = m * mag; break end
  end
  local out, v = {}, math.ceil(lo / step) * step
  while v <= hi + step * 1e-9 do out[#out + 1] = v; v = v + step end
  return out
end

local function fmt(v)
  local a = math.abs(v)
  if a >= 1e6 then return string.format("%gM", v / 1e6) end
  if a >= 1e4 then return string.format("%gk", v / 1e3) end
  if a == floor(a) then return string.format("%d", v) end
  return string.format("%.3g", v)
end

-- Returns the SVG text; writes it to opts.path when given.
function M.svg(opts)
  local W, H = opts.width or 720, opts.height or 420
  local L, R, T, B = 70, 20, 40, 55
  local series = assert(opts.series, "plot.svg: series expected")
  local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
  local logx = opts.logx
  local function X(x) return logx and log10(x) or x end
  for _, s in ipairs(series) do
    for i = 1, #s.x do
      local x, y = X(s.x[i]), s.y[i]
      if x == x and y == y and x > -math.huge and y > -math.huge and x < math.huge and y < math.huge then
        xlo, xhi = min(xlo, x), max(xhi, x)
        ylo, yhi = min(ylo, y), max(yhi, y)
      end
    end
  end
  if opts.hline then ylo, yhi = min(ylo, opts.hline), max(yhi, opts.hline) end
  if xlo > xhi then xlo, xhi, ylo, yhi = 0, 1, 0, 1 end
  if yhi == ylo then yhi = ylo + 1 end
  if xhi == xlo then xhi = xlo + 1 end
  local pad = (yhi - ylo) * 0.05
  ylo, yhi = ylo - pad, yhi + pad
  local function px(x) return L + (X(x) - xlo) / (xhi - xlo) * (W - L - R) end
  local function py(y) return H - B - (y - ylo) / (yhi - ylo) * (H - T - B) end
  local o = {}
  local function add(...) o[#o + 1] = string.format(...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">', W, H, W, H)
  add('<rect width="100%%" height="100%%" fill="white"/>')
  if opts.title then add('<text x="%.0f" y="22" font-size="15" font-weight="bold">%s</text>', L, esc(opts.title)) end
  -- grid and axes
  for _, v in ipairs(ticks(ylo, yhi, 6)) do
    local y = py(v)
    add('<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#e5e5e5"/>', L, y, W - R, y)
    add('<text x="%.0f" y="%.1f" text-anchor="end">%s</text>', L - 6, y + 4, fmt(v))
  end
  local xt = logx and {} or ticks(xlo, xhi, 6)
  if logx then
    for e = math.ceil(xlo), floor(xhi) do xt[#xt + 1] = 10 ^ e end
  end
  for _, v in ipairs(xt) do
    local x = logx and px(v) or L + (v - xlo) / (xhi - xlo) * (W - L - R)
    add('<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#e5e5e5"/>', x, T, x, H - B)
    add('<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>', x, H - B + 16, fmt(v))
  end
  add('<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#444"/>', L, T, W - L - R, H - T - B)
  if opts.xlabel then add('<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>', (L + W - R) / 2, H - 12, esc(opts.xlabel)) end
  if opts.ylabel then
    add('<text transform="translate(16,%.0f) rotate(-90)" text-anchor="middle">%s</text>', (T + H - B) / 2, esc(opts.ylabel))
  end
  if opts.hline then
    local y = py(opts.hline)
    add('<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#888" stroke-dasharray="6,4"/>', L, y, W - R, y)
    add('<text x="%.0f" y="%.1f" text-anchor="end" fill="#666">%s</text>', W - R - 4, y - 4, esc(opts.hline_label or fmt(opts.hline)))
  end
  for k, s in ipairs(series) do
    local color = s.color or palette[(k - 1) % #palette + 1]
    local pts = {}
    for i = 1, #s.x do
      local x, y = s.x[i], s.y[i]
      if y == y and (not logx or x > 0) then pts[#pts + 1] = string.format("%.1f,%.1f", px(x), py(y)) end
    end
    if #pts > 0 then
      add('<polyline fill="none" stroke="%s" stroke-width="%s" points="%s"/>', color, s.width or 1.8, table.concat(pts, " "))
    end
    if s.name then
      local ly = T + 16 + (k - 1) * 16
      add('<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="3"/>', L + 10, ly - 4, L + 28, ly - 4, color)
      add('<text x="%.0f" y="%.0f">%s</text>', L + 34, ly, esc(s.name))
    end
  end
  add('</svg>')
  local text = table.concat(o, "\n") .. "\n"
  if opts.path then
    local ok, err = require("moonrl.log").write_atomic(opts.path, text)
    if not ok then error("plot.svg: " .. tostring(err), 2) end
  end
  return text
end

return M
