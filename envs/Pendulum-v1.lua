-- Pendulum-v1: Gymnasium's inverted pendulum swing-up.  The torque is
-- clipped to [-2, 2]; the cost uses the angle normalised to [-pi, pi).
-- Runs inside moonrl's env sandbox (`rng` global).

local Env = {}
Env.__index = Env

Env.id = "Pendulum-v1"
Env.max_episode_steps = 200

local MAX_SPEED = 8.0
local MAX_TORQUE = 2.0
local DT = 0.05
local M, L = 1.0, 1.0
local PI = math.pi

Env.observation_space = {type = "box", shape = {3}, low = {-1, -1, -MAX_SPEED}, high = {1, 1, MAX_SPEED}}
Env.action_space = {type = "box", shape = {1}, low = {-MAX_TORQUE}, high = {MAX_TORQUE}}

-- config.g: gravity (Gymnasium's `g` argument, default 10)
function Env.new(config)
  config = config or {}
  local g = config.g or 10.0
  if type(g) ~= "number" then error("Pendulum-v1: config.g must be a number", 2) end
  return setmetatable({config = config, g = g}, Env)
end

function Env:_obs()
  local s = self.state
  return {math.cos(s[1]), math.sin(s[1]), s[2]}
end

function Env:reset(seed)
  if seed ~= nil or not self.rng then self.rng = rng.new(seed or self.config.seed or 0) end
  self.state = {self.rng:uniform(-PI, PI), self.rng:uniform(-1.0, 1.0)}
  return self:_obs(), {}
end

function Env:set_state(s)
  assert(type(s) == "table" and #s == 2, "Pendulum-v1: set_state expects {theta, theta_dot}")
  self.state = {s[1], s[2]}
  return self:_obs()
end

local function angle_normalize(x)
  return (x + PI) % (2 * PI) - PI   -- Lua's % floors like Python's
end

function Env:step(action)
  local u = action
  if type(u) == "table" then u = u[1] end
  if type(u) ~= "number" or u ~= u then
    error("Pendulum-v1: invalid action " .. tostring(action) .. " (expected {torque})", 2)
  end
  local s = self.state
  if not s then error("Pendulum-v1: call reset() before step()", 2) end
  local th, thdot = s[1], s[2]
  local g = self.g
  u = math.min(math.max(u, -MAX_TORQUE), MAX_TORQUE)
  local an = angle_normalize(th)
  local cost = an * an + 0.1 * thdot * thdot + 0.001 * u * u
  local newthdot = thdot + (3 * g / (2 * L) * math.sin(th) + 3.0 / (M * L * L) * u) * DT
  newthdot = math.min(math.max(newthdot, -MAX_SPEED), MAX_SPEED)
  local newth = th + newthdot * DT
  self.state = {newth, newthdot}
  return self:_obs(), -cost, false, false, {}
end

return Env
