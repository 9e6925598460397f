-- MiniGolf-v0: a hybrid-action game: each stroke picks a club (discrete) and
-- a swing power (continuous).  Runs in moonrl's env sandbox (`rng` global).
--
-- The ball starts d0 metres from the hole, d0 uniform in [2, 20].  A stroke
-- with club k and power p in [-1, 1] carries the ball
--     carry = lo_k + (hi_k - lo_k) * (p + 1) / 2
-- metres along the line to the hole; the ball overshoots when the carry is
-- longer, so the distance left is |d - carry|.  The ball drops when that is
-- at most 1 m (the cup's radius here): the episode terminates.
--
--   club   0 putter  1 wedge  2 iron   3 driver
--   range  0..4      3..9     8..15    14..22   (metres, lo_k..hi_k)
--
-- Action: {type = "hybrid", parts = {{type = "discrete", n = 4},
--          {type = "box", shape = {1}, low = {-1}, high = {1}}}}; an element
-- is {club, power} with club an integer 0..3 and power a number or a
-- one-element array ({club, {power}}), as Gymnasium's Tuple(Discrete, Box)
-- gives (int, array).  The power is clipped to [-1, 1]; a non-integer club
-- or a non-finite power is an error.  Both parts matter: no club reaches
-- every distance, and a power off by more than 1 m of carry misses.
--
-- Observation: box of 5 numbers:
--   obs[1]        d / 20, the distance left (0 .. 1.1)
--   obs[1 + k]    for each club k, the power that would carry it exactly to
--                 the hole, clipped to [-2, 2] (|value| <= 1: the club can
--                 reach; a caddie's reading of the distance)
--
-- Rewards: -1 per stroke, so the return is minus the number of strokes.
-- MAXIMUM RETURN is -1 (a hole in one: always possible, with the club whose
-- range holds d and the power obs[1 + k]).  Registered time limit: 10
-- strokes (truncated).  RETURN TARGET: mean return >= -1.4.  For scale
-- (2000 episodes each): a uniformly random policy averages about -6.5; one
-- club with the exact power about -5.4; the right club at power 0 (the
-- middle of its range) about -1.64; the right club with a power error of
-- N(0, 0.3) about -1.33, of N(0, 0.1) about -1.01.  PPO (moonrl train, 8
-- envs x 64 steps) with the power cut into 21 levels, as one categorical of
-- 84 joint actions, averaged -1.2 after 50k steps.
--
-- config (all optional):
--   seed      generator seed used when reset() is first given none

local Env = {}
Env.__index = Env

Env.id = "MiniGolf-v0"
Env.max_episode_steps = 10

local CLUBS = {{0, 4}, {3, 9}, {8, 15}, {14, 22}}   -- lo, hi of clubs 0..3
local CUP = 1.0
local D_MIN, D_MAX, SCALE = 2.0, 20.0, 20.0
local NCLUB = #CLUBS

Env.observation_space = {type = "box", shape = {5},
  low = {0, -2, -2, -2, -2}, high = {22 / SCALE, 2, 2, 2, 2}}
Env.action_space = {type = "hybrid", parts = {
  {type = "discrete", n = NCLUB},
  {type = "box", shape = {1}, low = {-1}, high = {1}},
}}

function Env.new(config)
  return setmetatable({config = config or {}}, Env)
end

-- The power that carries club k (1-based) exactly d, clipped to [-2, 2].
local function exact_power(k, d)
  local lo, hi = CLUBS[k][1], CLUBS[k][2]
  local p = 2 * (d - lo) / (hi - lo) - 1
  if p < -2 then p = -2 elseif p > 2 then p = 2 end
  return p
end
Env.exact_power = function(club, d) return exact_power(club + 1, d) end

function Env:_write_obs(obs)
  local d = self.d
  obs[1] = d / SCALE
  for k = 1, NCLUB do obs[1 + k] = exact_power(k, d) end
  return obs
end

function Env:reset_into(seed, obs)
  if seed ~= nil or not self.rng then self.rng = rng.new(seed or self.config.seed or 0) end
  self.d = self.rng:uniform(D_MIN, D_MAX)
  self.strokes = 0
  self.holed = false
  self:_write_obs(obs)
end

function Env:reset(seed)
  local obs = {}
  self:reset_into(seed, obs)
  return obs, {}
end

local function bad(a)
  local s = tostring(a)
  if type(a) == "table" then
    local p = type(a[2]) == "table" and "{" .. tostring(a[2][1]) .. "}" or tostring(a[2])
    s = "{" .. tostring(a[1]) .. ", " .. p .. "}"
  end
  error("MiniGolf-v0: invalid action " .. s .. " (expected {club 0.." .. NCLUB - 1
    .. ", power in [-1, 1]})", 4)
end

-- Plays one stroke; returns reward, terminated, carry.
local function play(self, a)
  if type(a) ~= "table" then bad(a) end
  local club, p = a[1], a[2]
  if type(p) == "table" then
    if #p ~= 1 then bad(a) end
    p = p[1]
  end
  if type(club) ~= "number" or club ~= math.floor(club) or club < 0 or club >= NCLUB then bad(a) end
  if type(p) ~= "number" or p ~= p or p == math.huge or p == -math.huge then bad(a) end
  if self.d == nil then error("MiniGolf-v0: call reset() before step()", 3) end
  if self.holed then return 0.0, true, 0.0 end   -- stepping past the end pays nothing
  if p < -1 then p = -1 elseif p > 1 then p = 1 end
  local lo, hi = CLUBS[club + 1][1], CLUBS[club + 1][2]
  local carry = lo + (hi - lo) * (p + 1) / 2
  self.d = math.abs(self.d - carry)
  self.strokes = self.strokes + 1
  if self.d <= CUP then
    self.holed = true
    self.d = 0
  end
  return -1.0, self.holed, carry
end

function Env:step(action)
  local reward, terminated, carry = play(self, action)
  return self:_write_obs({}), reward, terminated, false, {carry = carry, strokes = self.strokes}
end

function Env:step_into(action, obs)
  local reward, terminated = play(self, action)
  self:_write_obs(obs)
  return reward, terminated, false
end

-- state: {distance left} in metres
function Env:set_state(s)
  local d = type(s) == "table" and s[1] or nil
  if type(d) ~= "number" or not (d >= 0 and d <= 22) then
    error("MiniGolf-v0: set_state expects {distance} with 0 <= distance <= 22", 2)
  end
  if not self.rng then self.rng = rng.new(self.config.seed or 0) end
  self.d, self.strokes, self.holed = d, self.strokes or 0, d <= CUP
  return self:_write_obs({})
end

-- The fairway as text: o the ball, | the hole, one character per metre.
function Env:render()
  if self.d == nil then return nil end
  local n = math.floor(self.d + 0.5)
  local line = self.holed and "(holed)" or ("o" .. string.rep(".", n) .. "|")
  return string.format("%-26s %5.2f m to the hole, stroke %d", line, self.d, self.strokes)
end

return Env
