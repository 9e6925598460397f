-- moonrl.ppo — Proximal Policy Optimisation (Schulman et al. 2017).
--
--   local agent = rl.ppo{env = rl.make("CartPole-v1", {num_envs = 8}), seed = 1,
--                        lr = 3e-4, clip = 0.2, epochs = 10}
--   agent:learn(100000, {on_update = function(s) return s.mean_return < 475 end})
--
-- Defaults are Stable-Baselines3's (SB3 names are accepted as aliases):
--   n_steps 2048 (per env), batch_size 64, epochs 10 (n_epochs), gamma 0.99,
--   gae_lambda 0.95, clip 0.2 (clip_range), clip_vf 0 = unclipped value loss
--   (clip_range_vf), lr 3e-4 (learning_rate), ent_coef 0, vf_coef 0.5,
--   max_grad_norm 0.5, target_kl 0 = off (stop the epochs once the mean KL
--   of an epoch passes 1.5·target_kl), normalize_advantages true (per
--   minibatch).
-- Every hyperparameter may be a function of progress (moonrl.schedule).
--
-- The update is one C call (core.ppo_update, the engine the in-game agent
-- steps a minibatch at a time).  The adaptive-KL variant of the paper,
-- kl_penalty = {beta = 1, target_kl = 0.01}, is the same call with kl_beta
-- and kl_target: the penalty −β·KL(π_old‖π_θ) replaces the clip in the same
-- epochs × minibatches (advantages normalised once over the batch, the
-- policy's own gradient-norm clip), the critic fits the returns in the
-- same minibatches, then β adapts (halved below target/1.5, doubled above
-- 1.5·target, core.kl_beta_update); β is checkpointed.
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local core = require "moonrl.core"
local T = require "moonrl.trainer"
local W = require "moonrl.world"

local PPO = T.class("ppo", {
  n_steps = 2048, batch_size = 64, epochs = 10,
  gamma = 0.99, gae_lambda = 0.95,
  clip = 0.2, clip_vf = 0, lr = 3e-4,
  ent_coef = 0.0, vf_coef = 0.5, max_grad_norm = 0.5,
  target_kl = 0, normalize_advantages = true,
})

PPO.aliases = {
  learning_rate = "lr", n_epochs = "epochs", clip_range = "clip",
  clip_range_vf = "clip_vf", clip_value = "clip_vf", minibatch_size = "batch_size",
  normalize_advantage = "normalize_advantages", lambda = "gae_lambda",
}

function PPO.init(self)
  local kp = self.opts.kl_penalty
  if kp then
    if type(kp) ~= "table" then
      error("ppo: option 'kl_penalty' must be a table {beta =, target_kl =}", 4)
    end
    self.kl_beta = kp.beta or 1.0
    self.kl_target = kp.target_kl or 0.01
    if not (self.kl_target > 0) then error("ppo: kl_penalty.target_kl must be > 0", 4) end
  end
end

-- The rollout as flat batches [T·N][…] (views into the buffer), and the
-- invalid-action masks the actions were drawn under (nil without).
local function flat(self)
  local ro = self.rollout
  local n = self.n_steps * self.num_envs
  local w = self.policy:action_width()
  local masks = ro:masks()
  if masks then masks = masks:reshape(n, #masks[1][1]) end
  return n,
    ro:field("obs"):reshape(n, self.obs_dim),
    ro:field("actions"):reshape(n, w),
    ro:field("logp"):reshape(n),
    ro:field("advantages"):reshape(n),
    ro:field("returns"):reshape(n),
    masks
end
PPO.flat = flat

function PPO:_update()
  local lr = self:hpv("lr")
  local bs = math.floor(self:hpv("batch_size"))
  local n = self.n_steps * self.num_envs
  local kl = self.kl_beta ~= nil
  local s = core.ppo_update(self.policy, self.value, self.policy_optim, self.value_optim,
                            self.rollout, {
    epochs = math.floor(self:hpv("epochs")), minibatch_size = bs > n and n or bs, lr = lr,
    clip_eps = self:hpv("clip"), clip_value = self:hpv("clip_vf"),
    ent_coef = self:hpv("ent_coef"), vf_coef = self:hpv("vf_coef"),
    max_grad_norm = self:hpv("max_grad_norm"), target_kl = kl and 0 or self:hpv("target_kl"),
    normalize_advantages = self:hpv("normalize_advantages"),
    kl_beta = self.kl_beta, kl_target = self.kl_target,
    rng = kl and self.rng or nil,   -- the KL variant's order: the trainer's generator
    reduce = W.reducer,   -- distributed runs: gradients summed over the ranks
  })
  if kl then self.kl_beta = s.kl_beta end
  s.lr = lr
  return s
end

-- Trainer state that the checkpoint keeps beyond the common fields.
function PPO:extra_state() return {kl_beta = self.kl_beta} end
function PPO:set_extra_state(t) if t.kl_beta then self.kl_beta = t.kl_beta end end

return PPO
