-- Bandit: a k-armed Gaussian bandit as one-step episodes.  The observation
-- is the constant {1}; pulling arm a pays N(means[a], std[a]) and ends the
-- episode.  Runs in moonrl's env sandbox (`rng` global).
--
-- config (all optional):
--   means   list of arm means ({0.5, -0.2, 1.0, 0.1, 0.3}); k = #means
--   std     a number for every arm or a list, one per arm (1.0)
--   seed    generator seed used when reset() is first given none

local Env = {}
Env.__index = Env

Env.id = "Bandit"
Env.max_episode_steps = 1

local DEFAULT_MEANS = {0.5, -0.2, 1.0, 0.1, 0.3}

Env.observation_space = {type = "box", shape = {1}, low = {1}, high = {1}}
Env.action_space = {type = "discrete", n = #DEFAULT_MEANS}

function Env.new(config)
  config = config or {}
  local means = config.means or DEFAULT_MEANS
  if type(means) ~= "table" or #means < 1 then
    error("Bandit: config.means must be a non-empty list of numbers", 2)
  end
  local self = setmetatable({config = config, means = {}, std = {}}, Env)
  local std = config.std or 1.0
  for i = 1, #means do
    local m = means[i]
    local s = type(std) == "table" and std[i] or std
    if type(m) ~= "number" or m ~= m or m == math.huge or m == -math.huge then
      error("Bandit: config.means[" .. i .. "] must be a finite number", 2)
    end
    if type(s) ~= "number" or not (s >= 0) or s == math.huge then
      error("Bandit: config.std" .. (type(std) == "table" and "[" .. i .. "]" or "") .. " must be a finite number >= 0", 2)
    end
    self.means[i], self.std[i] = m, s
  end
  self.action_space = {type = "discrete", n = #means}
  return self
end

function Env:reset(seed)
  if seed ~= nil or not self.rng then self.rng = rng.new(seed or self.config.seed or 0) end
  return {1.0}, {}
end

-- A bandit has no state to set; accepted for interface uniformity.
function Env:set_state()
  return {1.0}
end

function Env:step(action)
  local k = #self.means
  if type(action) ~= "number" or action ~= math.floor(action) or action < 0 or action >= k then
    error("Bandit: invalid action " .. tostring(action) .. " (expected an integer 0.." .. (k - 1) .. ")", 2)
  end
  if not self.rng then error("Bandit: call reset() before step()", 2) end
  local i = action + 1
  local reward = self.rng:normal(self.means[i], self.std[i])
  return {1.0}, reward, true, false, {}
end

return Env
