-- examples/mountaincar_shaped.lua — MountainCarContinuous-v0 with
-- potential-based reward shaping (Ng et al. 1999): every reward gets
-- F = γ·Φ(s') − Φ(s) with Φ = SCALE × the car's mechanical energy, which
-- leaves the optimal policy unchanged but rewards building up momentum.
--
-- Shaping must run where the env runs.  This file returns an env *class*
-- built in the caller's Lua state from the bundled env and
-- moonrl.wrap.potential, so it is used as an inline env:
--   local Shaped = dofile("examples/mountaincar_shaped.lua")
--   local env = rl.make(Shaped, {num_envs = 8})       -- inline: threads = 0
-- (a function cannot be copied into worker states; a shaping that must run
-- on worker threads belongs in an env file of its own.)
-- Episode returns seen by the trainer are the shaped ones; judge the agent
-- on the plain env (tests/learn/lib.lua's `evaluate`).
--
-- Written in the common subset of Lua 5.4 and LuaJIT.
local envs = require "moonrl.envs"
local wrap = require "moonrl.wrap"

local Base = envs.load_class("MountainCarContinuous-v0")

local GAMMA = 0.99
local SCALE = 10000   -- energy spans about 0.003 between the valley and the goal

-- ½v² + (0.0025/3)·sin(3x): the env's dynamics conserve it without force.
local function phi(obs)
  local x, v = obs[1], obs[2]
  return SCALE * (0.5 * v * v + 0.0025 / 3 * math.sin(3 * x))
end

local Shaped = {
  id = "MountainCarContinuous-v0+potential",
  observation_space = Base.observation_space,
  action_space = Base.action_space,
  max_episode_steps = Base.max_episode_steps,
}
Shaped.__index = Shaped

function Shaped.new(config)
  return wrap.potential(Base.new(config), phi, GAMMA)
end

return Shaped
