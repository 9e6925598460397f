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
-- of n_steps transitions (C rollouts of one env: obs, action, behaviour
-- log-prob, reward, flags, final observations).  act/observe fill the
-- current buffer (core.rollout_put / rollout_outcome).  When it is full
-- (the next act() call supplies the observation that bootstraps its last
-- value) it is handed to the update and the other buffer starts filling.
-- train_step(budget_ms) then does the PPO update in pieces, all in C: the
-- first piece computes V(s) and the bootstraps (core.rollout_bootstrap),
-- the GAE advantages and how stale the behaviour log-probs are
-- (core.rollout_behaviour), and begins the update (core.ppo_begin); every
-- later piece is one minibatch step of that job (clipped surrogate +
-- entropy on the policy, ½·vf_coef times the (optionally clipped) value
-- loss on the critic, one global gradient norm over both, Adam on each —
-- core.ppo_update's step, the same engine), until the time budget is spent.
-- The job keeps the epoch, the shuffled order and the position in it
-- across frames.  train_step always does at least one piece when there is
-- work, so an update ends even with tiny budgets.  The hyperparameters of
-- an update are read (schedules resolved) when it begins.
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
-- happens.  The sliced update never blocks on anything else: there is no
-- thread.
--
-- Background training (background = true): the update runs on a runtime
-- thread (core.bgtrain, which owns copies of both networks, both
-- optimisers and the shuffling generator) while act() keeps using the
-- parameters last PUBLISHED into agent.policy / agent.value — the thread
-- never touches them.  A full buffer is submitted at the next act (the
-- call copies it; V, bootstraps and GAE run on the thread with the
-- trainer's critic; the hyperparameters are those of that moment).  The
-- acting parameters change only when the game publishes, at a frame
-- boundary it picks: with publish = "auto" (the default) train_step()
-- publishes a finished update (its budget is ignored: it only polls), with
-- publish = "manual" only agent:publish([wait]) does.  The lag is what
-- PPO's ratio π_θ/μ corrects: each transition keeps the log-prob of the
-- parameters that acted, and behaviour_ratio / behaviour_kl measure it per
-- batch (against the acting policy at submission).  If a buffer is full
-- while the trainer still has the previous one and a third fills, act()
-- waits for the trainer (forced_updates counts it).  A batch submitted
-- before a finished update was published trains on from the trainer's
-- newer parameters; the next publish takes the newest (agent.updates counts
-- the updates the trainer finished).  A refused update
-- leaves every parameter as it was (last_error).  Given the same batch, the
-- background update equals the sliced one bit for bit (same engine, same
-- shuffling stream); what differs is when its result reaches the game.
-- save() waits for a running update and writes the trainer's state (the
-- newest parameters, published or not, and their moments) without changing
-- the acting parameters; load() cancels it and loads both sides.
--
-- Several agents per game: each rl.agent is independent (its own networks,
-- buffers, generators), so a game creates as many as it has actors.
--
-- A shipped game does not need this module: rl.load(path) gives the policy
-- and policy:act(obs, true) the greedy action.
--
-- Learning from the player (behaviour cloning): agent:record(obs, action)
-- stores a demonstration, agent:pretrain{epochs =, batch_size =, lr =}
-- maximises Σ log π(a|s) over them by minibatch Adam (core.bc_fit: the
-- score-function gradient with every "advantage" equal to 1, i.e. maximum
-- likelihood), after which PPO fine-tunes as usual.
--
-- Methods:
--   agent:act(obs, [deterministic]) → action, logp   obs: flat table of obs
--        numbers.  A discrete action is an integer 0 … n−1; a box action is
--        a table of n numbers clipped to the bounds (the same table every
--        call: copy it to keep it); a multi_discrete, multi_binary or hybrid
--        action a flat table (an integer per discrete part, the numbers of
--        each box part).  deterministic = true takes the mode and records
--        nothing (evaluation).
--   agent:act(obs, mask, [deterministic]) the same under an invalid-action
--        mask (discrete or multi_discrete policies): K numbers, 1 = valid,
--        0 = invalid (K = n, or the sum of nvec, the components' masks one
--        after another); a masked action is never drawn, and the update
--        learns with the mask each step was acted under.
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
--        (background: also a finished one not yet published)
--   agent:finish()                   runs the pending update to the end
--        (background: every collected batch, then publishes)
--   agent:publish([wait]) → stats | nil | nil, message   background mode:
--        a finished update becomes the acting parameters now (wait: after
--        the running one ends); nil when nothing finished (or sliced mode)
--   agent:set_background(on), agent:mode() → "sliced" | "background"
--        switch at this frame: the update in progress ends first and the
--        other mode continues from the same parameters, moments and stream
--   agent:probs(obs) → table         π(·|s) of a discrete policy (reused table)
--   agent:record(obs, action), agent:demos(), agent:clear_demos()
--   agent:pretrain([opts]) → {nll, accuracy, samples, epochs}
--   agent:episode_stats() → {mean_return, min_return, max_return, episodes, …}
--   agent:save(path), agent:load(path)  a trainer checkpoint (policy, critic,
--        optimiser moments, generators, counters); rl.load(path) reads its
--        policy.  Buffers and a pending update are not saved.
--   agent.policy, agent.value, agent.steps, agent.updates, agent.episodes,
--   agent.last_stats, agent.forced_updates, agent.bg (the moonrl.BgTrain)
--
-- Hyperparameters (SB3 names accepted as for rl.ppo): n_steps 512,
-- batch_size 64, epochs 4, gamma 0.99, gae_lambda 0.95, clip 0.2, clip_vf 0
-- (unclipped), lr 3e-4, ent_coef 0, vf_coef 0.5, max_grad_norm 0.5,
-- target_kl 0 (off), normalize_advantages true, stats_window 20.  lr,
-- clip, ent_coef and the like may be functions of progress when
-- total_steps is given (progress = steps / total_steps).  Structural:
-- background = false, publish = "auto" | "manual".
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local core = require "moonrl.core"
local schedule = require "moonrl.schedule"

local floor, exp, huge = math.floor, math.exp, math.huge
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
                    out_gain = true, total_steps = true, adam_eps = true, name = true,
                    background = true, publish = true, conv = true}

