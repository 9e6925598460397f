-- InvalidAction-v0: a masked-action test env in the spirit of sb3-contrib's
-- InvalidActionEnvDiscrete: an identity game over many actions, of which only
-- a few are valid at each step.  Runs in moonrl's env sandbox (`rng` global).
--
-- Each step is one round.  A target action t is drawn uniformly from 0..n-1,
-- and n_valid - 1 other distinct actions are drawn to be valid beside it; the
-- remaining n - n_valid actions are invalid this round.
--
-- Observation: box of 2n numbers in {0, 1}:
--   obs[1 .. n]       one-hot of the target (obs[t + 1] = 1)
--   obs[n+1 .. 2n]    the action mask (obs[n + a + 1] = 1 when action a is valid)
-- The mask is in the observation so that env:action_mask(obs) can be computed
-- from an observation alone (a policy fed masks reads the same bits).
--
-- Action: {type = "discrete", n = n}, 0-based.
--
-- Masks (Gymnasium/sb3-contrib conventions; 1 = valid, 0 = invalid, one
-- number per action, as Gymnasium's Taxi puts in info.action_mask):
--   info.action_mask     in the info of reset() and step(): the mask for the
--                        observation returned beside it
--   env:action_mask(obs, out)
--                        the mask for obs (a table of 2n numbers from this
--                        env) or, obs nil, for the current observation;
--                        written into `out` when given, else a new table
-- Every mask has at least one valid action (the target; n_valid >= 1).
--
-- Rewards: +1 for the target, 0 for another valid action, `invalid_reward`
-- (0 by default) for an invalid one (the step is still played: it sets
-- info.invalid_action = true and the round moves on).  An action outside
-- 0..n-1 or not an integer is an error.
--
-- The game ends (terminated) after ep_length rounds, so the episode return is
-- at most ep_length: the MAXIMUM RETURN is ep_length (20 by default), reached
-- by a policy that always plays the target.  A uniformly random valid action
-- earns ep_length / n_valid on average (4 by default); a uniformly random
-- action ep_length / n (0.4 by default).  With masks a learner only has to
-- find the target among n_valid valid actions; without them, among all n:
-- PPO without masks (moonrl train, 8 envs x 64 steps, lr 2e-3) averaged
-- about 12 of the 20 after 300k steps.  A bandit-style PPO probe (batches
-- of 512 steps, advantage = reward, clip 0.2, 4 epochs, seeds 1-3) reached a
-- mean reward per step of 0.99 in 58k-132k steps without masks and 22k-24k
-- with them; with n = 100, 0.68M-1.4M against 28k-32k.
--
-- config (all optional):
--   n              number of actions (50), 2 .. 1000
--   n_valid        valid actions per round, target included (5), 1 .. n
--   ep_length      rounds per episode (20)
--   invalid_reward reward for an invalid action (0)
--   seed           generator seed used when reset() is first given none

local Env = {}
Env.__index = Env

Env.id = "InvalidAction-v0"

local function spaces_for(n)
  local low, high = {}, {}
  for i = 1, 2 * n do low[i], high[i] = 0, 1 end
  return {type = "box", shape = {2 * n}, low = low, high = high},
         {type = "discrete", n = n}
end

Env.observation_space, Env.action_space = spaces_for(50)

local function int_in(v, lo, hi, name)
  if type(v) ~= "number" or v ~= math.floor(v) or v < lo or v > hi then
    error("InvalidAction-v0: config." .. name .. " must be an integer in " .. lo .. ".." .. hi
      .. ", got " .. tostring(v), 3)
  end
  return v
end

function Env.new(config)
  config = config or {}
  local self = setmetatable({config = config}, Env)
  self.n = int_in(config.n or 50, 2, 1000, "n")
  self.n_valid = int_in(config.n_valid or 5, 1, self.n, "n_valid")
  self.ep_length = int_in(config.ep_length or 20, 1, 1e9, "ep_length")
  local ir = config.invalid_reward or 0
  if type(ir) ~= "number" or ir ~= ir or ir == math.huge or ir == -math.huge then
    error("InvalidAction-v0: config.invalid_reward must be a finite number", 2)
  end
  self.invalid_reward = ir
  self.observation_space, self.action_space = spaces_for(self.n)
  self.mask = {}       -- mask[a + 1] = 1 for a valid action a, else 0
  self.order = {}      -- a permutation of 0..n-1: its first n_valid are valid
  return self
end

-- Draw the next round: the target and n_valid - 1 other valid actions, by a
-- partial Fisher-Yates shuffle of the permutation `order` (its first n_valid
-- entries win; from any starting permutation that is a uniform draw, so
-- `order` carries over from round to round and restarts at each reset).
function Env:_deal()
  local n, k, order, mask, r = self.n, self.n_valid, self.order, self.mask, self.rng
  for i = 1, k do mask[order[i] + 1] = 0 end
  for i = 1, k do
    local j = i + r:integer(n - i + 1)
    order[i], order[j] = order[j], order[i]
    mask[order[i] + 1] = 1
  end
  self.target = order[1]
end

function Env:_restart()
  local order, mask = self.order, self.mask
  for i = 1, self.n do order[i] = i - 1; mask[i] = 0 end
end

function Env:_write_obs(obs)
  local n, mask = self.n, self.mask
  for i = 1, n do
    obs[i] = 0
    obs[n + i] = mask[i]
  end
  obs[self.target + 1] = 1
  return obs
end

function Env:action_mask(obs, out)
  out = out or {}
  local n = self.n
  if obs ~= nil then
    if type(obs) ~= "table" or #obs ~= 2 * n then
      error("InvalidAction-v0: action_mask expects an observation of " .. 2 * n .. " numbers", 2)
    end
    for a = 1, n do out[a] = obs[n + a] ~= 0 and 1 or 0 end
    return out
  end
  if not self.target then error("InvalidAction-v0: call reset() before action_mask()", 2) end
  local mask = self.mask
  for i = 1, n do out[i] = mask[i] end
  return out
end

function Env:reset_into(seed, obs)
  if seed ~= nil or not self.rng then self.rng = rng.new(seed or self.config.seed or 0) end
  self.round = 0
  self:_restart()
  self:_deal()
  self:_write_obs(obs)
end

function Env:reset(seed)
  local obs = {}
  self:reset_into(seed, obs)
  return obs, {action_mask = self:action_mask()}
end

-- Plays one round; returns reward, terminated, whether the action was invalid.
local function play(self, action)
  if type(action) ~= "number" or action ~= math.floor(action) or action < 0 or action >= self.n then
    error("InvalidAction-v0: invalid action " .. tostring(action) .. " (expected an integer in 0.."
      .. self.n - 1 .. ")", 3)
  end
  if not self.target then error("InvalidAction-v0: call reset() before step()", 3) end
  local reward, invalid
  if action == self.target then
    reward, invalid = 1.0, false
  elseif self.mask[action + 1] == 1 then
    reward, invalid = 0.0, false
  else
    reward, invalid = self.invalid_reward, true
  end
  self.round = self.round + 1
  self:_deal()
  return reward, self.round >= self.ep_length, invalid
end

function Env:step(action)
  local reward, terminated, invalid = play(self, action)
  local obs = self:_write_obs({})
  return obs, reward, terminated, false, {action_mask = self:action_mask(), invalid_action = invalid}
end

function Env:step_into(action, obs)
  local reward, terminated = play(self, action)
  self:_write_obs(obs)
  return reward, terminated, false
end

-- state: {target, valid actions...} (0-based; the target is valid too)
function Env:set_state(s)
  if type(s) ~= "table" or #s < 1 then
    error("InvalidAction-v0: set_state expects {target, valid actions...}", 2)
  end
  if not self.rng then self.rng = rng.new(self.config.seed or 0) end
  self.round = self.round or 0
  local chosen = {}
  for i = 1, #s do
    local a = s[i]
    if type(a) ~= "number" or a ~= math.floor(a) or a < 0 or a >= self.n then
      error("InvalidAction-v0: set_state: action " .. tostring(a) .. " is not in 0.." .. self.n - 1, 2)
    end
    chosen[a] = true
  end
  if #s > self.n_valid then
    error("InvalidAction-v0: set_state: at most n_valid = " .. self.n_valid .. " valid actions", 2)
  end
  -- the permutation starts with the state's actions, so that the next deal
  -- replaces exactly them
  local order, k = self.order, 0
  for i = 1, #s do
    if chosen[s[i]] then k = k + 1; order[k] = s[i]; chosen[s[i]] = false end
  end
  for a = 0, self.n - 1 do
    if chosen[a] == nil then k = k + 1; order[k] = a end
  end
  for i = 1, self.n do self.mask[i] = 0 end
  for i = 1, #s do self.mask[s[i] + 1] = 1 end
  self.target = s[1]
  return self:_write_obs({})
end

-- The round as text: the target in brackets, valid actions listed.
function Env:render()
  if not self.target then return nil end
  local parts = {}
  for a = 0, self.n - 1 do
    if self.mask[a + 1] == 1 then parts[#parts + 1] = a == self.target and ("[" .. a .. "]") or tostring(a) end
  end
  return string.format("round %d/%d  valid: %s  (of %d actions)",
    math.min(self.round + 1, self.ep_length), self.ep_length,
    table.concat(parts, " "), self.n)
end

return Env
