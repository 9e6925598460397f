-- moonrl.wrap: wrappers over one env object.  Each returns a new env-like
-- object (reset, step, set_state, close; observation_space, action_space,
-- id, max_episode_steps; `env` the wrapped object, `unwrapped` the
-- innermost one), so wrappers nest.
--
--   wrap.shape_reward(env, fn)      reward <- fn(obs, action, reward, next_obs,
--                                                terminated, truncated, info)
--   wrap.potential(env, phi, gamma) reward + gamma*phi(s') - phi(s), phi(s') = 0
--                                   on termination (Ng, Harada & Russell 1999)
--   wrap.normalize_obs(env, {clip = 10, epsilon = 1e-8, training = true})
--   wrap.scale_reward(env, {gamma = 0.99, epsilon = 1e-8, training = true})
--   wrap.time_limit(env, max_steps)
--   wrap.clip_action(env)
--   wrap.frame_stack(env, k)
--   wrap.RunningMeanStd.new(dim)    the running statistics both normalisers use
--
-- The normalisers keep their statistics in `w.rms` (rms:get_state() /
-- rms:set_state(t), also w:get_stats() / w:set_stats(t)) so that they can be
-- saved with a policy; `w.training = false` freezes them.  (w:set_state
-- stays the env method: it sets the physical state.)
--
-- Written in the common subset of Lua 5.1/LuaJIT and 5.4.

local wrap = {}

local huge = math.huge
local sqrt = math.sqrt

local function is_finite(x)
  return type(x) == "number" and x == x and x ~= huge and x ~= -huge
end

local function check_env(env, who)
  if type(env) ~= "table" or type(env.reset) ~= "function" or type(env.step) ~= "function" then
    error("wrap." .. who .. ": bad argument #1 (expected an env with reset and step, got "
      .. type(env) .. ")", 3)
  end
end

local function copy_array(t)
  local c = {}
  for i = 1, #t do c[i] = t[i] end
  return c
end

---------------------------------------------------------------- base

local Wrapper = {}
Wrapper.__index = Wrapper

local function class()
  local c = setmetatable({}, {__index = Wrapper})
  c.__index = c
  return c
end

-- The inner env's invalid-action mask, on wrappers of an env that has one
-- (the engine and rl.agent look for the method itself).
local function forward_mask(self, obs, out) return self.env:action_mask(obs, out) end

local function new(cls, env, who)
  check_env(env, who)
  return setmetatable({
    env = env,
    unwrapped = env.unwrapped or env,
    id = env.id,
    observation_space = env.observation_space,
    action_space = env.action_space,
    max_episode_steps = env.max_episode_steps,
    action_mask = type(env.action_mask) == "function" and forward_mask or nil,
  }, cls)
end

function Wrapper:reset(seed) return self.env:reset(seed) end
function Wrapper:step(action) return self.env:step(action) end

function Wrapper:set_state(state)
  if type(self.env.set_state) ~= "function" then
    error(tostring(self.id) .. ": the wrapped env has no set_state method", 2)
  end
  return self.env:set_state(state)
end

-- A text picture of the inner env, or nil when it draws none.
function Wrapper:render()
  if type(self.env.render) == "function" then return self.env:render() end
end

function Wrapper:close()
  if type(self.env.close) == "function" then return self.env:close() end
end

---------------------------------------------------------------- reward shaping

local ShapeReward = class()

function wrap.shape_reward(env, fn)
  if type(fn) ~= "function" then
    error("wrap.shape_reward: bad argument #2 (expected a function, got " .. type(fn) .. ")", 2)
  end
  local w = new(ShapeReward, env, "shape_reward")
  w.fn = fn
  return w
end

function ShapeReward:reset(seed)
  local obs, info = self.env:reset(seed)
  self.obs = obs
  return obs, info
end

function ShapeReward:set_state(state)
  self.obs = Wrapper.set_state(self, state)
  return self.obs
end

function ShapeReward:step(action)
  local nobs, r, term, trunc, info = self.env:step(action)
  local shaped = self.fn(self.obs, action, r, nobs, term, trunc, info)
  if not is_finite(shaped) then
    error(tostring(self.id) .. ": shape_reward function returned " .. tostring(shaped)
      .. " (expected a finite number)", 2)
  end
  self.obs = nobs
  return nobs, shaped, term, trunc, info
end

local Potential = class()

