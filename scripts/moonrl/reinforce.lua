-- moonrl.reinforce — the vanilla policy gradient (Williams 1992) on complete
-- episodes, with the estimators and baselines of golden kind pg_gradient.
--
--   local agent = rl.reinforce{env = rl.make("CartPole-v1", {num_envs = 8}), seed = 1,
--                              estimator = "reward_to_go", baseline = "value",
--                              lr = 5e-3, batch_episodes = 8}
--   agent:learn(300000)
--
-- estimator: "reinforce"    ĝ = 1/N Σ_i (Σ_t ∇log π(a_t|s_t)) (R_i − b)
--            "reward_to_go" ĝ = 1/N Σ_i Σ_t ∇log π(a_t|s_t) (G_t − b_t)   (default)
-- baseline:  "none", "mean" (mean R_i, or mean G_t over the batch's steps),
--            "optimal" (per parameter, reinforce only), "value" (default:
--            b_t = V(s_t) from the critic, reward_to_go only; the critic is
--            then fitted by regression on the G_t with core.value_fit after
--            each policy step, so the baseline of a batch never saw its
--            returns).
--
-- Episodes.  Each update uses complete episodes only: collect() runs the
-- vecenv n_steps at a time (one C call for n_steps × num_envs steps) until
-- at least batch_episodes episodes have ended, and the update takes every
-- complete episode.  An episode still running in an env column when the
-- batch is full carries over to the next batch (moonrl.episodes), so no
-- env step is wasted; its first steps were then sampled by the policy
-- before the last update — one update of staleness, the usual price of
-- vectorised REINFORCE (rl.offpolicy corrects for it with the recorded
-- log-probs).  A time-limit truncation (CartPole-v1 at 500) is the end of
-- the data: the returns are the observed rewards, with no bootstrap.
--
-- Hyperparameters (numbers, or functions of progress — moonrl.schedule):
--   lr 5e-3 (Adam, policy), batch_episodes 8, n_steps 16 (rollout chunk,
--   read once), gamma 0.99, max_grad_norm 0 (off), normalize_advantages
--   false (standardise G_t − b_t over the batch's steps — then the update
--   is Σ_t Â_t ∇log π / N, pg_gradient's normalize_advantages; not with
--   baseline "optimal"), value_lr 1e-3, value_epochs 5, value_minibatch 64.
-- The gradient of pg_gradient is an ascent direction: core.pg_ascend puts
-- its negation into the policy's grad buffer and Adam descends on it.
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local core = require "moonrl.core"
local T = require "moonrl.trainer"
local episodes = require "moonrl.episodes"

local floor = math.floor

local R = T.class("reinforce", {
  n_steps = 16, batch_episodes = 8, gamma = 0.99, lr = 5e-3,
  max_grad_norm = 0, normalize_advantages = false,
  value_lr = 1e-3, value_epochs = 5, value_minibatch = 64,
})
R.aliases = {learning_rate = "lr", normalize_advantage = "normalize_advantages",
             episodes_per_batch = "batch_episodes"}
R.structural = {estimator = true, baseline = true}
R.csv_columns = {}
for i, c in ipairs(T.CSV_COLUMNS) do R.csv_columns[i] = c end
for _, c in ipairs({"batch_episodes", "batch_steps", "truncated"}) do
  R.csv_columns[#R.csv_columns + 1] = c
end

local ESTIMATORS = {reinforce = true, reward_to_go = true}
local BASELINES = {none = true, mean = true, optimal = true, value = true}
R.BASELINES = BASELINES

local function quote(v) return type(v) == "string" and ('"' .. v .. '"') or tostring(v) end

-- Checks the estimator/baseline pair (the rules of golden kind pg_gradient);
-- level is the error level of the constructor's caller.
function R.check_choice(name, est, base, estimators, normalize, level)
  if type(est) ~= "string" or not estimators[est] then
    local names = {}
    for k in pairs(estimators) do names[#names + 1] = '"' .. k .. '"' end
    table.sort(names)
    error(("%s: bad option 'estimator' (%s expected, got %s)")
          :format(name, table.concat(names, ", "), quote(est)), level)
  end
  if type(base) ~= "string" or not BASELINES[base] then
    error(("%s: bad option 'baseline' (\"none\", \"mean\", \"optimal\" or \"value\" expected, got %s)")
          :format(name, quote(base)), level)
  end
  local per_step = est == "reward_to_go" or est == "is_first_order"
  if est:sub(1, 3) == "is_" and est ~= "is_first_order" and base ~= "none" then
    error(("%s: option 'baseline' must be \"none\" with estimator %s (got %s)")
          :format(name, quote(est), quote(base)), level)
  end
  if base == "optimal" and est ~= "reinforce" then
    error(("%s: option 'baseline' \"optimal\" needs estimator \"reinforce\", not %s")
          :format(name, quote(est)), level)
  end
  if base == "value" and not per_step then
    error(("%s: option 'baseline' \"value\" needs a per-step estimator (\"reward_to_go\" or \"is_first_order\"), not %s")
          :format(name, quote(est)), level)
  end
  if normalize and base == "optimal" then
    error(name .. ": option 'normalize_advantages' cannot be used with baseline \"optimal\"", level)
  end
  if normalize and est:sub(1, 3) == "is_" and est ~= "is_first_order" then
    error(("%s: option 'normalize_advantages' needs estimator \"is_first_order\", not %s")
          :format(name, quote(est)), level)
  end
end

function R.init(self)
  local o = self.opts
  self.estimator = o.estimator or "reward_to_go"
  self.baseline = o.baseline or "value"
  -- normalize_advantages may be a schedule; judge its value at the start
  R.check_choice("reinforce", self.estimator, self.baseline, ESTIMATORS,
                 self:hpv("normalize_advantages") == true, 5)
  if self.obs_rms then
    error("reinforce: option 'normalize_obs' is not supported (wrap the env instead)", 5)
  end
  if self.rew_norm then
    error("reinforce: option 'normalize_reward' is not supported (wrap the env instead)", 5)
  end
  if require("moonrl.world").distributed then
    -- per-rank episode batches and critics: not reduced over ranks yet
    error("reinforce: distributed (MPI) runs are not supported", 5)
  end
  self.acc = episodes.new(self.num_envs, self.obs_dim, self.policy:action_width())
end

-- Collects until at least batch_episodes episodes are complete; the batch
-- (self.batch) holds every complete episode.  Returns the env steps taken.
-- `actor` is the policy that acts (the trainer's own by default).
function R:collect(callbacks)
  callbacks = callbacks or self._callbacks
  local env = self.env
  if self.need_reset then
    env:reset(self:_segment_seed(self.segment))
    self.need_reset = false
    self.acc:drop_partial()
  end
  local want = floor(self:hpv("batch_episodes"))
  if want < 1 then want = 1 end
  local actor = self.behavior or self.policy
  local k = self.n_steps * self.num_envs
  local n = 0
  while self.acc:count() < want do
    env:collect(self.rollout, actor)
    self.acc:add(self.rollout)
    self.steps_done = self.steps_done + k
    n = n + k
    self:_record_episodes(callbacks)
  end
  self.batch = self.acc:take()
  self.collected = true
  return n
end

-- Descends on the ascent direction ĝ (scaled by `scale`, default 1): the
-- policy's grad := −scale·ĝ, its norm clipped when asked, one optimiser
-- step (core.pg_ascend); returns the norm before clipping.
function R:_descend(ghat, scale)
  return core.pg_ascend(self.policy, self.policy_optim, ghat, {
    lr = self:hpv("lr"), max_grad_norm = self:hpv("max_grad_norm"), scale = scale or 1})
end

-- Fits the critic on the batch's reward-to-go (MC targets).
function R:_fit_value(b, G)
  return core.value_fit(self.value, self.value_optim, b.obs, core.tensor(G), {
    epochs = floor(self:hpv("value_epochs")), minibatch = floor(self:hpv("value_minibatch")),
    lr = self:hpv("value_lr"), rng = self.rng})
end

-- V(s_t) of every step of a batch, as a tensor [M] (a copy).
function R:_values(b)
  return core.tensor(self.value:forward(b.obs):reshape(b.steps))
end

function R:_update()
  local b = self.batch
  local p = self.policy
  local gamma = self:hpv("gamma")
  local est, base = self.estimator, self.baseline
  local normalize = self:hpv("normalize_advantages") == true
  local values = base == "value" and self:_values(b) or nil
  local G = episodes.reward_to_go(b, gamma)
  -- normalize_advantages: (G − b) standardised over the batch, in C
  local ghat = p:pg_gradient(b.obs, b.actions, b.rewards, nil, values, b.offsets,
                             {estimator = est, baseline = base, gamma = gamma,
                              normalize_advantages = normalize}, b.masks)
  local s = {grad_norm = self:_descend(ghat), lr = self:hpv("lr"),
             batch_episodes = b.nep, batch_steps = b.steps, truncated = b.truncated}
  if base == "value" then s.value_loss = self:_fit_value(b, G) end
  local _, ent = p:evaluate(b.obs, b.actions, nil, b.masks)
  s.entropy = ent:sum() / b.steps
  local r = 0
  for e = 1, b.nep do r = r + b.returns[e] end
  s.batch_return = r / b.nep
  self.batch = nil
  return s
end

return R
