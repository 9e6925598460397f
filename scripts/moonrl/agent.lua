-- moonrl.agent — an agent that lives inside a game loop: it acts once per
-- frame, is told what happened, and learns a slice at a time.
--
--   local agent = rl.agent{obs = 6, action = rl.discrete(4), hidden = {64, 64},
--                          algo = "ppo", n_steps = 512, batch_size = 64, seed = 1}
--   function love.update(dt)
--     local a = agent:act(observe_world())       -- sampled action (0-based)
--     local reward, done = apply(a)
--     agent:observe(reward, done, false)         -- terminated, truncated
--     agent:train_step(2)                        -- at most ~2 ms of updating
--   end
--
-- What it owns: a policy, a value net, two Adam optimisers and two buffers
-- of n_steps transitions (obs, action, behaviour log-prob, reward, flags).
-- act/observe fill the current buffer.  When it is full (the next act()
-- call supplies the observation that bootstraps its last value) it is handed
-- to the update and the other buffer starts filling.  train_step(budget_ms)
-- then does the PPO update in pieces: the first piece computes V(s) for the
-- whole batch in one forward and the GAE advantages; every later piece is
-- one minibatch step (clipped surrogate + entropy on the policy, ½·vf_coef
-- times the (optionally clipped) value loss on the critic, one global
-- gradient norm over both, Adam on each — the same step as core.ppo_update),
-- until the time budget is spent.  The epoch, the shuffled order and the
-- position in it are kept across frames.  train_step always does at least
-- one piece when there is work, so an update ends even with tiny budgets.
--
-- Acting while an update is in progress (the off-policy correction):
-- act() always uses the current parameters, which change piece by piece
-- while the game keeps playing.  The transitions collected meanwhile go to
-- the second buffer, and each stores the log-probability of its action
-- under the parameters that chose it (the behaviour policy μ), recorded at
-- acting time.  When that buffer is updated, PPO's ratio
-- ρ = π_θ(a|s) / μ(a|s) = exp(log π_θ − logp_recorded) is exactly the
-- per-decision importance weight of the off-policy estimators (moonrl's
-- pg_gradient "is_first_order"): it starts at π_θ/μ rather than at 1, and
-- the clip to [1−ε, 1+ε] bounds the weights of stale samples the same way it
-- bounds the policy's own drift.  (The advantages are GAE under the current
-- critic without a V-trace correction; with at most one update of lag the
-- bias is small.)  stats.behaviour_ratio / behaviour_kl report how stale
-- a batch was (exactly 1 / 0 when no parameter changed while it was
-- collected).  If the second buffer fills before the update of the first
-- has finished, act() finishes that update at once (a longer frame;
-- agent.forced_updates counts them) — raise the budget or n_steps if this
-- happens.  The update never blocks on anything else: there is no thread.
--
-- Several agents per game: each rl.agent is independent (its own networks,
-- buffers, generators), so a game creates as many as it has actors.
--
-- A shipped game does not need this module: rl.load(path) gives the policy
-- and policy:act(obs, true) the greedy action.
--
-- Learning from the player (behaviour cloning): agent:record(obs, action)
-- stores a demonstration, agent:pretrain{epochs =, batch_size =, lr =}
-- maximises Σ log π(a|s) over them by minibatch Adam (policy:
-- grad_weighted_logp with unit weights — the score-function gradient with
-- every "advantage" equal to 1, i.e. maximum likelihood), after which PPO
-- fine-tunes as usual.
--
-- Methods:
--   agent:act(obs, [deterministic]) → action, logp   obs: flat table of obs
--        numbers.  A discrete action is an integer 0 … n−1; a box action is
--        a table of n numbers clipped to the bounds (the same table every
--        call: copy it to keep it).  deterministic = true takes the mode and
--        records nothing (evaluation).
--   agent:observe(reward, terminated, truncated, [final_obs]) → ep_return,
--        ep_length when this step ended an episode.  final_obs: the true
--        last observation of a truncated episode (to bootstrap from; without
--        it V(s_t) is used).
--   agent:train_step([budget_ms], [max_pieces]) → stats of an update that
--        finished in this call, or nil.  budget_ms nil: no time limit;
--        max_pieces bounds the pieces (deterministic slicing, for tests and
--        replays).  On a failure (non-finite loss or gradient) the update is
--        abandoned, both networks and optimisers are restored to their state
--        before it, and train_step returns nil, message (agent.last_error).
--   agent:busy()                     an update is in progress or waiting
--   agent:finish()                   runs the pending update to the end
--   agent:probs(obs) → table         π(·|s) of a discrete policy (reused table)
--   agent:record(obs, action), agent:demos(), agent:clear_demos()
--   agent:pretrain([opts]) → {nll, accuracy, samples, epochs}
--   agent:episode_stats() → {mean_return, min_return, max_return, episodes, …}
--   agent:save(path), agent:load(path)  a trainer checkpoint (policy, critic,
--        optimiser moments, generators, counters); rl.load(path) reads its
--        policy.  Buffers and a pending update are not saved.
--   agent.policy, agent.value, agent.steps, agent.updates, agent.episodes,
--   agent.last_stats, agent.forced_updates
--
-- Hyperparameters (SB3 names accepted as for rl.ppo): n_steps 512,
-- batch_size 64, epochs 4, gamma 0.99, gae_lambda 0.95, clip 0.2, clip_vf 0
-- (unclipped), lr 3e-4, ent_coef 0, vf_coef 0.5, max_grad_norm 0.5,
-- target_kl 0 (off), normalize_advantages true, stats_window 20.  lr,
-- clip, ent_coef and the like may be functions of progress when
-- total_steps is given (progress = steps / total_steps).
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local core = require "moonrl.core"
local schedule = require "moonrl.schedule"

