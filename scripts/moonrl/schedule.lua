-- moonrl.schedule — hyperparameters that change over training.
--
-- Any hyperparameter of a trainer may be a number or a function of progress
-- in [0, 1] (the share of the step budget spent).  `resolve` turns either
-- into its value now; the constructors below build the usual shapes.
local M = {}

-- The value of a number-or-function at progress p, checked to be finite.
function M.resolve(v, p, name)
  if type(v) == "function" then
    local ok, r = pcall(v, p)
    if not ok then error(string.format("schedule '%s' raised: %s", name or "?", tostring(r)), 2) end
    v = r
  end
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    error(string.format("hyperparameter '%s': expected a finite number or a function of progress returning one, got %s",
                        name or "?", tostring(v)), 2)
  end
  return v
end

function M.constant(v) return function() return v end end

-- Linear from `from` at progress 0 to `to` at progress 1 (CleanRL's anneal).
function M.linear(from, to)
  to = to or 0
  return function(p) return from + (to - from) * math.min(math.max(p, 0), 1) end
end

-- Constant until `warm` then linear to `to`.
function M.step(values, bounds)
  return function(p)
    for i, b in ipairs(bounds) do if p < b then return values[i] end end
    return values[#values]
  end
end

function M.exponential(from, to)
  return function(p) return from * (to / from) ^ math.min(math.max(p, 0), 1) end
end

return M
