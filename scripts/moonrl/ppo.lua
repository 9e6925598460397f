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
-- The clipped update is one C call (core.ppo_update).  The adaptive-KL
-- variant of the paper, kl_penalty = {beta = 1, target_kl = 0.01}, replaces
-- the clip by the penalty −β·KL(π_old‖π_θ) (policy:kl_penalty_loss) in the
-- same epochs × minibatches, fits the critic with core.value_fit, then
-- adapts β with core.kl_beta_update (halved below target/1.5, doubled
-- above 1.5·target); β is checkpointed.
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

-- The rollout as flat batches [T·N][…] (views into the buffer).
local function flat(self)
  local ro = self.rollout
  local n = self.n_steps * self.num_envs
  local w = self.policy:action_width()
  return n,
    ro:field("obs"):reshape(n, self.obs_dim),
    ro:field("actions"):reshape(n, w),
    ro:field("logp"):reshape(n),
    ro:field("advantages"):reshape(n),
    ro:field("returns"):reshape(n)
end
PPO.flat = flat

-- Fisher–Yates on 0-based indices with the trainer's generator.
local function shuffle(rng, n)
  local idx = {}
  for i = 1, n do idx[i] = i - 1 end
  for i = n, 2, -1 do
    local j = math.floor(rng:uniform() * i) + 1
    if j > i then j = i end
    idx[i], idx[j] = idx[j], idx[i]
  end
  return idx
end
PPO.shuffle = shuffle

-- Copies rows idx[first .. first+k-1] (0-based rows) of flat src (width w)
-- into the flat dst.
local function gather(dst, src, w, idx, first, k)
  for r = 0, k - 1 do
    local s = idx[first + r] * w
    local d = r * w
    for j = 1, w do dst[d + j] = src[s + j] end
  end
end

function PPO:_update_kl_penalty(lr, epochs, bs, max_norm)
  local n, obs, act, logp, adv, ret = flat(self)
  local od, w = self.obs_dim, self.policy:action_width()
  local p = self.policy
  local old = p:params()
  -- advantages normalised over the whole batch (a copy)
  local a = core.tensor(adv)
  if W.distributed then
    -- one normalisation over every rank's batch
    if self:hpv("normalize_advantages") then W.normalize(a, n) end
  elseif self:hpv("normalize_advantages") and n > 1 then
    local s, q = 0, 0
    for i = 1, n do s = s + a[i] end
    local m = s / n
    for i = 1, n do local d = a[i] - m; q = q + d * d end
    local sd = math.sqrt(q / (n - 1)) + 1e-8
    for i = 1, n do a[i] = (a[i] - m) / sd end
  end
  if bs > n then bs = n end
  local obs_f, act_f, logp_f = obs:reshape(n * od), act:reshape(n * w), logp
  local mo, ma = core.zeros(bs * od), core.zeros(bs * w)
  local ml, mad = core.zeros(bs), core.zeros(bs)
  local beta = self.kl_beta
  local loss_sum, nmb = 0, 0
  for _ = 1, epochs do
    local idx = shuffle(self.rng, n)
    for first = 1, n, bs do
      local k = math.min(bs, n - first + 1)
      gather(mo, obs_f, od, idx, first, k)
      gather(ma, act_f, w, idx, first, k)
      gather(ml, logp_f, 1, idx, first, k)
      gather(mad, a, 1, idx, first, k)
      local o2 = mo:reshape(bs, od):view(1, k)
      local a2 = ma:reshape(bs, w):view(1, k)
      local l2, ad2 = ml:view(1, k), mad:view(1, k)
      local loss = p:kl_penalty_loss(old, o2, a2, l2, ad2, beta)
      if W.distributed then
        W.mean_tensor(p:grad())
        loss = W.sum({loss})[1] / W.size
      end
      if max_norm > 0 then core.clip_grad_norm(p:grad(), max_norm) end
      self.policy_optim:step(p, lr)
      loss_sum, nmb = loss_sum + loss, nmb + 1
    end
  end
  local vloss = core.value_fit(self.value, self.value_optim, obs, ret,
                               {epochs = epochs, minibatch = bs, lr = lr, rng = self.rng,
                                reduce = W.reducer})
  local _, mean_kl = p:kl(old, nil, obs)
  -- β must move the same way on every rank
  if W.distributed then mean_kl = W.sum({mean_kl})[1] / W.size end
  local _, ent = p:evaluate(obs, act)
  self.kl_beta = core.kl_beta_update(beta, mean_kl, self.kl_target)
  return {policy_loss = loss_sum / math.max(nmb, 1), value_loss = vloss,
          approx_kl = mean_kl, entropy = ent:sum() / n, kl_beta = self.kl_beta,
          minibatches = nmb, epochs_done = epochs}
end

function PPO:_update()
  local lr = self:hpv("lr")
  local epochs = math.floor(self:hpv("epochs"))
  local bs = math.floor(self:hpv("batch_size"))
  local max_norm = self:hpv("max_grad_norm")
  local s
  if self.kl_beta then
    s = self:_update_kl_penalty(lr, epochs, bs, max_norm)
  else
    local n = self.n_steps * self.num_envs
    s = core.ppo_update(self.policy, self.value, self.policy_optim, self.value_optim,
                        self.rollout, {
      epochs = epochs, minibatch_size = bs > n and n or bs, lr = lr,
      clip_eps = self:hpv("clip"), clip_value = self:hpv("clip_vf"),
      ent_coef = self:hpv("ent_coef"), vf_coef = self:hpv("vf_coef"),
      max_grad_norm = max_norm, target_kl = self:hpv("target_kl"),
      normalize_advantages = self:hpv("normalize_advantages"),
      reduce = W.reducer,   -- distributed runs: gradients summed over the ranks
    })
  end
  s.lr = lr
  return s
end

-- Trainer state that the checkpoint keeps beyond the common fields.
function PPO:extra_state() return {kl_beta = self.kl_beta} end
function PPO:set_extra_state(t) if t.kl_beta then self.kl_beta = t.kl_beta end end

return PPO