local function fail(fname, n, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

local function isfinite(x)
  return type(x) == "number" and x == x and x ~= huge and x ~= -huge
end

-- ------------------------------------------------------------ buffers

-- A C rollout of T steps of one env; obs/act/logp are flat views of its
-- fields (for inspection), boot the observation after the last step.
local function new_buffer(T, D, W)
  local ro = core.rollout{steps = T, num_envs = 1, obs_dim = D, action_width = W}
  local b = {n = 0, ro = ro, boot = {},
             obs = ro:field("obs"):reshape(T * D), act = ro:field("actions"):reshape(T * W),
             logp = ro:field("logp"):reshape(T)}
  for i = 1, D do b.boot[i] = 0 end
  return b
end

-- ------------------------------------------------------------ construction

-- The bounds of a hybrid action's box parts, per column of the action row
-- (nil for a discrete part's column); nil, nil when there are none.
local function hybrid_bounds(action)
  if type(action) ~= "table" or action.type ~= "hybrid" then return nil, nil end
  local lo, hi, col, any = {}, {}, 0, false
  for _, part in ipairs(action.parts or {}) do
    if part.type == "discrete" then
      col = col + 1
    else
      local n = part.n or (part.shape and part.shape[1]) or 1
      for j = 1, n do
        local l = type(part.low) == "table" and part.low[j] or part.low
        local h = type(part.high) == "table" and part.high[j] or part.high
        if type(l) == "number" and type(h) == "number" and l > -1e30 and h < 1e30 then
          lo[col + j], hi[col + j], any = l, h, true
        end
      end
      col = col + n
    end
  end
  if not any then return nil, nil end
  return lo, hi
end

-- Entries of an invalid-action mask the policy takes (n, or the sum of
-- nvec), nil when it takes none.
local function mask_width_of(policy)
  local a = policy:spec().action
  if a.type == "discrete" then return a.n end
  if a.type == "multi_discrete" then
    local k = 0
    for _, n in ipairs(a.nvec) do k = k + n end
    return k
  end
  return nil
end

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
                       activation = t.activation, seed = seed, conv = t.conv,
                       init_log_std = t.init_log_std, out_gain = t.out_gain}
  end
  local D = policy:obs_dim()
  local value = t.value or rl.value{obs = D, hidden = t.value_hidden or t.hidden or {64, 64},
                                    activation = t.activation, seed = seed + 1}
  if value:in_dim() ~= D then
    error(("agent: the value net takes %d inputs, the policy %d"):format(value:in_dim(), D), 3)
  end
  local W = policy:action_width()
  if t.background ~= nil and type(t.background) ~= "boolean" then
    error("agent: option 'background' must be a boolean, got " .. type(t.background), 3)
  end
  local publish = t.publish or "auto"
  if publish ~= "auto" and publish ~= "manual" then
    error("agent: option 'publish' must be \"auto\" or \"manual\", got " .. tostring(publish), 3)
  end
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
    composite = policy:action_kind() ~= "discrete" and policy:action_kind() ~= "box",
    mask_width = mask_width_of(policy),
    col_low = nil, col_high = nil,  -- a hybrid action's box bounds per column
    total_steps = t.total_steps, publish_mode = publish,
    steps = 0, updates = 0, episodes = 0, forced_updates = 0,
    ep_return = 0, ep_length = 0,
    window = {}, window_len = {},
  }, Agent)
  self.bufs = {new_buffer(T, D, W), new_buffer(T, D, W)}
  self.cur = self.bufs[1]
  -- staging rows (element writes, no temporaries: acting allocates nothing)
  self._obs1 = core.zeros(1, D)
  self._obs1f = self._obs1:reshape(D)
  self._fin1 = core.zeros(D)
  if not self.discrete and not self.composite then
    self._act1 = core.zeros(W)
    self._logp1 = core.zeros(1)
    self._aout = {}
    for j = 1, W do self._aout[j] = 0 end
    self.low, self.high = policy:bounds()
  end
  self.col_low, self.col_high = hybrid_bounds(t.action)
  -- a dict observation space: act/observe/probs/record take the game's
  -- table of named parts and flatten it (moonrl.spaces' order)
  if type(t.obs) == "table" and t.obs.type == "dict" then
    self.obs_space, self._flat = t.obs, {}
  end
  if t.background then self:set_background(true) end
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

-- The PPO configuration of an update beginning now (schedules resolved).
local function ppo_config(self, rng)
  return {
    epochs = floor(self:hpv("epochs")), minibatch_size = self.hp.batch_size,
    lr = self:hpv("lr"), clip_eps = self:hpv("clip"), clip_value = self:hpv("clip_vf"),
    ent_coef = self:hpv("ent_coef"), vf_coef = self:hpv("vf_coef"),
    max_grad_norm = self:hpv("max_grad_norm"), target_kl = self:hpv("target_kl"),
    normalize_advantages = self.hp.normalize_advantages, rng = rng,
  }
end

local function check_obs(self, obs, fname)
  if type(obs) ~= "table" then
    fail(fname, 1, ("table of %d numbers expected, got %s"):format(self.obs_dim, type(obs)))
  end
  if self.obs_space then  -- a dict: its parts, flattened (errors name the part)
    local ok, flat = pcall(require("moonrl.spaces").flatten, self.obs_space, obs, self._flat)
    if not ok then fail(fname, 1, (tostring(flat):gsub("^.-spaces%.flatten: ", ""))) end
    return flat
  end
  return obs
end

-- ------------------------------------------------------------ background

-- The trainer (core.bgtrain) holds its own copies of both networks, both
-- optimisers and the minibatch-shuffling generator (its policy's).  That
-- generator carries self.rng's stream, so the background update of a batch
-- is the sliced update of it, bit for bit; self.policy's own generator
-- (acting) never goes to the trainer or comes back from it.
local function push_trainer(self)
  local p = self.policy
  local s = core.rng_state(p)
  core.set_rng_state(p, core.rng_state(self.rng))
  local ok, err = pcall(self.bg.sync_in, self.bg, p, self.value, self.policy_optim, self.value_optim)
  core.set_rng_state(p, s)
  if not ok then error(err, 0) end
  self.pending, self._bgsub = nil, nil
  self._bg_base = self.updates - self.bg:updates()
end

-- The trainer's parameters, moments and shuffling stream into the agent's
-- objects (not while an update runs).
local function pull_trainer(self)
  local p = self.policy
  local s = core.rng_state(p)
  local ok, err = pcall(self.bg.sync_out, self.bg, p, self.value, self.policy_optim, self.value_optim)
  if ok then core.set_rng_state(self.rng, core.rng_state(p)) end
  core.set_rng_state(p, s)
  if not ok then error(err, 0) end
end

local function bg_stats(self)
  local stats = self.bg:report() or {}
  local sub = self._bgsub or {}
  stats.behaviour_ratio, stats.behaviour_kl = sub.ratio, sub.kl
  stats.update_time = sub.t0 and now() - sub.t0 or 0
  stats.pieces, stats.background = 0, true   -- no piece ran on the game thread
  stats.updates, stats.steps, stats.lr = self.updates, self.steps, sub.lr
  for k, v in pairs(self:episode_stats()) do stats[k] = v end
  self.last_stats = stats
  return stats
end

-- Looks at the trainer (wait: after the running update): a failure is
-- reported once (the parameters stay as they were); a finished update is
-- published when `publish` — the one place the acting parameters change.
local function settle(self, publish, wait)
  local bg = self.bg
  local st = wait and bg:wait() or bg:poll()
  if st == "running" then return st end
  self.updates = self._bg_base + bg:updates()
  if st == "failed" then
    if not self._bgsub then return st end
    self._bgsub = nil
    self.last_error = "agent: update refused, parameters kept: " .. bg:error()
    self.failed_updates = (self.failed_updates or 0) + 1
    return st, nil, self.last_error
  end
  if st == "done" and publish then
    bg:publish(self.policy, self.value)
    return "idle", bg_stats(self)
  end
  return st
end

-- The batch waiting in self.pending goes to the trainer if it is free; its
-- update is configured now.  (submit copies the rollout: it refills at once.)
local function try_submit(self)
  local b = self.pending
  if not b or settle(self, false) == "running" then return end
  local ratio, kl = core.rollout_behaviour(b.ro, self.policy)
  local cfg = ppo_config(self, nil)
  self.bg:submit({rollout = b.ro, boot_obs = b.boot, gamma = self:hpv("gamma"),
                  lambda = self:hpv("gae_lambda")}, cfg)
  self._bgsub = {ratio = ratio, kl = kl, t0 = now(), lr = cfg.lr}
  self.pending = nil
end

local function hand_over_bg(self, b)
  if self.pending then
    -- the trainer is still busy with the batch before: wait for it
    -- (a longer frame, counted as for the sliced mode) and submit that one
    self.forced_updates = self.forced_updates + 1
    self.bg:wait()
    try_submit(self)
  end
  self.pending = b
  try_submit(self)
end

-- ------------------------------------------------------------ acting

-- A full buffer waits for the next observation (its bootstrap state); then
-- it goes to the update and the other buffer takes over.
local function hand_over(self, obs)
  local b = self.cur
  local boot = b.boot
  for j = 1, self.obs_dim do boot[j] = obs[j] end
  if self.bg then
    hand_over_bg(self, b)
  elseif self.ready or self.upd then
    -- the previous update is still running: finish it now (see header)
    -- (a refused update is dropped and reported by last_error, as in train_step)
    self.forced_updates = self.forced_updates + 1
    self:train_step(nil)
  end
  if not self.bg then self.ready = b end
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

-- A hybrid action row clipped to its box parts' bounds, in place.
local function clip_cols(a, lo, hi)
  for j, l in pairs(lo) do
    local x = a[j]
    if x < l then a[j] = l elseif x > hi[j] then a[j] = hi[j] end
  end
end

-- policy:act under a mask; a bad mask (a wrong size, a value other than
-- 0/1, a component without a valid action) is the caller's error.
local function masked_act(self, obs, deterministic, mask)
  local ok, a, logp = pcall(self.policy.act, self.policy, obs, deterministic, mask)
  if not ok then error("agent: act: " .. tostring(a):gsub("^[^:]*:%d+: ", ""), 3) end
  return a, logp
end

-- The rollout buffer b keeps masks once the agent has acted under one;
-- steps acted without a mask are all-valid rows.
local function put_mask(self, b, mask)
  if mask == nil and not self.masked then return end
  if not self.masked then
    self.masked = true
    self._ones = {}
    for j = 1, self.mask_width do self._ones[j] = 1 end
  end
  if not b.masked then
    core.rollout_set_mask_width(b.ro, self.mask_width)
    b.masked = true
  end
  core.rollout_put_mask(b.ro, b.n, 0, mask or self._ones)
end

function Agent:act(obs, mask, deterministic)
  obs = check_obs(self, obs, "act")
  if self.last_act then
    error("agent: act() called twice without observe() in between", 2)
  end
  if type(mask) ~= "table" and type(mask) ~= "userdata" and type(mask) ~= "cdata" then
    if mask ~= nil and deterministic == nil then deterministic = mask end
    mask = nil
  elseif not self.mask_width then
    error("agent: act() got a mask, but the policy's " .. self.policy:action_kind() ..
          " actions take none (discrete or multi_discrete only)", 2)
  end
  if deterministic then
    local a, logp
    if self.discrete or self.composite then
      if mask == nil then a, logp = self.policy:act(obs, true) else a, logp = masked_act(self, obs, true, mask) end
      if self.col_low then clip_cols(a, self.col_low, self.col_high) end
    else
      a, logp = self:_act_box(obs, true)
    end
    self.last_act = "greedy"
    return a, logp
  end
  if self.cur.n >= self.n_steps then
    hand_over(self, obs)
  elseif self.pending then
    try_submit(self)
  end
  local b = self.cur
  local a, logp
  if self.discrete or self.composite then
    if mask == nil then
      a, logp = self.policy:act(obs)
    else
      a, logp = masked_act(self, obs, false, mask)
    end
    local o = self._obs1f
    for j = 1, self.obs_dim do o[j] = obs[j] end
    core.rollout_put(b.ro, b.n, 0, o, a, logp)
    put_mask(self, b, mask)
    -- the buffer keeps the sample; the game gets it within the box bounds
    if self.col_low then clip_cols(a, self.col_low, self.col_high) end
  else
    -- (_act_box staged obs in _obs1f and the unclipped action in _act1)
    a, logp = self:_act_box(obs, false)
    core.rollout_put(b.ro, b.n, 0, self._obs1f, self._act1, logp)
  end
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
  local fin = nil
  if truncated and not terminated and final_obs ~= nil then
    final_obs = check_obs(self, final_obs, "observe")
    fin = self._fin1
    for j = 1, self.obs_dim do fin[j] = final_obs[j] end
  end
  core.rollout_outcome(b.ro, b.n, 0, reward, terminated, truncated, fin)
  b.n = b.n + 1
  self.steps = self.steps + 1
  self.ep_return = self.ep_return + reward
  self.ep_length = self.ep_length + 1
  if terminated or truncated then return push_episode(self) end
  return nil
end

-- π(·|s) of a discrete policy, into a reused table (for drawing).
function Agent:probs(obs)
  if not self.discrete then error("agent: probs() needs a discrete policy", 2) end
  obs = check_obs(self, obs, "probs")
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

-- First piece: values and bootstraps, GAE, staleness, and the job (which
-- takes the snapshot an abandoned update restores).
local function prepare(self)
  local b = self.ready
  core.rollout_bootstrap(b.ro, self.value, b.boot)
  b.ro:gae(self:hpv("gamma"), self:hpv("gae_lambda"))
  -- how far the behaviour policy is from the current one on this batch
  local ratio, kl = core.rollout_behaviour(b.ro, self.policy)
  local job = core.ppo_begin(self.policy, self.value, self.policy_optim, self.value_optim, b.ro,
                             ppo_config(self, self.rng))
  self.upd = {buf = b, job = job, behaviour_ratio = ratio, behaviour_kl = kl,
              t0 = now(), pieces = 1, lr = self:hpv("lr")}
end

local function complete(self)
  local u = self.upd
  local rep, err = u.job:finish()
  if not rep then error(err, 0) end
  self.updates = self.updates + 1
  local stats = rep
  stats.behaviour_ratio, stats.behaviour_kl = u.behaviour_ratio, u.behaviour_kl
  stats.pieces, stats.update_time = u.pieces, now() - u.t0
  stats.updates, stats.steps, stats.lr = self.updates, self.steps, u.lr
  for k, v in pairs(self:episode_stats()) do stats[k] = v end
  self.last_stats = stats
  self.upd, self.ready = nil, nil
  return stats
end

local function abandon(self, err)
  local u = self.upd
  -- a failed step has already restored everything; otherwise abort does
  if u and u.job then u.job:abort() end
  self.upd, self.ready = nil, nil
  err = tostring(err)
  if not err:find("update refused", 1, true) then
    err = "agent: update refused, parameters restored: " .. err
  end
  self.last_error = err
  self.failed_updates = (self.failed_updates or 0) + 1
  return nil, self.last_error
end

function Agent:train_step(budget_ms, max_pieces)
  if budget_ms ~= nil and (type(budget_ms) ~= "number" or budget_ms ~= budget_ms or budget_ms < 0) then
    fail("train_step", 1, "milliseconds >= 0 or nil expected, got " .. tostring(budget_ms))
  end
  if max_pieces ~= nil and (type(max_pieces) ~= "number" or max_pieces < 1) then
    fail("train_step", 2, "number of pieces >= 1 or nil expected, got " .. tostring(max_pieces))
  end
  if self.bg then
    -- background: the update runs on the trainer's thread; here it is only
    -- looked at (and published unless publish = "manual")
    local _, stats, err = settle(self, self.publish_mode == "auto")
    if self.pending then try_submit(self) end
    if err then return nil, err end
    return stats
  end
  if not self.ready then return nil end
  local deadline = budget_ms and now() + budget_ms / 1000 or huge
  local left = max_pieces and floor(max_pieces) or huge
  if not self.upd then
    local ok, err = pcall(prepare, self)
    if not ok then return abandon(self, err) end
    left = left - 1
    if left <= 0 or now() >= deadline then return nil end
  end
  -- minibatch pieces: up to `left`, until the deadline, at least one
  local u = self.upd
  local k = left == huge and 0 or left
  local secs = 0
  if deadline ~= huge then
    secs = deadline - now()
    if secs <= 0 then k, secs = 1, 0 end
  end
  local _, before = u.job:progress()
  local done, err = u.job:step(k, secs)
  if done == nil then return abandon(self, err) end
  local _, after = u.job:progress()
  u.pieces = u.pieces + after - before
  if not done then return nil end
  local ok, stats = pcall(complete, self)
  if not ok then return abandon(self, stats) end
  return stats
end

function Agent:busy()
  if self.bg then
    -- a batch waits, is trained, or its result waits to be published
    local st = self.bg:poll()
    return self.pending ~= nil or st == "running" or st == "done"
  end
  return self.ready ~= nil
end

function Agent:finish()
  if self.bg then
    -- every collected batch through the trainer, then published
    self.bg:wait()
    while self.pending do
      try_submit(self)
      self.bg:wait()
    end
    local _, stats, err = settle(self, true)
    if err then error(err, 2) end
    return stats
  end
  if not self.ready then return nil end
  local stats, err = self:train_step(nil)
  if not stats and err then error(err, 2) end
  return stats
end

-- Background mode: the trainer's finished update becomes the acting
-- parameters now (wait: after the running update ends).  Returns its stats,
-- or nil (nothing finished), or nil, message after a refused update.  In
-- the sliced mode there is nothing to publish (nil).
function Agent:publish(wait)
  if not self.bg then return nil end
  local _, stats, err = settle(self, true, wait)
  if self.pending then try_submit(self) end
  if err then return nil, err end
  return stats
end

-- Switches between the sliced update (false) and the background trainer
-- (true) at this frame: the update in progress ends first (its parameters
-- apply now), the other mode continues from the same parameters, moments
-- and shuffling stream.
function Agent:set_background(on)
  on = on and true or false
  if on == (self.bg ~= nil) then return self end
  if on then
    self:finish()
    self.bg = core.bgtrain(self.policy, self.value, self.policy_optim, self.value_optim)
    push_trainer(self)
  else
    self:finish()
    pull_trainer(self)
    self.bg:close()
    self.bg, self.pending, self._bgsub = nil, nil, nil
  end
  return self
end

function Agent:mode() return self.bg and "background" or "sliced" end

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
  obs = check_obs(self, obs, "record")
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
  if self.bg then
    -- the running update ends and is published; the clone then starts from
    -- the trainer's state and goes back to it
    settle(self, true, true)
    pull_trainer(self)
  end
  self.bc_optim = self.bc_optim or core.optim{kind = "adam", n = self.policy:nparams()}
  local r = core.bc_fit(self.policy, self.bc_optim, core.tensor(d.obs):reshape(n, D),
                        core.tensor(d.act):reshape(n, W),
                        {epochs = floor(epochs), minibatch = floor(bs), lr = lr, rng = self.rng})
  if self.bg then push_trainer(self) end
  return {nll = r.nll, last_epoch_nll = r.last_epoch_nll, accuracy = r.accuracy,
          samples = n, epochs = epochs}
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
  local save = require("moonrl.checkpoint").save_trainer
  if not self.bg then
    save(as_trainer(self), path)
    return self
  end
  -- background: the trainer's state (the newest parameters, published or
  -- not, with their moments), after the running update; the acting
  -- parameters are put back, so saving publishes nothing
  settle(self, false, true)
  local pp, vp = self.policy:params(), self.value:params()
  pull_trainer(self)
  local ok, err = pcall(save, as_trainer(self), path)
  self.policy:set_params(pp)
  self.value:set_params(vp)
  if not ok then error(err, 0) end
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
  -- a pending update is dropped first (its abort must not undo the load)
  if self.upd then self.upd.job:abort() end
  self.upd, self.ready = nil, nil
  if self.bg then
    -- the running update belongs to the old parameters: cancelled, unreported
    self.bg:cancel()
    self.pending, self._bgsub = nil, nil
  end
  require("moonrl.checkpoint").restore(as_trainer(self), path)
  self.steps = self.steps_done
  -- collected data and a pending update belong to the old parameters
  self.upd, self.ready = nil, nil
  self.bufs[1].n, self.bufs[2].n = 0, 0
  self.last_act = nil
  self.ep_return, self.ep_length = 0, 0
  if self.bg then push_trainer(self) end
  return self
end

function Agent:close()
  if self.bg then self.bg:close() end   -- a running update is cancelled
  self.bg, self.pending = nil, nil
  if self.upd then self.upd.job:abort() end
  self.upd, self.ready = nil, nil
  self.bufs[1].ro:close()
  self.bufs[2].ro:close()
  self.policy:close()
  self.value:close()
  self.policy_optim:close()
  self.value_optim:close()
  if self.bc_optim then self.bc_optim:close() end
  self.rng:close()
end

function Agent:__tostring()
  return ("moonrl.agent (%d steps, %d updates, %d episodes%s)")
         :format(self.steps, self.updates, self.episodes,
                 (self.bg and ", background" or "") .. (self:busy() and ", updating" or ""))
end

return setmetatable({Agent = Agent, DEFAULTS = DEFAULTS, new = build},
                    {__call = function(_, t) return build(t) end})
