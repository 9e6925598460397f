-- Reach: a point on a line must reach a target and stay there.
-- The smallest complete moonrl env: `rl.make("examples/envs/reach.lua")`.
local Reach = {}
Reach.__index = Reach

Reach.id = "Reach-v0"
Reach.max_episode_steps = 50                      -- the time limit rl.make applies
Reach.observation_space = {type = "box", shape = {2}, low = {-1, -1}, high = {1, 1}}
Reach.action_space = {type = "discrete", n = 3}   -- left, stay, right

function Reach.new(config)
  return setmetatable({speed = (config and config.speed) or 0.1}, Reach)
end

-- `rng` is the seeded generator moonrl gives every env: a seed fixes a run.
function Reach:reset(seed)
  if seed or not self.rng then self.rng = rng.new(seed or 0) end
  self.x = self.rng:uniform(-1, 1)
  self.target = self.rng:uniform(-1, 1)
  return {self.x, self.target}, {}
end

function Reach:step(action)
  self.x = math.max(-1, math.min(1, self.x + (action - 1) * self.speed))
  local distance = math.abs(self.x - self.target)
  local reward = -distance                        -- closer is better
  local terminated = distance < 0.05              -- reached: the MDP ends
  return {self.x, self.target}, reward, terminated, false, {}
end

return Reach
