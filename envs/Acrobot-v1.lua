-- Acrobot-v1: Gymnasium's two-link underactuated pendulum, "book" dynamics
-- (Sutton & Barto), one rk4 step of dt = 0.2, angles wrapped to [-pi, pi],
-- velocities bounded.  Runs inside moonrl's env sandbox (`rng` global).

local Env = {}
Env.__index = Env

Env.id = "Acrobot-v1"
Env.max_episode_steps = 500

local PI = math.pi
local DT = 0.2
local L1 = 1.0        -- link lengths
local M1, M2 = 1.0, 1.0
local LC1, LC2 = 0.5, 0.5   -- centres of mass
local I1, I2 = 1.0, 1.0     -- moments of inertia
local G = 9.8
local MAX_VEL_1 = 4 * PI
local MAX_VEL_2 = 9 * PI
local TORQUE = {[0] = -1.0, [1] = 0.0, [2] = 1.0}

Env.observation_space = {
  type = "box", shape = {6},
  low = {-1, -1, -1, -1, -MAX_VEL_1, -MAX_VEL_2},
  high = {1, 1, 1, 1, MAX_VEL_1, MAX_VEL_2},
}
Env.action_space = {type = "discrete", n = 3}

function Env.new(config)
  return setmetatable({config = config or {}}, Env)
end

function Env:_obs()
  local s = self.state
  return {math.cos(s[1]), math.sin(s[1]), math.cos(s[2]), math.sin(s[2]), s[3], s[4]}
end

function Env:reset(seed)
  if seed ~= nil or not self.rng then self.rng = rng.new(seed or self.config.seed or 0) end
  local r = self.rng
  self.state = {r:uniform(-0.1, 0.1), r:uniform(-0.1, 0.1), r:uniform(-0.1, 0.1), r:uniform(-0.1, 0.1)}
  return self:_obs(), {}
end

function Env:set_state(s)
  assert(type(s) == "table" and #s == 4, "Acrobot-v1: set_state expects {theta1, theta2, dtheta1, dtheta2}")
  self.state = {s[1], s[2], s[3], s[4]}
  return self:_obs()
end

-- Time derivative of (theta1, theta2, dtheta1, dtheta2) under torque a.
local function dsdt(t1, t2, d1t, d2t, a)
  local d1 = M1 * LC1 * LC1 + M2 * (L1 * L1 + LC2 * LC2 + 2 * L1 * LC2 * math.cos(t2)) + I1 + I2
  local d2 = M2 * (LC2 * LC2 + L1 * LC2 * math.cos(t2)) + I2
  local phi2 = M2 * LC2 * G * math.cos(t1 + t2 - PI / 2.0)
  local phi1 = -M2 * L1 * LC2 * d2t * d2t * math.sin(t2)
    - 2 * M2 * L1 * LC2 * d2t * d1t * math.sin(t2)
    + (M1 * LC1 + M2 * L1) * G * math.cos(t1 - PI / 2.0) + phi2
  -- the "book" variant keeps the dtheta1^2 term that the NIPS paper drops
  local dd2 = (a + d2 / d1 * phi1 - M2 * L1 * LC2 * d1t * d1t * math.sin(t2) - phi2)
    / (M2 * LC2 * LC2 + I2 - d2 * d2 / d1)
  local dd1 = -(d2 * dd2 + phi1) / d1
  return d1t, d2t, dd1, dd2
end

local function wrap(x, m, M)
  local diff = M - m
  while x > M do x = x - diff end
  while x < m do x = x + diff end
  return x
end

local function bound(x, m, M)
  return math.min(math.max(x, m), M)
end

function Env:step(action)
  local a = TORQUE[action]
  if a == nil then
    error("Acrobot-v1: invalid action " .. tostring(action) .. " (expected 0, 1 or 2)", 2)
  end
  local s = self.state
  if not s then error("Acrobot-v1: call reset() before step()", 2) end
  local y1, y2, y3, y4 = s[1], s[2], s[3], s[4]
  local h, h2 = DT, DT / 2.0
  local k11, k12, k13, k14 = dsdt(y1, y2, y3, y4, a)
  local k21, k22, k23, k24 = dsdt(y1 + h2 * k11, y2 + h2 * k12, y3 + h2 * k13, y4 + h2 * k14, a)
  local k31, k32, k33, k34 = dsdt(y1 + h2 * k21, y2 + h2 * k22, y3 + h2 * k23, y4 + h2 * k24, a)
  local k41, k42, k43, k44 = dsdt(y1 + h * k31, y2 + h * k32, y3 + h * k33, y4 + h * k34, a)
  local c = h / 6.0
  local n1 = y1 + c * (k11 + 2 * k21 + 2 * k31 + k41)
  local n2 = y2 + c * (k12 + 2 * k22 + 2 * k32 + k42)
  local n3 = y3 + c * (k13 + 2 * k23 + 2 * k33 + k43)
  local n4 = y4 + c * (k14 + 2 * k24 + 2 * k34 + k44)
  self.state = {wrap(n1, -PI, PI), wrap(n2, -PI, PI),
                bound(n3, -MAX_VEL_1, MAX_VEL_1), bound(n4, -MAX_VEL_2, MAX_VEL_2)}
  local ns = self.state
  -- terminal when the tip is more than one link length above the pivot
  local terminated = -math.cos(ns[1]) - math.cos(ns[2] + ns[1]) > 1.0
  return self:_obs(), terminated and 0.0 or -1.0, terminated, false, {}
end

return Env
