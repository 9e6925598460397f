-- The world of the example: a cart on a rail balancing a pole, written for
-- the game (the dynamics of the classic cart-pole, Barto, Sutton & Anderson
-- 1983, integrated with explicit Euler at 50 Hz), plus gusts of wind the
-- player can throw at it.  No LÖVE calls here, so it runs under any Lua.
--
--   local w = Game.new(rng)          -- rng: a generator with :uniform(a, b)
--   local obs = w:reset()            -- {x, x_dot, theta, theta_dot}
--   local obs, reward, terminated, truncated = w:step(action)  -- 0 left, 1 right
--   w:gust(force)                    -- a push on the pole for a few steps

local Game = {}
Game.__index = Game

local GRAVITY, CART_MASS, POLE_MASS = 9.8, 1.0, 0.1
local HALF_LENGTH, FORCE, DT = 0.5, 10.0, 0.02
local TOTAL_MASS = CART_MASS + POLE_MASS
local POLE_MOMENT = POLE_MASS * HALF_LENGTH
Game.THETA_LIMIT = 12 * 2 * math.pi / 360
Game.X_LIMIT = 2.4
Game.MAX_STEPS = 500
Game.OBS = 4
Game.ACTIONS = 2

function Game.new(rng)
  local self = setmetatable({rng = rng, obs = {0, 0, 0, 0}, wind = 0, wind_steps = 0}, Game)
  self:reset()
  return self
end

function Game:reset()
  local o = self.obs
  for i = 1, 4 do o[i] = self.rng:uniform(-0.05, 0.05) end
  self.t = 0
  return o
end

-- A sideways push on the pole's tip (newtons) for the next 10 steps.
function Game:gust(force)
  self.wind, self.wind_steps = force, 10
end

-- The observation table is reused: copy it to keep it.
function Game:step(action)
  local o = self.obs
  local x, x_dot, theta, theta_dot = o[1], o[2], o[3], o[4]
  local force = action == 1 and FORCE or -FORCE
  local wind = 0
  if self.wind_steps > 0 then
    wind, self.wind_steps = self.wind, self.wind_steps - 1
  end
  local c, s = math.cos(theta), math.sin(theta)
  local temp = (force + POLE_MOMENT * theta_dot * theta_dot * s) / TOTAL_MASS
  local theta_acc = (GRAVITY * s - c * temp) /
                    (HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * c * c / TOTAL_MASS))
  theta_acc = theta_acc + wind * c / (POLE_MASS * HALF_LENGTH * 4)
  local x_acc = temp - POLE_MOMENT * theta_acc * c / TOTAL_MASS
  o[1] = x + DT * x_dot
  o[2] = x_dot + DT * x_acc
  o[3] = theta + DT * theta_dot
  o[4] = theta_dot + DT * theta_acc
  self.t = self.t + 1
  local terminated = o[1] < -Game.X_LIMIT or o[1] > Game.X_LIMIT or
                     o[3] < -Game.THETA_LIMIT or o[3] > Game.THETA_LIMIT
  local truncated = not terminated and self.t >= Game.MAX_STEPS
  return o, 1.0, terminated, truncated
end

return Game
