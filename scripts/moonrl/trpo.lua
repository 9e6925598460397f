-- moonrl.trpo — Trust Region Policy Optimisation (Schulman et al. 2015).
--
--   local agent = rl.trpo{env = rl.make("CartPole-v1", {num_envs = 8}), seed = 1}
--   agent:learn(200000)
--
-- Defaults are sb3-contrib's TRPO: n_steps 2048 (per env), batch_size 128
-- (critic minibatches), gamma 0.99, gae_lambda 0.95, cg_max_steps 15,
-- cg_damping 0.1, line_search_shrinking_factor 0.8, line_search_max_iter
-- 10, n_critic_updates 10 (critic epochs), lr 1e-3 (critic),
-- target_kl 0.01 (the trust region δ), normalize_advantages true.
--
-- Each update: one policy:trpo_step on the whole rollout (conjugate
-- gradient on the Fisher, a step of KL δ, backtracking until the surrogate
-- improves inside the region), then the critic is fitted on the GAE
-- returns with core.value_fit (n_critic_updates epochs of minibatches).
--
-- The Lagrangian variant of the notes, lagrangian = {lambda = 1,
-- lambda_lr = 1, steps = 10, lr = 1e-3}: maximise L(θ) − λ(KL − δ) with
-- `steps` Adam steps (policy:kl_penalty_loss with β = λ), then
-- λ ← max(0, λ + lambda_lr·(KL − δ)); λ is checkpointed.
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local core = require "moonrl.core"
local T = require "moonrl.trainer"
local PPO = require "moonrl.ppo"
local W = require "moonrl.world"

local TRPO = T.class("trpo", {
  n_steps = 2048, batch_size = 128, gamma = 0.99, gae_lambda = 0.95,
  cg_max_steps = 15, cg_damping = 0.1, line_search_shrinking_factor = 0.8,
  line_search_max_iter = 10, n_critic_updates = 10, lr = 1e-3,
  target_kl = 0.01, normalize_advantages = true,
})

TRPO.aliases = {learning_rate = "lr", max_kl = "target_kl", damping = "cg_damping",
                cg_iters = "cg_max_steps", backtrack_coef = "line_search_shrinking_factor",
                max_backtracks = "line_search_max_iter", lambda = "gae_lambda",
                normalize_advantage = "normalize_advantages"}

function TRPO.init(self)
  local lg = self.opts.lagrangian
  if lg then
    if type(lg) ~= "table" then lg = {} end
    self.lagrange = {lambda_lr = lg.lambda_lr or 1.0, steps = lg.steps or 10, lr = lg.lr or 1e-3}
    self.lagrange_lambda = lg.lambda or 1.0
  end
end

-- Advantages standardised over the whole batch (a copy; over every rank's
-- batch when distributed).
local function normalized(adv, n)
  local a = core.tensor(adv)
  core.standardize(a, W.reducer)
  return a
end
TRPO.normalized = normalized

function TRPO:_fit_critic(obs, ret)
  return core.value_fit(self.value, self.value_optim, obs, ret, {
    epochs = math.floor(self:hpv("n_critic_updates")),
    minibatch = math.floor(self:hpv("batch_size")),
    lr = self:hpv("lr"), rng = self.rng, reduce = W.reducer})
end

function TRPO:_update()
  local n, obs, act, logp, adv, ret, masks = PPO.flat(self)
  local a = self:hpv("normalize_advantages") and normalized(adv, n) or adv
  local p = self.policy
  local delta = self:hpv("target_kl")
  local s = {}
  if self.lagrange then
    local lg = self.lagrange
    local old = p:params()
    local lam = self.lagrange_lambda
    local loss
    for _ = 1, lg.steps do
      loss = p:kl_penalty_loss(old, obs, act, logp, a, lam, masks)
      if W.distributed then W.mean_tensor(p:grad()) end
      self.policy_optim:step(p, lg.lr)
    end
    local _, kl = p:kl(old, nil, obs, masks)
    if W.distributed then kl = W.sum({kl})[1] / W.size end
    self.lagrange_lambda = math.max(0, lam + lg.lambda_lr * (kl - delta))
    s.policy_loss, s.approx_kl, s.lagrange_lambda = loss, kl, self.lagrange_lambda
  else
    local r = p:trpo_step(obs, act, logp, a, {
      max_kl = delta, damping = self:hpv("cg_damping"),
      cg_iters = math.floor(self:hpv("cg_max_steps")),
      backtrack_coef = self:hpv("line_search_shrinking_factor"),
      max_backtracks = math.floor(self:hpv("line_search_max_iter")),
    }, masks)
    s.accepted = r.accepted
    s.approx_kl = r.mean_kl
    s.policy_loss = -(r.surrogate_before + (r.accepted and r.improvement or 0))
    s.improvement = r.improvement
  end
  s.value_loss = self:_fit_critic(obs, ret)
  local _, ent = p:evaluate(obs, act, nil, masks)
  s.entropy = ent:sum() / n
  s.lr = self:hpv("lr")
  return s
end

function TRPO:extra_state() return {lagrange_lambda = self.lagrange_lambda} end
function TRPO:set_extra_state(t)
  if t.lagrange_lambda then self.lagrange_lambda = t.lagrange_lambda end
end

return TRPO
