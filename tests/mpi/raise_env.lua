-- fixture (tests/mpi.t, test c): a small env that raises from step() after
-- config.after steps when config.fail is set — the training script sets it
-- on rank 1 only, so one rank fails while the other waits in a collective.
local Env = {}
Env.__index = Env
Env.id = "RaiseOnRank"
Env.max_episode_steps = 50
Env.observation_space = {type = "box", shape = {2}, low = {-10, -10}, high = {10, 10}}
Env.action_space = {type = "discrete", n = 2}
function Env.new(config)
  config = config or {}
  return setmetatable({fail = config.fail, after = config.after or 300, steps = 0}, Env)
end
function Env:reset(seed)
  if seed ~= nil or not self.rng then self.rng = rng.new(seed or 0) end
  self.x = 0
  return {0, self.rng:uniform()}, {}
end
function Env:step(a)
  self.steps = self.steps + 1
  if self.fail and self.steps > self.after then
    error("fixture env exploded on purpose after " .. self.after .. " steps")
  end
  self.x = self.x + (a == 1 and 0.1 or -0.1)
  return {self.x, self.rng:uniform()}, -math.abs(self.x), math.abs(self.x) > 2, false, {}
end
return Env
