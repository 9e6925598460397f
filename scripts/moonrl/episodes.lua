-- moonrl.episodes — complete episodes out of time-major vecenv rollouts,
-- for the Monte-Carlo trainers (moonrl.reinforce, moonrl.offpolicy).
--
--   local E = require "moonrl.episodes"
--   local acc = E.new(num_envs, obs_dim, action_width)
--   env:collect(rollout, policy)        -- [T][N] steps, envs auto-reset
--   acc:add(rollout)                    -- split each env column into episodes
--   if acc:count() >= 8 then
--     local b = acc:take()              -- every complete episode, concatenated
--     policy:pg_gradient(b.obs, b.actions, b.rewards, b.logp, nil, b.offsets, opts)
--   end
--
-- A rollout is time-major: row t holds step t of every env copy, and a copy
-- whose episode ends at step t (terminated or truncated) has already been
-- reset, so row t+1 starts its next episode.  The accumulator keeps one
-- partial episode per env column; an episode is complete at the step that
-- ends it and waits in a queue until take().  A partial episode carries over
-- to the next add(), so no step is thrown away.
--
-- Truncation (a time limit, e.g. CartPole-v1's 500 steps) ends the data as
-- termination does: the Monte-Carlo estimators use the rewards that were
-- observed and nothing else — there is no bootstrap from a value of the
-- final observation, which is not part of the pure estimators.  A batch
-- counts its truncated episodes (b.truncated).
--
-- A batch from take():
--   obs      tensor [M][obs_dim]   actions  tensor [M][action_width]
--   rewards  tensor [M]            logp     tensor [M]  (log π_β(a_t|s_t), the
--                                                       policy that acted)
--   offsets  Lua array of the nep 0-based episode starts (pg_gradient's ep_offsets)
--   nep, steps (M), lengths {…}, returns {…} (undiscounted, per episode),
--   truncated (count), rew (the rewards as a Lua array, 1-based)
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local core = require "moonrl.core"

local M = {}

local Acc = {}
Acc.__index = Acc
M.Acc = Acc

local function fresh()
  return {obs = {}, act = {}, rew = {}, logp = {}, mask = {}, n = 0}
end

function M.new(num_envs, obs_dim, width)
  local self = setmetatable({N = num_envs, D = obs_dim, W = width or 1,
                             cols = {}, done = {}}, Acc)
  for i = 1, num_envs do self.cols[i] = fresh() end
  return self
end

-- Complete episodes waiting to be taken.
function Acc:count() return #self.done end

-- Steps held in partial episodes.
function Acc:partial_steps()
  local s = 0
  for i = 1, self.N do s = s + self.cols[i].n end
  return s
end

-- Forgets the partial episodes (after the envs were reset).
function Acc:drop_partial()
  for i = 1, self.N do self.cols[i] = fresh() end
end

-- Forgets everything.
function Acc:clear()
  self:drop_partial()
  self.done = {}
end

-- Splits a collected rollout into the env columns' episodes.
function Acc:add(ro)
  local T, N, D, W = ro:steps(), self.N, self.D, self.W
  if ro:num_envs() ~= N then
    error(("episodes: the rollout has %d envs, the accumulator %d"):format(ro:num_envs(), N), 2)
  end
  local n = T * N
  -- one C call per field: flat Lua arrays are faster to read than tensors
  local obs = ro:field("obs"):reshape(n * D):totable()
  local act = ro:field("actions"):reshape(n * W):totable()
  local rew = ro:field("rewards"):reshape(n):totable()
  local logp = ro:field("logp"):reshape(n):totable()
  local term = ro:field("terminated"):reshape(n):totable()
  local trunc = ro:field("truncated"):reshape(n):totable()
  -- invalid-action masks, K per step, when the actions were drawn under them
  local rm = ro:masks()
  local K = rm and #rm[1][1] or 0
  local mask = rm and rm:reshape(n * K):totable()
  self.K = K
  local cols, done = self.cols, self.done
  for k = 1, n do
    local i = (k - 1) % N + 1
    local c = cols[i]
    local t = c.n
    local co, ca = c.obs, c.act
    local so, sa = (k - 1) * D, (k - 1) * W
    for j = 1, D do co[t * D + j] = obs[so + j] end
    for j = 1, W do ca[t * W + j] = act[sa + j] end
    if K > 0 then
      local cm, sm = c.mask, (k - 1) * K
      for j = 1, K do cm[t * K + j] = mask[sm + j] end
    end
    t = t + 1
    c.rew[t], c.logp[t], c.n = rew[k], logp[k], t
    local te, tr = term[k] ~= 0, trunc[k] ~= 0
    if te or tr then
      c.truncated = tr and not te
      done[#done + 1] = c
      cols[i] = fresh()
    end
  end
  return self
end

-- Takes the first `max` complete episodes (all when nil) as one batch, or
-- nil when none is complete.
function Acc:take(max)
  local done = self.done
  local k = #done
  if max and max < k then k = max end
  if k == 0 then return nil end
  local D, W, K = self.D, self.W, self.K or 0
  local obs, act, rew, logp, mask = {}, {}, {}, {}, {}
  local offsets, lengths, returns = {}, {}, {}
  local m, ntrunc = 0, 0
  for e = 1, k do
    local c = done[e]
    offsets[e] = m
    lengths[e] = c.n
    local s = 0
    for j = 1, c.n * D do obs[m * D + j] = c.obs[j] end
    for j = 1, c.n * W do act[m * W + j] = c.act[j] end
    for j = 1, c.n * K do mask[m * K + j] = c.mask[j] end
    for t = 1, c.n do
      local r = c.rew[t]
      rew[m + t], logp[m + t] = r, c.logp[t]
      s = s + r
    end
    returns[e] = s
    if c.truncated then ntrunc = ntrunc + 1 end
    m = m + c.n
  end
  -- the rest stay queued
  local rest = {}
  for e = k + 1, #done do rest[#rest + 1] = done[e] end
  self.done = rest
  return {
    obs = core.tensor(obs):reshape(m, D), actions = core.tensor(act):reshape(m, W),
    masks = K > 0 and core.tensor(mask):reshape(m, K) or nil,
    rewards = core.tensor(rew), logp = core.tensor(logp), rew = rew,
    offsets = offsets, nep = k, steps = m, lengths = lengths, returns = returns,
    truncated = ntrunc,
  }
end

-- Discounted reward-to-go G_t of every step of a batch, a tensor [M]: the
-- C returns (golden kind returns) over each episode's rows.
function M.reward_to_go(b, gamma)
  local G, offs = core.zeros(b.steps), b.offsets
  for e = 1, b.nep do
    local first = offs[e]
    local len = (offs[e + 1] or b.steps) - first
    G:view(first + 1, len):copy((core.returns(b.rewards:view(first + 1, len), gamma)))
  end
  return G
end

return M
