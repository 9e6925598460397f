-- MountainCar-v0: Gymnasium's discrete mountain car (Moore 1990): push
-- left / none / right, velocity and position clipped, an inelastic left wall,
-- reward -1 per step.  Runs inside moonrl's env sandbox (`rng` global).

local Env = {}
Env.__index = Env

Env.id = "MountainCar-v0"
Env.max_episode_steps = 200

local MIN_POSITION = -1.2
local MAX_POSITION = 0.6
local MAX_SPEED = 0.07
local GOAL_POSITION = 0.5
local FORCE = 0.001
local GRAVITY = 0.0025

Env.observation_space = {type = "box", shape = {2},
  low = {MIN_POSITION, -MAX_SPEED}, high = {MAX_POSITION, MAX_SPEED}}
Env.action_space = {type = "discrete", n = 3}

-- config.goal_velocity: Gymnasium's `goal_velocity` argument (default 0)
function Env.new(config)
  config = config or {}
  return setmetatable({config = config, goal_velocity = config.goal_velocity or 0.0}, Env)
end

function Env:reset(seed)
  if seed ~= nil or not self.rng then self.rng = rng.new(seed or self.config.seed or 0) end
  self.state = {self.rng:uniform(-0.6, -0.4), 0.0}
  return {self.state[1], self.state[2]}, {}
end

function Env:set_state(s)
  assert(type(s) == "table" and #s == 2, "MountainCar-v0: set_state expects {position, velocity}")
  self.state = {s[1], s[2]}
  return {s[1], s[2]}
end

local function clip(x, lo, hi) return math.min(math.max(x, lo), hi) end

function Env:step(action)
  if action ~= 0 and action ~= 1 and action ~= 2 then
    error("MountainCar-v0: invalid action " .. tostring(action) .. " (expected 0, 1 or 2)", 2)
  end
  local s = self.state
  if not s then error("MountainCar-v0: call reset() before step()", 2) end
  local position, velocity = s[1], s[2]
  velocity = velocity + (action - 1) * FORCE + math.cos(3 * position) * (-GRAVITY)
  velocity = clip(velocity, -MAX_SPEED, MAX_SPEED)
  position = clip(position + velocity, MIN_POSITION, MAX_POSITION)
  if position == MIN_POSITION and velocity < 0 then velocity = 0.0 end
  local terminated = position >= GOAL_POSITION and velocity >= self.goal_velocity
  self.state = {position, velocity}
  return {position, velocity}, -1.0, terminated, false, {}
end

return Env
