-- moonrl.offpolicy — the policy gradient with importance sampling: batches
-- of complete episodes are kept and reused for several updates after the
-- policy that collected them has moved on.
--
--   local agent = rl.offpolicy{env = rl.make("CartPole-v1", {num_envs = 8}), seed = 1,
--                              estimator = "is_first_order", baseline = "value",
--                              keep = 4, reuse = 4, weight_clip = 2}
--   agent:learn(200000, {on_update = function(s) print(s.mean_ratio, s.ess_ratio, s.kl) end})
--
-- Each collect() gathers one batch of ≥ batch_episodes complete episodes
-- exactly as rl.reinforce does (moonrl.episodes), with the log-probs of the
-- policy that acted (the rollout's logp field: the behaviour log-prob
-- log π_β(a_t|s_t)).  The update keeps the last `keep` batches (K) and
-- takes `reuse` gradient steps; every step evaluates each kept batch with
-- policy:pg_gradient (golden kind pg_gradient) and descends on the average
-- of their gradients weighted by episode counts, i.e. the estimate over all
-- the kept episodes.  The critic (baseline "value") is fitted on the newest
-- batch's returns once per update.
--
-- estimator: "is_trajectory"   1/N Σ_i (Π_t ρ_t)(Σ_t ∇_t) R_i
--            "is_per_decision" 1/N Σ_i Σ_t (Π_{k≤t} ρ_k) ∇_t G_t
--            "is_full"         1/N Σ_i Σ_t ∇_t Σ_{t'≥t} γ^{t'−t} r_{t'} Π_{k≤t'} ρ_k
--            "is_first_order"  1/N Σ_i Σ_t ρ_t ∇_t (G_t − b_t)   (default)
-- with ρ_t = π_θ(a_t|s_t) / π_β(a_t|s_t).  Only is_first_order takes a
-- baseline ("none", "mean", "value" — default "value"); the others take
-- "none".  weight_clip c > 0 replaces every importance weight (product or
-- ratio, as it multiplies its term) by min(w, c); self_normalize = true
-- divides by the sum of the weights instead of N (weighted IS).  The
-- products of per-step ratios over CartPole's 500-step episodes are
-- unusable after a step or two (their ESS collapses, and the batch is
-- dropped); is_first_order is the practical choice there.
--
-- Diagnostics in the update's stats, averaged over every (batch, step)
-- evaluation of the update: mean_ratio (mean per-step ρ), ess (the
-- effective sample size (Σw)²/Σw² of the weights that scale the terms),
-- ess_ratio (ess over the number of those weights: episodes for
-- is_trajectory, steps otherwise), kl (KL(π_β‖π_θ) estimated from the
-- stored log-probs: mean over the batch's steps of log π_β − log π_θ) and
-- kl_max; dropped (batches dropped in this update), batches (kept after).
-- A batch whose ess_ratio falls below min_ess is dropped for good before
-- it contributes to a step.
--
-- Hyperparameters (numbers or functions of progress): those of
-- rl.reinforce (lr 5e-3, batch_episodes 8, n_steps 16, gamma 0.99,
-- max_grad_norm 0, normalize_advantages false — is_first_order only —,
-- value_lr, value_epochs, value_minibatch) and keep 4 (K), reuse 4,
-- weight_clip 0 (off), self_normalize false, min_ess 0.1.
--
-- behavior = a moonrl.Policy (optional) collects the data instead of the
-- trainer's policy: learning from a fixed behaviour policy.
--
-- Checkpoints: save() is a resume point (see moonrl.trainer); the kept
-- batches are not in the file, so save() empties the buffer in the saving
-- run too and "learn, save, learn" stays bit-identical to a resumed run.
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local core = require "moonrl.core"
local T = require "moonrl.trainer"
local R = require "moonrl.reinforce"
local episodes = require "moonrl.episodes"

local floor = math.floor

local OP = T.class("offpolicy", {
  n_steps = 16, batch_episodes = 8, gamma = 0.99, lr = 5e-3,
  max_grad_norm = 0, normalize_advantages = false,
  value_lr = 1e-3, value_epochs = 5, value_minibatch = 64,
  keep = 4, reuse = 4, weight_clip = 0, self_normalize = false, min_ess = 0.1,
  max_kl = 0,
})
OP.aliases = {learning_rate = "lr", normalize_advantage = "normalize_advantages",
              episodes_per_batch = "batch_episodes", k = "keep", K = "keep",
              n_updates = "reuse", clip = "weight_clip", ess_threshold = "min_ess"}
OP.structural = {estimator = true, baseline = true, behavior = true}
OP.csv_columns = {}
for i, c in ipairs(R.csv_columns) do OP.csv_columns[i] = c end
for _, c in ipairs({"mean_ratio", "ess", "ess_ratio", "kl", "kl_max", "dropped", "batches"}) do
  OP.csv_columns[#OP.csv_columns + 1] = c
end

local ESTIMATORS = {is_trajectory = true, is_per_decision = true, is_full = true,
                    is_first_order = true}

OP.collect = R.collect
OP._descend = R._descend
OP._fit_value = R._fit_value
OP._values = R._values

function OP.init(self)
  local o = self.opts
  self.estimator = o.estimator or "is_first_order"
  self.baseline = o.baseline or (self.estimator == "is_first_order" and "value" or "none")
  R.check_choice("offpolicy", self.estimator, self.baseline, ESTIMATORS,
                 self:hpv("normalize_advantages") == true, 5)
  if self.obs_rms then
    error("offpolicy: option 'normalize_obs' is not supported (wrap the env instead)", 5)
  end
  if self.rew_norm then
    error("offpolicy: option 'normalize_reward' is not supported (wrap the env instead)", 5)
  end
  if require("moonrl.world").distributed then
    error("offpolicy: distributed (MPI) runs are not supported", 5)
  end
  local bp = o.behavior
  if bp ~= nil then
    if type(bp) ~= "userdata" and type(bp) ~= "table" or type(bp.act) == "nil" then
      error("offpolicy: option 'behavior' must be a moonrl.Policy", 5)
    end
    if bp:obs_dim() ~= self.obs_dim or bp:nparams() ~= self.policy:nparams() then
      error("offpolicy: option 'behavior' must be a policy of the same architecture as the trainer's", 5)
    end
    self.behavior = bp
  end
  self.acc = episodes.new(self.num_envs, self.obs_dim, self.policy:action_width())
  self.buffer = {}     -- kept batches, oldest first
end

-- A failed update (a non-finite gradient refused by the core, …) leaves the
-- kept batches as they were too; moonrl.trainer restores the rest.
function OP:_update()
  local batch, buffer = self.batch, {}
  for i, b in ipairs(self.buffer) do buffer[i] = b end
  local ok, s = pcall(self._update_batches, self)
  if not ok then
    self.batch, self.buffer = batch, buffer
    error(s, 0)
  end
  return s
end

function OP:_update_batches()
  local p = self.policy
  local buf = self.buffer
  local newest = self.batch
  buf[#buf + 1] = newest
  self.batch = nil
  local keep = floor(self:hpv("keep"))
  if keep < 1 then keep = 1 end
  while #buf > keep do table.remove(buf, 1) end

  local gamma = self:hpv("gamma")
  local est, base = self.estimator, self.baseline
  local normalize = self:hpv("normalize_advantages") == true
  local clip = self:hpv("weight_clip")
  local selfnorm = self:hpv("self_normalize") == true
  local min_ess = self:hpv("min_ess")
  local max_kl = self:hpv("max_kl")
  local reuse = floor(self:hpv("reuse"))
  if reuse < 1 then reuse = 1 end
  -- normalize_advantages (is_first_order): Â standardised over each batch
  -- before its importance weights, in C
  local opts = {estimator = est, baseline = base, gamma = gamma,
                weight_clip = clip > 0 and clip or nil, self_normalize = selfnorm,
                normalize_advantages = normalize}
  -- the reward-to-go of each kept batch, for the critic and normalisation
  for _, b in ipairs(buf) do
    if not b.G or b.G_gamma ~= gamma then b.G, b.G_gamma = episodes.reward_to_go(b, gamma), gamma end
    if not b.logp_sum then b.logp_sum = b.logp:sum() end
  end

  local n_eval, s_ratio, s_ess, s_essr, s_kl, kl_max = 0, 0, 0, 0, 0, -math.huge
  local dropped, steps_taken, gnorm, stopped = 0, 0, 0, false
  local np = p:nparams()
  local acc = core.zeros(np)
  for _ = 1, reuse do
    acc:fill(0)
    local total, kept = 0, {}
    -- newest first: its KL (from the policy that started this update) is
    -- the max_kl test
    for i = #buf, 1, -1 do
      local b = buf[i]
      local logp = p:evaluate(b.obs, b.actions, nil, b.masks)
      local kl = (b.logp_sum - logp:sum()) / b.steps
      if b == newest and max_kl > 0 and kl > max_kl then stopped = true; break end
      local values = base == "value" and self:_values(b) or nil
      local ghat, st = p:pg_gradient(b.obs, b.actions, b.rewards, b.logp, values,
                                     b.offsets, opts, b.masks)
      local nw = est == "is_trajectory" and b.nep or b.steps
      local essr = st.ess / nw
      n_eval = n_eval + 1
      s_ratio, s_ess, s_essr, s_kl = s_ratio + st.mean_ratio, s_ess + st.ess, s_essr + essr, s_kl + kl
      if kl > kl_max then kl_max = kl end
      if essr < min_ess then
        dropped = dropped + 1
      else
        table.insert(kept, 1, b)
        core.axpy(acc, b.nep, ghat)   -- Σ nep·ĝ over the kept batches
        total = total + b.nep
      end
    end
    if stopped then break end
    self.buffer = kept
    buf = kept
    if total > 0 then
      gnorm = self:_descend(acc, 1 / total)
      steps_taken = steps_taken + 1
    end
    if #buf == 0 then break end
  end

  local s = {lr = self:hpv("lr"), grad_norm = gnorm, dropped = dropped, batches = #buf,
             policy_steps = steps_taken, stopped_early = stopped}
  if n_eval > 0 then
    s.mean_ratio, s.ess, s.ess_ratio, s.kl = s_ratio / n_eval, s_ess / n_eval,
                                             s_essr / n_eval, s_kl / n_eval
    s.kl_max = kl_max
  end
  -- the critic learns from the newest batch (the one just collected), even
  -- when its weights were dropped
  if base == "value" then s.value_loss = self:_fit_value(newest, newest.G) end
  s.batch_episodes, s.batch_steps, s.truncated = newest.nep, newest.steps, newest.truncated
  local _, ent = p:evaluate(newest.obs, newest.actions, nil, newest.masks)
  s.entropy = ent:sum() / newest.steps
  local r = 0
  for e = 1, newest.nep do r = r + newest.returns[e] end
  s.batch_return = r / newest.nep
  return s
end

-- save() is a resume point: the kept batches are not checkpointed, so they
-- are forgotten here as well (see the header).
function OP:save(path)
  T.Trainer.save(self, path)
  if self.reset_envs_on_save then self.buffer = {} end
  return self
end

return OP
