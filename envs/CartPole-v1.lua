-- CartPole-v1: Gymnasium's cart-pole (Barto, Sutton & Anderson 1983), euler
-- integration, same constants, observation layout, reward and termination.
-- Runs inside moonrl's env sandbox: `rng` is the sandbox's generator module.

local Env = {}
Env.__index = Env

Env.id = "CartPole-v1"
Env.max_episode_steps = 500

local GRAVITY = 9.8
local MASSCART = 1.0
local MASSPOLE = 0.1
local TOTAL_MASS = MASSPOLE + MASSCART
local LENGTH = 0.5                      -- half the pole's length
local POLEMASS_LENGTH = MASSPOLE * LENGTH
local FORCE_MAG = 10.0
local TAU = 0.02
local THETA_THRESHOLD = 12 * 2 * math.pi / 360
local X_THRESHOLD = 2.4
local F32_MAX = 3.4028234663852886e38   -- np.finfo(np.float32).max
local cos, sin = math.cos, math.sin

Env.observation_space = {
  type = "box", shape = {4},
  low = {-X_THRESHOLD * 2, -F32_MAX, -THETA_THRESHOLD * 2, -F32_MAX},
  high = {X_THRESHOLD * 2, F32_MAX, THETA_THRESHOLD * 2, F32_MAX},
}
Env.action_space = {type = "discrete", n = 2}

function Env.new(config)
  local self = setmetatable({config = config or {}}, Env)
  return self
end

function Env:_obs()
  local s = self.state
  return {s[1], s[2], s[3], s[4]}
end

function Env:reset(seed)
  local obs = {0, 0, 0, 0}
  self:reset_into(seed, obs)
  return obs, {}
end

-- The engine's fast path (optional in the env API): reset(seed) writing the
-- observation into obs instead of returning a new table.
function Env:reset_into(seed, obs)
  if seed ~= nil or not self.rng then self.rng = rng.new(seed or self.config.seed or 0) end
  local r = self.rng
  local s = self.state
  if not s then s = {}; self.state = s end
  s[1], s[2], s[3], s[4] = r:uniform(-0.05, 0.05), r:uniform(-0.05, 0.05),
                           r:uniform(-0.05, 0.05), r:uniform(-0.05, 0.05)
  self.steps_beyond_terminated = nil
  obs[1], obs[2], obs[3], obs[4] = s[1], s[2], s[3], s[4]
end

-- A one-line text picture of the cart on its track, for `moonrl play --render`.
function Env:render()
  local s = self.state
  if not s then return nil end
  local width = 49
  local pos = math.floor((s[1] + X_THRESHOLD) / (2 * X_THRESHOLD) * (width - 1) + 0.5) + 1
  pos = math.max(2, math.min(width - 1, pos))
  local pole = s[3] > 0.03 and "/" or (s[3] < -0.03 and "\\" or "|")
  local track = string.rep("-", pos - 2) .. "[" .. pole .. "]" .. string.rep("-", width - pos - 1)
  return string.format("%s  x %+.2f  theta %+5.1f deg", track, s[1], s[3] * 180 / math.pi)
end

function Env:set_state(s)
  assert(type(s) == "table" and #s == 4, "CartPole-v1: set_state expects {x, x_dot, theta, theta_dot}")
  self.state = {s[1], s[2], s[3], s[4]}
  self.steps_beyond_terminated = nil
  return self:_obs()
end

-- The dynamics, advancing self.state in place (no table per step); returns
-- reward, terminated.
local function advance(self, action)
  if action ~= 0 and action ~= 1 then
    error("CartPole-v1: invalid action " .. tostring(action) .. " (expected 0 or 1)", 3)
  end
  local s = self.state
  if not s then error("CartPole-v1: call reset() before step()", 3) end
  local x, x_dot, theta, theta_dot = s[1], s[2], s[3], s[4]
  local force = action == 1 and FORCE_MAG or -FORCE_MAG
  local costheta, sintheta = cos(theta), sin(theta)
  local temp = (force + POLEMASS_LENGTH * theta_dot * theta_dot * sintheta) / TOTAL_MASS
  local thetaacc = (GRAVITY * sintheta - costheta * temp)
    / (LENGTH * (4.0 / 3.0 - MASSPOLE * costheta * costheta / TOTAL_MASS))
  local xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
  -- euler: positions advance with the old velocities
  x = x + TAU * x_dot
  x_dot = x_dot + TAU * xacc
  theta = theta + TAU * theta_dot
  theta_dot = theta_dot + TAU * thetaacc
  s[1], s[2], s[3], s[4] = x, x_dot, theta, theta_dot

  local terminated = x < -X_THRESHOLD or x > X_THRESHOLD
    or theta < -THETA_THRESHOLD or theta > THETA_THRESHOLD
  local reward
  if not terminated then
    reward = 1.0
  elseif self.steps_beyond_terminated == nil then
    self.steps_beyond_terminated = 0   -- the pole just fell: this step still counts
    reward = 1.0
  else
    -- stepping past the end: Gymnasium warns and pays nothing
    self.steps_beyond_terminated = self.steps_beyond_terminated + 1
    reward = 0.0
  end
  return reward, terminated
end

function Env:step(action)
  local reward, terminated = advance(self, action)
  return self:_obs(), reward, terminated, false, {}
end

-- The engine's fast path (optional in the env API): step(action) writing
-- the observation into obs; returns reward, terminated, truncated.
function Env:step_into(action, obs)
  local reward, terminated = advance(self, action)
  local s = self.state
  obs[1], obs[2], obs[3], obs[4] = s[1], s[2], s[3], s[4]
  return reward, terminated, false
end

return Env
