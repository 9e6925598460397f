-- MountainCarContinuous-v0: Gymnasium's continuous mountain car: a force in
-- [-1, 1] (clipped), +100 at the goal, minus 0.1 * action^2 (of the unclipped
-- action, as Gymnasium does) every step.  Runs inside moonrl's env sandbox.

local Env = {}
Env.__index = Env

Env.id = "MountainCarContinuous-v0"
Env.max_episode_steps = 999

local MIN_ACTION, MAX_ACTION = -1.0, 1.0
local MIN_POSITION = -1.2
local MAX_POSITION = 0.6
local MAX_SPEED = 0.07
local GOAL_POSITION = 0.45
local POWER = 0.0015

Env.observation_space = {type = "box", shape = {2},
  low = {MIN_POSITION, -MAX_SPEED}, high = {MAX_POSITION, MAX_SPEED}}
Env.action_space = {type = "box", shape = {1}, low = {MIN_ACTION}, high = {MAX_ACTION}}

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
  assert(type(s) == "table" and #s == 2, "MountainCarContinuous-v0: set_state expects {position, velocity}")
  self.state = {s[1], s[2]}
  return {s[1], s[2]}
end

-- Round a double to the nearest float32 (ties to even), without
-- math.frexp or string.pack (absent from Lua 5.4 / LuaJIT respectively):
-- Gymnasium stores this env's state as a float32 array after every step.
local function f32(x)
  if x == 0 or x ~= x or x == math.huge or x == -math.huge then return x end
  local a = math.abs(x)
  local e = math.floor(math.log(a) / math.log(2))
  if 2 ^ e > a then e = e - 1 elseif 2 ^ (e + 1) <= a then e = e + 1 end
  if e < -126 then e = -126 end            -- subnormal float32 spacing
  local q = 2 ^ (e - 23)                   -- float32 spacing at x
  local m = a / q                          -- exact: q is a power of two
  local r = math.floor(m + 0.5)
  if r - m == 0.5 and r % 2 == 1 then r = r - 1 end
  local y = r * q
  if y > 3.4028234663852886e38 then y = math.huge end
  return x < 0 and -y or y
end

function Env:step(action)
  local a = action
  if type(a) == "table" then a = a[1] end
  if type(a) ~= "number" or a ~= a then
    error("MountainCarContinuous-v0: invalid action " .. tostring(action) .. " (expected {force})", 2)
  end
  local s = self.state
  if not s then error("MountainCarContinuous-v0: call reset() before step()", 2) end
  local position, velocity = s[1], s[2]
  local force = math.min(math.max(a, MIN_ACTION), MAX_ACTION)
  velocity = velocity + force * POWER - 0.0025 * math.cos(3 * position)
  if velocity > MAX_SPEED then velocity = MAX_SPEED end
  if velocity < -MAX_SPEED then velocity = -MAX_SPEED end
  position = position + velocity
  if position > MAX_POSITION then position = MAX_POSITION end
  if position < MIN_POSITION then position = MIN_POSITION end
  if position == MIN_POSITION and velocity < 0 then velocity = 0.0 end
  local terminated = position >= GOAL_POSITION and velocity >= self.goal_velocity
  local reward = terminated and 100.0 or 0.0
  reward = reward - a * a * 0.1
  position, velocity = f32(position), f32(velocity)
  self.state = {position, velocity}
  return {position, velocity}, reward, terminated, false, {}
end

return Env
