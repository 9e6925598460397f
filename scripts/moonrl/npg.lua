-- moonrl.npg — Natural Policy Gradient (Kakade 2001; the step of the
-- notes): θ ← θ + √(2δ / gᵀF⁻¹g)·F⁻¹g, with F⁻¹g from conjugate gradient on
-- the Fisher of the current policy and no line search (that is TRPO).
--
--   local agent = rl.npg{env = rl.make("CartPole-v1", {num_envs = 8}), seed = 1}
--
-- Defaults follow TRPO's (sb3-contrib): n_steps 2048, batch_size 128
-- (critic minibatches), gamma 0.99, gae_lambda 0.95, cg_max_steps 15,
-- cg_damping 0.1, n_critic_updates 10, lr 1e-3 (critic), target_kl 0.01
-- (δ, the KL of each step in the quadratic model), fisher "analytic" (or
-- "empirical"), normalize_advantages true.
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local core = require "moonrl.core"
local T = require "moonrl.trainer"
local PPO = require "moonrl.ppo"
local TRPO = require "moonrl.trpo"
local W = require "moonrl.world"

local NPG = T.class("npg", {
  n_steps = 2048, batch_size = 128, gamma = 0.99, gae_lambda = 0.95,
  cg_max_steps = 15, cg_damping = 0.1, n_critic_updates = 10, lr = 1e-3,
  target_kl = 0.01, normalize_advantages = true,
})

NPG.aliases = {learning_rate = "lr", max_kl = "target_kl", damping = "cg_damping",
               cg_iters = "cg_max_steps", lambda = "gae_lambda",
               normalize_advantage = "normalize_advantages"}

function NPG.init(self)
  local f = self.opts.fisher or "analytic"
  if f ~= "analytic" and f ~= "empirical" then
    error("npg: option 'fisher' must be \"analytic\" or \"empirical\"", 4)
  end
  self.fisher = f
end

NPG._fit_critic = TRPO._fit_critic

function NPG:_update()
  local n, obs, act, logp, adv, ret, masks = PPO.flat(self)
  local a = self:hpv("normalize_advantages") and TRPO.normalized(adv, n) or adv
  -- g = ∇θ mean A log π (over every rank: the policy's reducer), the
  -- natural step along F⁻¹g of KL target_kl, θ += step: one C call
  local r = self.policy:npg_update(obs, act, a, self:hpv("cg_damping"),
                                   math.floor(self:hpv("cg_max_steps")), self:hpv("target_kl"),
                                   self.fisher, masks)
  local p = self.policy
  local s = {approx_kl = r.mean_kl, policy_loss = -r.objective, grad_norm = r.grad_norm}
  s.value_loss = self:_fit_critic(obs, ret)
  local _, ent = p:evaluate(obs, act, nil, masks)
  s.entropy = ent:sum() / n
  s.lr = self:hpv("lr")
  return s
end

return NPG