local floor, sqrt, exp, huge = math.floor, math.sqrt, math.exp, math.huge
local now = core.now or os.clock

local Agent = {}
Agent.__index = Agent

local DEFAULTS = {
  n_steps = 512, batch_size = 64, epochs = 4,
  gamma = 0.99, gae_lambda = 0.95, clip = 0.2, clip_vf = 0, lr = 3e-4,
  ent_coef = 0.0, vf_coef = 0.5, max_grad_norm = 0.5, target_kl = 0,
  normalize_advantages = true, stats_window = 20,
}

local ALIASES = {
  learning_rate = "lr", n_epochs = "epochs", clip_range = "clip",
  clip_range_vf = "clip_vf", clip_value = "clip_vf", minibatch_size = "batch_size",
  normalize_advantage = "normalize_advantages", lambda = "gae_lambda",
}

local STRUCTURAL = {obs = true, obs_dim = true, action = true, hidden = true,
                    value_hidden = true, activation = true, seed = true,
                    algo = true, policy = true, value = true, init_log_std = true,
                    out_gain = true, total_steps = true, adam_eps = true, name = true}

local function fail(fname, n, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

local function isfinite(x)
  return type(x) == "number" and x == x and x ~= huge and x ~= -huge
end

-- ------------------------------------------------------------ buffers

local function new_buffer(T, D, W)
  local b = {n = 0, obs = {}, act = {}, logp = {}, rew = {}, term = {}, trunc = {},
             fin = {}, hasfin = {}, boot = {}}
  -- filled to full size once, so acting never grows a table
  for i = 1, T * D do b.obs[i] = 0; b.fin[i] = 0 end
  for i = 1, T * W do b.act[i] = 0 end
  for i = 1, T do
    b.logp[i], b.rew[i], b.term[i], b.trunc[i], b.hasfin[i] = 0, 0, false, false, false
  end
  for i = 1, D do b.boot[i] = 0 end
  return b
end

-- ------------------------------------------------------------ construction

local function build(t)
  if type(t) ~= "table" then fail("agent", 1, "options table expected, got " .. type(t)) end
  local algo = t.algo or "ppo"
  if algo ~= "ppo" then
    error("agent: algo '" .. tostring(algo) .. "' is not supported (only \"ppo\")", 3)
  end
  local hp = {}
  for k, v in pairs(DEFAULTS) do hp[k] = v end
  for k, v in pairs(t) do
    if not STRUCTURAL[k] then
      if DEFAULTS[k] == nil and ALIASES[k] then
        if t[ALIASES[k]] ~= nil then
          error(("agent: options '%s' and '%s' are the same; give one"):format(k, ALIASES[k]), 3)
        end
        k = ALIASES[k]
      end
      if DEFAULTS[k] == nil then error(("agent: unknown option '%s'"):format(tostring(k)), 3) end
      if type(v) ~= type(DEFAULTS[k]) and type(v) ~= "function" then
        error(("agent: option '%s' must be a %s%s, got %s"):format(k, type(DEFAULTS[k]),
              type(DEFAULTS[k]) == "number" and " or a function of progress" or "",
              type(v)), 3)
      end
      hp[k] = v
    end
  end
  for _, k in ipairs({"n_steps", "batch_size", "epochs", "stats_window"}) do
    local v = hp[k]
    if type(v) ~= "number" or v < 1 or v ~= floor(v) then
      error(("agent: option '%s' must be an integer >= 1, got %s"):format(k, tostring(v)), 3)
    end
  end
  local rl = require "moonrl"
  local seed = t.seed or 0
  local policy = t.policy
  if policy == nil then
    if t.obs == nil and t.obs_dim == nil then error("agent: option 'obs' (observation size) is required", 3) end
    if t.action == nil then error("agent: option 'action' (rl.discrete(n) or rl.box(n, …)) is required", 3) end
    policy = rl.policy{obs = t.obs or t.obs_dim, action = t.action, hidden = t.hidden or {64, 64},
                       activation = t.activation, seed = seed,
                       init_log_std = t.init_log_std, out_gain = t.out_gain}
  end
  local D = policy:obs_dim()
  local value = t.value or rl.value{obs = D, hidden = t.value_hidden or t.hidden or {64, 64},
                                    activation = t.activation, seed = seed + 1}
  if value:in_dim() ~= D then
    error(("agent: the value net takes %d inputs, the policy %d"):format(value:in_dim(), D), 3)
  end
  local W = policy:action_width()
  local T, B = hp.n_steps, hp.batch_size
  if B > T then B = T; hp.batch_size = T end
  local eps = t.adam_eps or 1e-8
  local self = setmetatable({
    algo = "agent", name = t.name, opts = t, hp = hp, seed = seed,
    policy = policy, value = value,
    policy_optim = core.optim{kind = "adam", n = policy:nparams(), eps = eps},
    value_optim = core.optim{kind = "adam", n = value:nparams(), eps = eps},
    rng = core.rng(seed + 2),   -- minibatch order; acting samples from the policy's
    obs_dim = D, width = W, n_steps = T, num_envs = 1,
    discrete = policy:action_kind() == "discrete",
    total_steps = t.total_steps,
    steps = 0, updates = 0, episodes = 0, forced_updates = 0,
    ep_return = 0, ep_length = 0,
    window = {}, window_len = {},
  }, Agent)
  self.bufs = {new_buffer(T, D, W), new_buffer(T, D, W)}
  self.cur = self.bufs[1]
  if not self.discrete then
    self._obs1 = core.zeros(1, D)
    self._obs1f = self._obs1:reshape(D)   -- element writes, no temporaries
    self._act1 = core.zeros(W)
    self._logp1 = core.zeros(1)
    self._aout = {}
    for j = 1, W do self._aout[j] = 0 end
    self.low, self.high = policy:bounds()
  end
  -- update scratch: full-batch tensors, minibatch tensors, Lua staging rows
  self._O, self._A = core.zeros(T, D), core.zeros(T, W)
  self._L = core.zeros(T)
  self._mb = {}
  self._idx = {}
  for i = 1, T do self._idx[i] = i - 1 end
  self._pgrad, self._vgrad = policy:grad(), value:grad()
  self._ppo_opts = {clip_eps = 0.2, ent_coef = 0, normalize_advantages = true}
  return self
end

-- ------------------------------------------------------------ helpers

function Agent:progress()
  local total = self.total_steps
  if not total or total <= 0 then return 0 end
  local p = self.steps / total
  return p > 1 and 1 or p
end

function Agent:hpv(name)
  local v = self.hp[name]
  if type(v) == "boolean" then return v end
  return schedule.resolve(v, self:progress(), name)
end

local function check_obs(self, obs, fname)
  if type(obs) ~= "table" then
    fail(fname, 1, ("table of %d numbers expected, got %s"):format(self.obs_dim, type(obs)))
  end
end

-- ------------------------------------------------------------ acting

-- A full buffer waits for the next observation (its bootstrap state); then
-- it goes to the update and the other buffer takes over.
local function hand_over(self, obs)
  local b = self.cur
  local boot = b.boot
  for j = 1, self.obs_dim do boot[j] = obs[j] end
  if self.ready or self.upd then
    -- the previous update is still running: finish it now (see header)
    -- (a refused update is dropped and reported by last_error, as in train_step)
    self.forced_updates = self.forced_updates + 1
    self:train_step(nil)
  end
  self.ready = b
  self.cur = (b == self.bufs[1]) and self.bufs[2] or self.bufs[1]
  self.cur.n = 0
end

-- A box action through preallocated tensors: the unclipped sample stays in
-- self._act1 (for the buffer), the clipped one goes to the reused table.
function Agent:_act_box(obs, deterministic)
  local o = self._obs1f
  for j = 1, self.obs_dim do o[j] = obs[j] end
  self.policy:act_into(self._obs1, self._act1, self._logp1, deterministic)
  local row, a = self._act1, self._aout
  local lo, hi = self.low, self.high
  for j = 1, self.width do
    local x = row[j]
    if lo then
      if x < lo[j] then x = lo[j] elseif x > hi[j] then x = hi[j] end
    end
    a[j] = x
  end
  return a, self._logp1[1]
end

function Agent:act(obs, deterministic)
  check_obs(self, obs, "act")
  if self.last_act then
    error("agent: act() called twice without observe() in between", 2)
  end
  if deterministic then
    local a, logp
    if self.discrete then
      a, logp = self.policy:act(obs, true)
    else
      a, logp = self:_act_box(obs, true)
    end
    self.last_act = "greedy"
    return a, logp
  end
  if self.cur.n >= self.n_steps then hand_over(self, obs) end
  local b = self.cur
  local D, W = self.obs_dim, self.width
  local a, logp
  if self.discrete then
    a, logp = self.policy:act(obs)
  else
    a, logp = self:_act_box(obs, false)
    local row = self._act1
    local base = b.n * W
    for j = 1, W do b.act[base + j] = row[j] end
  end
  local n = b.n
  local base = n * D
  local bo = b.obs
  for j = 1, D do bo[base + j] = obs[j] end
  if self.discrete then b.act[n + 1] = a end
  b.logp[n + 1] = logp
  self.last_act = "sampled"
  return a, logp
end

local function push_episode(self)
  local size = floor(self:hpv("stats_window"))
  local w, wl = self.window, self.window_len
  local r, l = self.ep_return, self.ep_length
  self.episodes = self.episodes + 1
  if #w < size then
    w[#w + 1], wl[#wl + 1] = r, l
  else
    -- a ring: the oldest slot is episodes mod size
    local k = (self.episodes - 1) % size + 1
    w[k], wl[k] = r, l
  end
  self.last_return, self.last_length = r, l
  self.ep_return, self.ep_length = 0, 0
  return r, l
end

function Agent:observe(reward, terminated, truncated, final_obs)
  if not isfinite(reward) then
    fail("observe", 1, "finite number expected, got " ..
         (type(reward) == "number" and tostring(reward) or type(reward)))
  end
  terminated = terminated == true or terminated == 1
  truncated = truncated == true or truncated == 1
  local last = self.last_act
  self.last_act = nil
  if last ~= "sampled" then
    if last ~= "greedy" then error("agent: observe() without a preceding act()", 2) end
    -- after a deterministic act(): evaluation, nothing to learn from
    self.ep_return = self.ep_return + reward
    self.ep_length = self.ep_length + 1
    if terminated or truncated then return push_episode(self) end
    return nil
  end
  local b = self.cur
  local n = b.n + 1
  b.rew[n], b.term[n], b.trunc[n] = reward, terminated, truncated
  local hf = false
  if truncated and not terminated and final_obs ~= nil then
    check_obs(self, final_obs, "observe")
    local D = self.obs_dim
    local base = (n - 1) * D
    for j = 1, D do b.fin[base + j] = final_obs[j] end
    hf = true
  end
  b.hasfin[n] = hf
  b.n = n
  self.steps = self.steps + 1
  self.ep_return = self.ep_return + reward
  self.ep_length = self.ep_length + 1
  if terminated or truncated then return push_episode(self) end
  return nil
end

-- π(·|s) of a discrete policy, into a reused table (for drawing).
function Agent:probs(obs)
  if not self.discrete then error("agent: probs() needs a discrete policy", 2) end
  check_obs(self, obs, "probs")
  local logits = self.policy:forward(obs)
  local out = self._probs or {}
  self._probs = out
  local n = self.policy:action_n()
  local m = -huge
  for i = 1, n do if logits[i] > m then m = logits[i] end end
  local s = 0
  for i = 1, n do local e = exp(logits[i] - m); out[i] = e; s = s + e end
  for i = 1, n do out[i] = out[i] / s end
  return out
end

-- ------------------------------------------------------------ updating

-- Views [k][…] of the minibatch tensors, made once per size k.
local function mb_tensors(self, k)
  local m = self._mb[k]
  if m then return m end
  local D, W = self.obs_dim, self.width
  m = {obs = core.zeros(k, D), act = core.zeros(k, W), logp = core.zeros(k),
       adv = core.zeros(k), ret = core.zeros(k), oldv = core.zeros(k),
       s_obs = {}, s_act = {}, s_logp = {}, s_adv = {}, s_ret = {}, s_oldv = {}}
  for i = 1, k * D do m.s_obs[i] = 0 end
  for i = 1, k * W do m.s_act[i] = 0 end
  for i = 1, k do m.s_logp[i], m.s_adv[i], m.s_ret[i], m.s_oldv[i] = 0, 0, 0, 0 end
  self._mb[k] = m
  return m
end

-- First piece: values, bootstrap, GAE, staleness, snapshots.
local function prepare(self)
  local b = self.ready
  local T, D = self.n_steps, self.obs_dim
  local O = self._O
  O:copy(b.obs)
  self._A:copy(b.act)
  self._L:copy(b.logp)
  local value = self.value
  local vals = value:forward(O):reshape(T):totable()
  local nv = {}
  for t = 1, T - 1 do nv[t] = vals[t + 1] end
  nv[T] = value:forward(b.boot)[1]
  for t = 1, T do
    if b.trunc[t] and not b.term[t] then
      if b.hasfin[t] then
        local row = {}
        for j = 1, D do row[j] = b.fin[(t - 1) * D + j] end
        nv[t] = value:forward(row)[1]
      else
        nv[t] = vals[t]
      end
    end
  end
  local adv, ret = core.gae(b.rew, vals, nv, b.term, b.trunc,
                            self:hpv("gamma"), self:hpv("gae_lambda"))
  if not (core.all_finite(adv) and core.all_finite(ret)) then
    error("agent: non-finite advantages or returns (rewards too large?); update refused, parameters unchanged", 0)
  end
  -- how far the behaviour policy is from the current one on this batch
  local logp_now = self.policy:evaluate(O, self._A)
  local rs, ks = 0, 0
  for t = 1, T do
    local d = logp_now[t] - b.logp[t]
    rs = rs + exp(d)
    ks = ks - d
  end
  self.upd = {
    buf = b, epoch = 0, pos = T + 1, stopped = false,
    vals = vals, adv = adv:totable(), ret = ret:totable(),
    behaviour_ratio = rs / T, behaviour_kl = ks / T,
    snap_p = self.policy:params(), snap_v = value:params(),
    snap_po = core.optim_state(self.policy_optim),
    snap_vo = core.optim_state(self.value_optim),
    n_mb = 0, epoch_mb = 0, epoch_kl = 0,
    s_pl = 0, s_vl = 0, s_ent = 0, s_kl = 0, s_clip = 0, s_gn = 0,
    t0 = now(), pieces = 1,
  }
end

-- Fisher–Yates on the 0-based row indices with the agent's generator.
local function shuffle(rng, idx, n)
  for i = n, 2, -1 do
    local j = floor(rng:uniform() * i) + 1
    if j > i then j = i end
    idx[i], idx[j] = idx[j], idx[i]
  end
end

-- Scales a gradient view by s in (0, 1] with clip_grad_norm (whose factor is
-- max/(norm + 1e-6)), or element by element when s ≥ 1.
local function scale_grad(g, norm, s)
  if s == 1 or norm == 0 then return end
  if s < 1 then
    core.clip_grad_norm(g, s * (norm + 1e-6))
  else
    for i = 1, g:numel() do g[i] = g[i] * s end
  end
end

-- One minibatch step; returns true when the update is complete.
local function minibatch(self)
  local u = self.upd
  local T = self.n_steps
  if u.pos > T then
    u.epoch = u.epoch + 1
    u.pos, u.epoch_mb, u.epoch_kl = 1, 0, 0
    shuffle(self.rng, self._idx, T)
  end
  local bs = self.hp.batch_size
  local k = T - u.pos + 1
  if k > bs then k = bs end
  local m = mb_tensors(self, k)
  local b = u.buf
  local D, W = self.obs_dim, self.width
  local idx = self._idx
  local so, sa, sl, sad, sr, sv = m.s_obs, m.s_act, m.s_logp, m.s_adv, m.s_ret, m.s_oldv
  local bo, ba, bl = b.obs, b.act, b.logp
  local adv, ret, vals = u.adv, u.ret, u.vals
  for r = 0, k - 1 do
    local i = idx[u.pos + r]
    local s, d = i * D, r * D
    for j = 1, D do so[d + j] = bo[s + j] end
    s, d = i * W, r * W
    for j = 1, W do sa[d + j] = ba[s + j] end
    sl[r + 1], sad[r + 1], sr[r + 1], sv[r + 1] = bl[i + 1], adv[i + 1], ret[i + 1], vals[i + 1]
  end
  m.obs:copy(so); m.act:copy(sa); m.logp:copy(sl)
  m.adv:copy(sad); m.ret:copy(sr); m.oldv:copy(sv)
  u.pos = u.pos + k

  local opts = self._ppo_opts
  opts.clip_eps = self:hpv("clip")
  opts.ent_coef = self:hpv("ent_coef")
  opts.normalize_advantages = self.hp.normalize_advantages and k > 1
  local ps = self.policy:ppo_loss(m.obs, m.act, m.logp, m.adv, opts)
  local vloss = self.value:value_loss_clipped(m.obs, m.ret, m.oldv, self:hpv("clip_vf"))
  -- CleanRL's loss pg − ent·H + vf_coef·½·v_loss, one norm over both nets
  local c = 0.5 * self:hpv("vf_coef")
  local pg, vg = self._pgrad, self._vgrad
  local np, nvn = pg:norm(), vg:norm()
  local gn = sqrt(np * np + c * c * nvn * nvn)
  if not (isfinite(gn) and isfinite(ps.loss) and isfinite(vloss)) then
    error(("agent: non-finite %s in epoch %d; update refused, parameters restored")
          :format(not isfinite(ps.loss) and "policy loss" or not isfinite(vloss) and "value loss"
                  or "gradient", u.epoch), 0)
  end
  local s = 1
  local max_norm = self:hpv("max_grad_norm")
  if max_norm > 0 and gn > max_norm then s = max_norm / (gn + 1e-6) end
  scale_grad(pg, np, s)
  scale_grad(vg, nvn, c * s)
  local lr = self:hpv("lr")
  self.policy_optim:step(self.policy, lr)
  self.value_optim:step(self.value, lr)
  u.n_mb, u.epoch_mb = u.n_mb + 1, u.epoch_mb + 1
  u.epoch_kl = u.epoch_kl + ps.approx_kl
  u.s_pl, u.s_vl, u.s_ent = u.s_pl + ps.policy_loss, u.s_vl + vloss, u.s_ent + ps.entropy
  u.s_kl, u.s_clip, u.s_gn = u.s_kl + ps.approx_kl, u.s_clip + ps.clip_fraction, u.s_gn + gn
  if u.pos <= T then return false end
  -- the end of an epoch: SB3 stops once the KL passes 1.5·target (here the
  -- epoch's mean approximate KL)
  local tkl = self:hpv("target_kl")
  if tkl > 0 and u.epoch_kl / u.epoch_mb > 1.5 * tkl then
    u.stopped = true
    return true
  end
  return u.epoch >= floor(self:hpv("epochs"))
end

local function complete(self)
  local u = self.upd
  local n = u.n_mb > 0 and u.n_mb or 1
  -- explained variance of the values the advantages were computed with:
  -- 1 − Var(R − V) / Var(R)
  local T = self.n_steps
  local ret, vals = u.ret, u.vals
  local mr, me = 0, 0
  for t = 1, T do mr = mr + ret[t]; me = me + (ret[t] - vals[t]) end
  mr, me = mr / T, me / T
  local vr, ve = 0, 0
  for t = 1, T do
    local d = ret[t] - mr
    local e = ret[t] - vals[t] - me
    vr, ve = vr + d * d, ve + e * e
  end
  local ev = vr > 0 and 1 - ve / vr or 0
  self.updates = self.updates + 1
  local stats = {
    policy_loss = u.s_pl / n, value_loss = u.s_vl / n, entropy = u.s_ent / n,
    approx_kl = u.s_kl / n, clip_fraction = u.s_clip / n, grad_norm = u.s_gn / n,
    explained_variance = ev, minibatches = u.n_mb, epochs_done = u.epoch,
    stopped_early = u.stopped, behaviour_ratio = u.behaviour_ratio,
    behaviour_kl = u.behaviour_kl, pieces = u.pieces, update_time = now() - u.t0,
    updates = self.updates, steps = self.steps, lr = self:hpv("lr"),
  }
  for k, v in pairs(self:episode_stats()) do stats[k] = v end
  self.last_stats = stats
  self.upd, self.ready = nil, nil
  return stats
end

local function abandon(self, err)
  local u = self.upd
  if u then
    self.policy:set_params(u.snap_p)
    self.value:set_params(u.snap_v)
    core.set_optim_state(self.policy_optim, u.snap_po)
    core.set_optim_state(self.value_optim, u.snap_vo)
  end
  self.upd, self.ready = nil, nil
  err = tostring(err)
  if not err:find("update refused", 1, true) then
    err = "agent: update refused, parameters restored: " .. err
  end
  self.last_error = err
  self.failed_updates = (self.failed_updates or 0) + 1
  return nil, self.last_error
end

-- One piece of work; true when an update completed.
local function piece(self)
  if not self.upd then
    prepare(self)
    return false
  end
  self.upd.pieces = self.upd.pieces + 1
  return minibatch(self)
end

function Agent:train_step(budget_ms, max_pieces)
  if budget_ms ~= nil and (type(budget_ms) ~= "number" or budget_ms ~= budget_ms or budget_ms < 0) then
    fail("train_step", 1, "milliseconds >= 0 or nil expected, got " .. tostring(budget_ms))
  end
  if max_pieces ~= nil and (type(max_pieces) ~= "number" or max_pieces < 1) then
    fail("train_step", 2, "number of pieces >= 1 or nil expected, got " .. tostring(max_pieces))
  end
  if not self.ready then return nil end
  local deadline = budget_ms and now() + budget_ms / 1000 or huge
  local left = max_pieces or huge
  repeat
    local ok, done = pcall(piece, self)
    if not ok then return abandon(self, done) end
    left = left - 1
    if done then return complete(self) end
  until left <= 0 or now() >= deadline
  return nil
end

function Agent:busy() return self.ready ~= nil end

function Agent:finish()
  if not self.ready then return nil end
  local stats, err = self:train_step(nil)
  if not stats and err then error(err, 2) end
  return stats
end

-- ------------------------------------------------------------ statistics

function Agent:episode_stats()
  local w = self.window
  local n = #w
  if n == 0 then return {episodes = self.episodes} end
  local s, lo, hi, ls = 0, huge, -huge, 0
  for i = 1, n do
    local r = w[i]
    s = s + r
    if r < lo then lo = r end
    if r > hi then hi = r end
    ls = ls + self.window_len[i]
  end
  return {mean_return = s / n, min_return = lo, max_return = hi,
          mean_length = ls / n, episodes = self.episodes}
end

-- ------------------------------------------------------------ imitation

function Agent:record(obs, action)
  check_obs(self, obs, "record")
  local D, W = self.obs_dim, self.width
  local d = self._demo
  if not d then
    d = {n = 0, obs = {}, act = {}}
    self._demo = d
  end
  for j = 1, D do
    local x = obs[j]
    if not isfinite(x) then fail("record", 1, ("finite number expected at [%d], got %s"):format(j, tostring(x))) end
  end
  if self.discrete then
    local n = self.policy:action_n()
    if type(action) ~= "number" or action ~= floor(action) or action < 0 or action >= n then
      fail("record", 2, ("action 0 … %d expected, got %s"):format(n - 1, tostring(action)))
    end
  else
    if type(action) == "number" and W == 1 then action = {action} end
    if type(action) ~= "table" then fail("record", 2, ("table of %d numbers expected, got %s"):format(W, type(action))) end
    for j = 1, W do
      if not isfinite(action[j]) then
        fail("record", 2, ("finite number expected at [%d], got %s"):format(j, tostring(action[j])))
      end
    end
  end
  local base = d.n * D
  for j = 1, D do d.obs[base + j] = obs[j] end
  if self.discrete then
    d.act[d.n + 1] = action
  else
    for j = 1, W do d.act[d.n * W + j] = action[j] end
  end
  d.n = d.n + 1
  return d.n
end

function Agent:demos() return self._demo and self._demo.n or 0 end
function Agent:clear_demos() self._demo = nil end

-- Behaviour cloning: minimise −mean log π(a|s) over the demonstrations.
function Agent:pretrain(opts)
  opts = opts or {}
  if type(opts) ~= "table" then fail("pretrain", 1, "options table expected, got " .. type(opts)) end
  local d = self._demo
  if not d or d.n == 0 then error("agent: pretrain() needs demonstrations (agent:record(obs, action))", 2) end
  local epochs = opts.epochs or 10
  local bs = opts.batch_size or 64
  local lr = opts.lr or 1e-3
  if type(epochs) ~= "number" or epochs < 1 then fail("pretrain", 1, "epochs must be >= 1") end
  if type(bs) ~= "number" or bs < 1 then fail("pretrain", 1, "batch_size must be >= 1") end
  local n, D, W = d.n, self.obs_dim, self.width
  if bs > n then bs = n end
  self.bc_optim = self.bc_optim or core.optim{kind = "adam", n = self.policy:nparams()}
  local obs = core.tensor(d.obs):reshape(n, D)
  local act = core.tensor(d.act):reshape(n, W)
  local idx = {}
  for i = 1, n do idx[i] = i - 1 end
  local so, sa, ones = {}, {}, {}
  local views = {}
  local function mbt(k)
    local v = views[k]
    if not v then
      v = {obs = core.zeros(k, D), act = core.zeros(k, W), w = core.tensor({k}, 1)}
      views[k] = v
    end
    return v
  end
  local last = 0
  for _ = 1, epochs do
    shuffle(self.rng, idx, n)
    local sum, cnt = 0, 0
    for first = 1, n, bs do
      local k = math.min(bs, n - first + 1)
      for r = 0, k - 1 do
        local i = idx[first + r]
        for j = 1, D do so[r * D + j] = d.obs[i * D + j] end
        for j = 1, W do sa[r * W + j] = d.act[i * W + j] end
        ones[r + 1] = 1
      end
      local v = mbt(k)
      for j = k * D + 1, #so do so[j] = nil end
      for j = k * W + 1, #sa do sa[j] = nil end
      v.obs:copy(so); v.act:copy(sa)
      -- scale −1/k: grad := ∇(−mean log π), which the optimiser descends
      local objective = self.policy:grad_weighted_logp(v.obs, v.act, v.w, -1 / k)
      self.bc_optim:step(self.policy, lr)
      sum, cnt = sum + objective * k, cnt + k
    end
    last = sum / cnt
  end
  -- the fit on the whole demonstration set after training
  local logp = self.policy:evaluate(obs, act)
  local nll = 0
  for i = 1, n do nll = nll - logp[i] end
  local res = {nll = nll / n, last_epoch_nll = last, samples = n, epochs = epochs}
  if self.discrete then
    local correct = 0
    local logits = self.policy:forward(obs)
    for i = 1, n do
      local row = logits[i]
      local best, bi = -huge, 0
      for j = 1, self.policy:action_n() do
        if row[j] > best then best, bi = row[j], j - 1 end
      end
      if bi == d.act[i] then correct = correct + 1 end
    end
    res.accuracy = correct / n
  end
  return res
end

-- ------------------------------------------------------------ files

-- The trainer-checkpoint format (moonrl.checkpoint), so rl.load reads the
-- policy from it.  The fields below are what save_trainer/restore expect.
local function as_trainer(self)
  self.steps_done, self.segment, self.env_seed = self.steps, 0, self.seed
  self.elapsed = 0
  return self
end

function Agent:save(path)
  if type(path) ~= "string" then fail("save", 1, "path expected, got " .. type(path)) end
  require("moonrl.checkpoint").save_trainer(as_trainer(self), path)
  return self
end

function Agent:extra_state()
  return {episodes = self.episodes, forced_updates = self.forced_updates}
end
function Agent:set_extra_state(t)
  self.forced_updates = t.forced_updates or self.forced_updates
end

function Agent:load(path)
  if type(path) ~= "string" then fail("load", 1, "path expected, got " .. type(path)) end
  require("moonrl.checkpoint").restore(as_trainer(self), path)
  self.steps = self.steps_done
  -- collected data and a pending update belong to the old parameters
  self.upd, self.ready = nil, nil
  self.bufs[1].n, self.bufs[2].n = 0, 0
  self.last_act = nil
  self.ep_return, self.ep_length = 0, 0
  return self
end

function Agent:close()
  self.policy:close()
  self.value:close()
  self.policy_optim:close()
  self.value_optim:close()
  if self.bc_optim then self.bc_optim:close() end
  self.rng:close()
end

function Agent:__tostring()
  return ("moonrl.agent (%d steps, %d updates, %d episodes%s)")
         :format(self.steps, self.updates, self.episodes, self.ready and ", updating" or "")
end

return setmetatable({Agent = Agent, DEFAULTS = DEFAULTS, new = build},
                    {__call = function(_, t) return build(t) end})
