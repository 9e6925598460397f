-- Skirmish-v0: a small multi-discrete action game.  A character on a track of
-- `width` cells moves left/right, jumps over shockwaves and shoots at one of
-- `targets` targets, all in the same step.  Runs in moonrl's env sandbox
-- (`rng` global).
--
-- Action: {type = "multi_discrete", nvec = {3, 2, targets + 1}}, an array of
-- three 0-based integers {move, jump, shoot}:
--   move   0 left, 1 stay, 2 right
--   jump   0 stay on the ground, 1 jump (costs 0.2)
--   shoot  0 hold fire, k = 1..targets fire at target k
--
-- One step, in order:
--   1. move: the player steps one cell (a move into the track's end is
--      invalid: the player stays).
--   2. jump: jumping costs -0.2.
--   3. shockwave: if the observation announced one, a player on the ground
--      is hit: -1.
--   4. shoot: firing at target k hits when |player - target_k| <= 1 (after
--      the move): +1, and target k reappears on a random free cell at least 3
--      cells from the player.  Any shot, hit or miss, empties the gun: it
--      reloads during the next step, when firing is invalid (no shot, no cost).
--   5. a shockwave for the next step is announced with probability 0.25.
-- Invalid choices (moving into an end, firing while reloading) act as
-- stay/hold, pay nothing and set info.invalid_action = true.
--
-- Observation: box of width + targets*(2*width - 1) + 2 numbers in {0, 1}:
--   the player's cell, one-hot (width)
--   for each target k, its offset target_k - player, one-hot over
--     -(width-1) .. width-1 (2*width - 1 each)
--   1 if a shockwave comes this step
--   1 if the gun is reloading (firing is invalid this step)
--
-- Masks per component (sb3-contrib's MultiDiscrete convention: the
-- components' masks concatenated, 3 + 2 + targets + 1 numbers, 1 = valid):
-- info.action_mask in reset() and step() infos, and env:action_mask(obs, out)
-- (from an observation of this env, or the current state when obs is nil).
-- Moving into an end and firing while reloading are masked; every component
-- always has a valid choice.
--
-- Every component matters: standing still, never jumping, always jumping or
-- firing at random each cost a large part of the return (tests/lua/
-- game_envs_spec.lua plays these policies).  The game never terminates; the
-- registered time limit is 50 steps (truncated).
-- RETURN TARGET: mean return >= 14 over 50-step episodes.  For scale (400
-- episodes each): a scripted greedy player (jump exactly on shockwaves, shoot
-- a target in range, else walk to the nearest) averages about 14.2; the same
-- player never jumping 4.2, always jumping 6.7, standing still -2.5, firing
-- at random 4.1; a uniformly random policy -9.4.  PPO (moonrl train, 8 envs x
-- 64 steps, lr 2e-3) on the 24 joint actions as one categorical passed 14 in
-- about 70k steps and averaged 16-16.8 from 150k to 300k steps.
--
-- config (all optional):
--   width     track length (10), 5 .. 50
--   targets   number of targets (3), 1 .. 5
--   shock_p   probability of a shockwave each step (0.25)
--   seed      generator seed used when reset() is first given none

local Env = {}
Env.__index = Env

Env.id = "Skirmish-v0"
Env.max_episode_steps = 50

local JUMP_COST = 0.2
local SHOCK_HIT = 1.0
local RANGE = 1
local RESPAWN_MIN = 3

local function spaces_for(width, k)
  local n = width + k * (2 * width - 1) + 2
  local low, high = {}, {}
  for i = 1, n do low[i], high[i] = 0, 1 end
  return {type = "box", shape = {n}, low = low, high = high},
         {type = "multi_discrete", nvec = {3, 2, k + 1}}
end

Env.observation_space, Env.action_space = spaces_for(10, 3)

local function int_in(v, lo, hi, name)
  if type(v) ~= "number" or v ~= math.floor(v) or v < lo or v > hi then
    error("Skirmish-v0: config." .. name .. " must be an integer in " .. lo .. ".." .. hi
      .. ", got " .. tostring(v), 3)
  end
  return v
end

function Env.new(config)
  config = config or {}
  local self = setmetatable({config = config}, Env)
  self.width = int_in(config.width or 10, 5, 50, "width")
  self.k = int_in(config.targets or 3, 1, 5, "targets")
  local p = config.shock_p or 0.25
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    error("Skirmish-v0: config.shock_p must be a probability in [0, 1]", 2)
  end
  self.shock_p = p
  self.observation_space, self.action_space = spaces_for(self.width, self.k)
  self.obs_dim = self.observation_space.shape[1]
  self.tx = {}
  return self
end

-- A uniformly random cell at least RESPAWN_MIN from the player and free of
-- the other targets (target `skip` excluded); nearer cells when none is.
function Env:_respawn(skip)
  local free, w = {}, self.width
  for pass = 1, 2 do
    for x = 0, w - 1 do
      local ok = pass == 2 or math.abs(x - self.px) >= RESPAWN_MIN
      for j = 1, self.k do
        if j ~= skip and self.tx[j] == x then ok = false end
      end
      if ok then free[#free + 1] = x end
    end
    if #free > 0 then break end
  end
  return free[self.rng:integer(#free) + 1]
end

function Env:_write_obs(obs)
  local w = self.width
  for i = 1, self.obs_dim do obs[i] = 0 end
  obs[self.px + 1] = 1
  for j = 1, self.k do
    local base = w + (j - 1) * (2 * w - 1)
    obs[base + (self.tx[j] - self.px) + w] = 1
  end
  obs[self.obs_dim - 1] = self.shock and 1 or 0
  obs[self.obs_dim] = self.reloading and 1 or 0
  return obs
end

function Env:reset_into(seed, obs)
  if seed ~= nil or not self.rng then self.rng = rng.new(seed or self.config.seed or 0) end
  local r = self.rng
  self.px = r:integer(self.width)
  for j = 1, self.k do self.tx[j] = nil end
  for j = 1, self.k do self.tx[j] = self:_respawn(j) end
  self.shock = r:random() < self.shock_p
  self.reloading = false
  self:_write_obs(obs)
end

function Env:reset(seed)
  local obs = {}
  self:reset_into(seed, obs)
  return obs, {action_mask = self:action_mask()}
end

function Env:action_mask(obs, out)
  out = out or {}
  local w, k = self.width, self.k
  local px, reloading
  if obs ~= nil then
    if type(obs) ~= "table" or #obs ~= self.obs_dim then
      error("Skirmish-v0: action_mask expects an observation of " .. self.obs_dim .. " numbers", 2)
    end
    for x = 0, w - 1 do if obs[x + 1] ~= 0 then px = x end end
    if px == nil then error("Skirmish-v0: action_mask: the observation shows no player", 2) end
    reloading = obs[self.obs_dim] ~= 0
  else
    if self.px == nil then error("Skirmish-v0: call reset() before action_mask()", 2) end
    px, reloading = self.px, self.reloading
  end
  out[1] = px > 0 and 1 or 0
  out[2] = 1
  out[3] = px < w - 1 and 1 or 0
  out[4], out[5] = 1, 1
  out[6] = 1
  for j = 1, k do out[6 + j] = reloading and 0 or 1 end
  return out
end

local function component(a, i, n)
  local v = a[i]
  if type(v) ~= "number" or v ~= math.floor(v) or v < 0 or v >= n then return nil end
  return v
end

-- One step of the rules above; returns reward, whether a choice was invalid.
local function play(self, a)
  local move, jump, shoot
  if type(a) == "table" and #a == 3 then
    move, jump, shoot = component(a, 1, 3), component(a, 2, 2), component(a, 3, self.k + 1)
  end
  if move == nil or jump == nil or shoot == nil then
    local shown = type(a) == "table" and "{" .. table.concat((function()
      local t = {}
      for i = 1, #a do t[i] = tostring(a[i]) end
      return t
    end)(), ", ") .. "}" or tostring(a)
    error("Skirmish-v0: invalid action " .. shown .. " (expected {move 0..2, jump 0..1, shoot 0.."
      .. self.k .. "})", 3)
  end
  if self.px == nil then error("Skirmish-v0: call reset() before step()", 3) end
  local reward, invalid = 0.0, false
  local x = self.px + move - 1
  if x < 0 or x >= self.width then invalid = true else self.px = x end
  if jump == 1 then reward = reward - JUMP_COST end
  if self.shock and jump == 0 then reward = reward - SHOCK_HIT end
  if shoot > 0 then
    if self.reloading then
      invalid = true
      self.reloading = false
    else
      if math.abs(self.tx[shoot] - self.px) <= RANGE then
        reward = reward + 1.0
        self.tx[shoot] = self:_respawn(shoot)
      end
      self.reloading = true
    end
  else
    self.reloading = false
  end
  self.shock = self.rng:random() < self.shock_p
  return reward, invalid
end

function Env:step(action)
  local reward, invalid = play(self, action)
  return self:_write_obs({}), reward, false, false,
    {action_mask = self:action_mask(), invalid_action = invalid}
end

function Env:step_into(action, obs)
  local reward = play(self, action)
  self:_write_obs(obs)
  return reward, false, false
end

-- state: {player, {target cells...}, shock (bool), reloading (bool)}, 0-based cells
function Env:set_state(s)
  if type(s) ~= "table" or type(s[1]) ~= "number" or type(s[2]) ~= "table" or #s[2] ~= self.k then
    error("Skirmish-v0: set_state expects {player, {" .. self.k .. " target cells}, shock, reloading}", 2)
  end
  local function cell(v)
    if type(v) ~= "number" or v ~= math.floor(v) or v < 0 or v >= self.width then
      error("Skirmish-v0: set_state: cell " .. tostring(v) .. " is not in 0.." .. self.width - 1, 3)
    end
    return v
  end
  if not self.rng then self.rng = rng.new(self.config.seed or 0) end
  self.px = cell(s[1])
  for j = 1, self.k do self.tx[j] = cell(s[2][j]) end
  self.shock = s[3] and true or false
  self.reloading = s[4] and true or false
  return self:_write_obs({})
end

-- The track as text: P the player, digits the targets (P2: target 2 at the
-- player's cell), then whether a shockwave comes and the gun's state.
function Env:render()
  if self.px == nil then return nil end
  local cells = {}
  for x = 0, self.width - 1 do cells[x + 1] = "_" end
  for j = 1, self.k do cells[self.tx[j] + 1] = tostring(j) end
  cells[self.px + 1] = cells[self.px + 1] == "_" and "P" or "P" .. cells[self.px + 1]
  return string.format("%s  %s%s", table.concat(cells, " "),
    self.shock and "~shockwave~ " or "", self.reloading and "reloading" or "loaded")
end

return Env