-- F = gamma*phi(s') - phi(s) added to the reward; it leaves the optimal
-- policy unchanged.  phi(s') is 0 on termination (the absorbing state), but
-- not on truncation, where the episode merely stops being observed.
function wrap.potential(env, phi, gamma)
  if type(phi) ~= "function" then
    error("wrap.potential: bad argument #2 (expected a function phi(obs), got " .. type(phi) .. ")", 2)
  end
  if type(gamma) ~= "number" or not (gamma >= 0 and gamma <= 1) then
    error("wrap.potential: bad argument #3 (expected gamma in [0, 1], got " .. tostring(gamma) .. ")", 2)
  end
  local w = new(Potential, env, "potential")
  w.phi, w.gamma = phi, gamma
  return w
end

function Potential:_phi(obs)
  local v = self.phi(obs)
  if not is_finite(v) then
    error(tostring(self.id) .. ": potential phi returned " .. tostring(v) .. " (expected a finite number)", 3)
  end
  return v
end

function Potential:reset(seed)
  local obs, info = self.env:reset(seed)
  self.obs, self.last_phi = obs, self:_phi(obs)
  return obs, info
end

function Potential:set_state(state)
  local obs = Wrapper.set_state(self, state)
  self.obs, self.last_phi = obs, self:_phi(obs)
  return obs
end

function Potential:step(action)
  if self.last_phi == nil then error(tostring(self.id) .. ": call reset() before step()", 2) end
  local nobs, r, term, trunc, info = self.env:step(action)
  local next_phi = term and 0.0 or self:_phi(nobs)
  local shaped = r + self.gamma * next_phi - self.last_phi
  self.obs, self.last_phi = nobs, next_phi
  return nobs, shaped, term, trunc, info
end

---------------------------------------------------------------- running statistics

-- Per-dimension running mean and variance: a thin view of core.rms (the
-- merge is the C runtime's, Stable-Baselines3's RunningMeanStd: mean 0,
-- var 1 and a pseudo-count of 1e-4 at start, so early normalisation is
-- finite).  rms.mean, rms.var and rms.count read the handle.
local core_
local function core()
  if not core_ then core_ = require "moonrl.core" end
  return core_
end

local RunningMeanStd = {}
wrap.RunningMeanStd = RunningMeanStd
local RMS_FIELDS = {mean = true, var = true, count = true}
RunningMeanStd.__index = function(self, k)
  if RMS_FIELDS[k] then return self.h:state()[k] end
  return RunningMeanStd[k]
end

function RunningMeanStd.new(dim)
  return setmetatable({dim = dim, h = core().rms(dim)}, RunningMeanStd)
end

-- x: one observation; rows: a list of them (e.g. one per env of a vector)
function RunningMeanStd:update(x) self.h:update(x) end
function RunningMeanStd:update_batch(rows)
  if #rows > 0 then self.h:update(rows) end
end

-- clip((x - mean) / sqrt(var + epsilon), ±clip) as a table.
function RunningMeanStd:normalize(x, clip, epsilon)
  return self.h:normalize(x, clip, epsilon):totable()
end

function RunningMeanStd:get_state() return self.h:state() end

function RunningMeanStd:set_state(t)
  local ok, err = pcall(self.h.set_state, self.h, t)
  if not ok then
    error("RunningMeanStd:set_state: " .. tostring(err) .. " (expected {mean = ["
          .. self.dim .. "], var = [" .. self.dim .. "], count > 0})", 2)
  end
end

---------------------------------------------------------------- normalisers

local NormalizeObs = class()

function wrap.normalize_obs(env, opts)
  opts = opts or {}
  local w = new(NormalizeObs, env, "normalize_obs")
  local space = w.observation_space
  if type(space) ~= "table" or space.type ~= "box" then
    error("wrap.normalize_obs: the env's observation_space must be a box", 2)
  end
  local dim = 1
  for i = 1, #space.shape do dim = dim * space.shape[i] end
  w.clip = opts.clip or 10.0
  w.epsilon = opts.epsilon or 1e-8
  w.training = opts.training ~= false
  w.rms = RunningMeanStd.new(dim)
  -- normalised observations live in [-clip, clip]
  local low, high = {}, {}
  for i = 1, dim do low[i], high[i] = -w.clip, w.clip end
  w.observation_space = {type = "box", shape = {dim}, low = low, high = high}
  return w
end

-- (obs - mean) / sqrt(var + epsilon), clipped; does not update statistics.
function NormalizeObs:normalize(obs)
  return self.rms:normalize(obs, self.clip, self.epsilon)
end

function NormalizeObs:_observe(obs)
  if self.training then self.rms:update(obs) end
  return self:normalize(obs)
end

function NormalizeObs:reset(seed)
  local obs, info = self.env:reset(seed)
  return self:_observe(obs), info
end

function NormalizeObs:set_state(state)
  return self:_observe(Wrapper.set_state(self, state))
end

function NormalizeObs:step(action)
  local obs, r, term, trunc, info = self.env:step(action)
  return self:_observe(obs), r, term, trunc, info
end

function NormalizeObs:get_stats() return self.rms:get_state() end
function NormalizeObs:set_stats(t) self.rms:set_state(t) end

local ScaleReward = class()

-- Gymnasium's NormalizeReward: rewards are divided by the running std of
-- the discounted return, accumulated as G <- G*gamma*(1 - terminated) + r.
function wrap.scale_reward(env, opts)
  opts = opts or {}
  local w = new(ScaleReward, env, "scale_reward")
  local gamma = opts.gamma or 0.99
  if type(gamma) ~= "number" or not (gamma >= 0 and gamma <= 1) then
    error("wrap.scale_reward: gamma must be in [0, 1], got " .. tostring(gamma), 2)
  end
  w.gamma = gamma
  w.epsilon = opts.epsilon or 1e-8
  w.training = opts.training ~= false
  w.rms = RunningMeanStd.new(1)
  w.discounted = 0.0
  return w
end

function ScaleReward:step(action)
  local obs, r, term, trunc, info = self.env:step(action)
  self.discounted = self.discounted * self.gamma * (term and 0 or 1) + r
  if self.training then self.rms:update({self.discounted}) end
  return obs, r / sqrt(self.rms.var[1] + self.epsilon), term, trunc, info
end

function ScaleReward:get_stats() return self.rms:get_state() end
function ScaleReward:set_stats(t) self.rms:set_state(t) end

---------------------------------------------------------------- time limit

local TimeLimit = class()

-- truncated = true on the max_steps-th step since reset, unless that step
-- terminated (then the episode ended on its own: no bootstrap).
function wrap.time_limit(env, max_steps)
  if type(max_steps) ~= "number" or max_steps < 1 or max_steps ~= math.floor(max_steps) then
    error("wrap.time_limit: bad argument #2 (expected a positive integer, got " .. tostring(max_steps) .. ")", 2)
  end
  local w = new(TimeLimit, env, "time_limit")
  w.max_episode_steps = max_steps
  return w
end

function TimeLimit:reset(seed)
  self.elapsed = 0
  return self.env:reset(seed)
end

-- Setting the state does not restart the step count (only reset does).
function TimeLimit:set_state(state)
  self.elapsed = self.elapsed or 0
  return Wrapper.set_state(self, state)
end

function TimeLimit:step(action)
  if self.elapsed == nil then error(tostring(self.id) .. ": call reset() before step()", 2) end
  local obs, r, term, trunc, info = self.env:step(action)
  self.elapsed = self.elapsed + 1
  if self.elapsed >= self.max_episode_steps and not term then trunc = true end
  return obs, r, term, trunc, info
end

---------------------------------------------------------------- actions

local ClipAction = class()

-- Clip a box action into [low, high] before the env sees it.  The action
-- space is forwarded unchanged (its bounds are the clipping range).
function wrap.clip_action(env)
  local w = new(ClipAction, env, "clip_action")
  local s = w.action_space
  if type(s) ~= "table" or s.type ~= "box" then
    error("wrap.clip_action: the env's action_space must be a box, got "
      .. tostring(type(s) == "table" and s.type or s), 2)
  end
  w.low, w.high = s.low, s.high
  return w
end

function ClipAction:step(action)
  if type(action) == "number" then action = {action} end
  if type(action) ~= "table" or #action ~= #self.low then
    error(tostring(self.id) .. ": clip_action expects an array of " .. #self.low .. " numbers", 2)
  end
  local a = {}
  for i = 1, #self.low do
    local v = action[i]
    if type(v) ~= "number" or v ~= v then
      error(tostring(self.id) .. ": action[" .. i .. "] is " .. tostring(v) .. " (expected a number)", 2)
    end
    if v < self.low[i] then v = self.low[i] elseif v > self.high[i] then v = self.high[i] end
    a[i] = v
  end
  return self.env:step(a)
end

---------------------------------------------------------------- frame stack

local FrameStack = class()

-- Observations become the last k flat observations concatenated, oldest
-- first; reset (and set_state) fill all k slots with the first one.
function wrap.frame_stack(env, k)
  if type(k) ~= "number" or k < 1 or k ~= math.floor(k) then
    error("wrap.frame_stack: bad argument #2 (expected a positive integer, got " .. tostring(k) .. ")", 2)
  end
  local w = new(FrameStack, env, "frame_stack")
  local s = w.observation_space
  if type(s) ~= "table" or s.type ~= "box" then
    error("wrap.frame_stack: the env's observation_space must be a box", 2)
  end
  local d = #s.low
  local low, high = {}, {}
  for j = 0, k - 1 do
    for i = 1, d do low[j * d + i], high[j * d + i] = s.low[i], s.high[i] end
  end
  w.k, w.dim = k, d
  w.observation_space = {type = "box", shape = {k * d}, low = low, high = high}
  return w
end

function FrameStack:_stacked()
  local out, d = {}, self.dim
  for j = 1, self.k do
    local f = self.frames[j]
    for i = 1, d do out[(j - 1) * d + i] = f[i] end
  end
  return out
end

function FrameStack:_fill(obs)
  self.frames = {}
  for j = 1, self.k do self.frames[j] = copy_array(obs) end
  return self:_stacked()
end

function FrameStack:reset(seed)
  local obs, info = self.env:reset(seed)
  return self:_fill(obs), info
end

function FrameStack:set_state(state)
  return self:_fill(Wrapper.set_state(self, state))
end

function FrameStack:step(action)
  if not self.frames then error(tostring(self.id) .. ": call reset() before step()", 2) end
  local obs, r, term, trunc, info = self.env:step(action)
  table.remove(self.frames, 1)
  self.frames[self.k] = copy_array(obs)
  return self:_stacked(), r, term, trunc, info
end

return wrap
