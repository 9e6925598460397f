-- moonrl.trainer — what every on-policy trainer (ppo, trpo, npg) shares:
-- building the policy, value net and optimisers from an env's spaces,
-- hyperparameter schedules, rollout collection, episode statistics, the
-- progress line, the CSV log, callbacks, the step budget and checkpoints.
--
--   local T = require "moonrl.trainer"
--   local Algo = T.class("ppo", defaults)        -- an algorithm is a subclass
--   function Algo:_update(hp) ... return stats end
--
-- A trainer:
--   t:learn(steps, callbacks) → t        collect/update until `steps` more
--                                         env steps are done or a callback
--                                         returns false
--   t:collect() → n                       one rollout (n = env steps taken)
--   t:update() → stats                    one update on the last rollout
--   t:save(path), t:close()
--   t.policy, t.value, t.env, t.steps_done, t.updates, t:episode_stats()
-- callbacks: {on_update = function(stats, trainer) … end,  -- false stops
--             on_episode = function(ep, trainer) … end}    -- {return, length}
--
-- Hyperparameters are numbers or functions of progress in [0, 1]: the
-- share of the budget spent, steps_done / total_steps.  total_steps is the
-- `total_steps` option when given, else set by each learn(steps) call to
-- steps_done + steps.
--
-- n_steps (the rollout length) is read once, at construction: the
-- rollout buffer has that size.
--
-- Normalisation, as Stable-Baselines3's VecNormalize in training mode, done
-- by the C collect (mrl_rollout_set_norm): normalize_obs = true (SB3:
-- norm_obs) merges each step's raw observations into running statistics
-- (core.rms) and acts on them standardised and clipped to ±obs_clip (SB3:
-- clip_obs, 10); for a dict observation normalize_obs = {"pos", ...} does
-- that to the named parts only (the others reach the policy as they are);
-- normalize_reward = true (SB3: norm_reward) stores rewards
-- divided by the running std of the discounted return (gamma = the
-- trainer's), clipped to ±clip_reward (10).  Both are saved in checkpoints
-- (observation statistics also in policy files); a distributed run merges
-- them over every rank each step.
--
-- Resuming exactly: a checkpoint holds the parameters, the optimiser
-- moments and step counts, the generators (the policy's, which samples
-- actions and shuffles minibatches, and the trainer's), the normaliser, the
-- episode window and the progress.  The one thing it cannot hold is the
-- envs' internal state (it lives in worker Lua states), so saving is a
-- resume point: after save(), the next collect resets every env with a seed
-- derived from the env seed and the number of resume points so far — in
-- the saving run and in a run resumed from the file alike.  Hence "learn N,
-- save, learn M" in one process and "learn N, save" then "resume, learn M"
-- produce bit-identical parameters.  reset_envs_on_save = false keeps the
-- saving run's episodes going (the resumed run still restarts them, so it
-- is then no longer bit-identical).
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local core = require "moonrl.core"
local schedule = require "moonrl.schedule"
local log = require "moonrl.log"
local W = require "moonrl.world"

local M = {}

local floor = math.floor
local now = core.now or os.clock

-- ----------------------------------------------------------- utilities

local function is_callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

-- A hyperparameter must be a number or a function (resolved each update).
local function check_hp(name, v)
  -- normalize_obs may also list the parts of a dict observation to normalise
  if name == "normalize_obs" and type(v) == "table" and not is_callable(v) then
    for i = 1, #v do
      if type(v[i]) ~= "string" then
        error(("bad option 'normalize_obs' (true, or a list of the dict observation's part " ..
               "names; entry %d is a %s)"):format(i, type(v[i])), 4)
      end
    end
    return
  end
  if type(v) ~= "number" and not is_callable(v) and type(v) ~= "boolean" then
    error(("bad option '%s' (number or function of progress expected, got %s)")
          :format(name, type(v)), 4)
  end
end

local function mkdir_p(dir)
  if dir == nil or dir == "" then return end
  -- os.execute is the one portable way in plain Lua; quote for the shell
  os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
end
M.mkdir_p = mkdir_p

local function dirname(path) return path:match("^(.*)/[^/]*$") end
M.dirname = dirname

-- normalize_obs = {"part", ...}: 1 for the columns of the named parts of a
-- dict observation (moonrl.spaces' layout), 0 for the rest.
local function part_mask(space, names, who)
  if type(space) ~= "table" or space.type ~= "dict" then
    error(who .. ": option 'normalize_obs' lists parts, but the observation is not a dict " ..
          "(give true to normalise it all)", 4)
  end
  local mask, want = {}, {}
  for _, n in ipairs(names) do
    if space.parts[n] == nil then
      error(who .. ": option 'normalize_obs' names '" .. n .. "', which is not a part of " ..
            "the observation", 4)
    end
    want[n] = true
  end
  for _, part in ipairs(require("moonrl.spaces").layout(space)) do
    for j = 1, part.size do mask[part.offset + j] = want[part.name] and 1 or 0 end
  end
  return mask
end

-- The env's action space as the policy wants it (one home: moonrl.spaces).
local action_of = require("moonrl.spaces").policy_action
M.action_of = action_of

-- ----------------------------------------------------------- the class

local Trainer = {}
Trainer.__index = Trainer
M.Trainer = Trainer

-- Options every trainer takes (the algorithm adds its own defaults).
local COMMON = {
  gamma = 0.99, gae_lambda = 0.95, n_steps = 2048,
  normalize_obs = false, obs_clip = 10,
  normalize_reward = false, clip_reward = 10,
  stats_window = 20,
}
M.COMMON = COMMON

-- Stable-Baselines3's VecNormalize names for the common options.
local COMMON_ALIASES = {norm_obs = "normalize_obs", clip_obs = "obs_clip",
                       norm_reward = "normalize_reward"}

-- Algorithm classes: T.class(name, defaults) → a table with :new(opts) and
-- __call, so `rl.ppo{...}` and `require("moonrl.ppo"){...}` both work.
function M.class(name, defaults)
  local cls = {name = name, defaults = defaults}
  cls.__index = cls
  setmetatable(cls, {__index = Trainer,
                     __call = function(c, opts) return c.new(opts) end})
  function cls.new(opts) return M.new(cls, opts) end
  return cls
end

-- Keys that are not hyperparameters.
local STRUCTURAL = {env = true, env_opts = true, policy = true, value = true,
                    hidden = true, value_hidden = true, activation = true,
                    seed = true, resume = true, log = true, progress = true,
                    total_steps = true, reset_envs_on_save = true, name = true,
                    init_log_std = true, adam_eps = true, obs = true, action = true,
                    kl_penalty = true, lagrangian = true, quiet = true,
                    threads = true, num_envs = true, algo = true, steps = true, fisher = true,
                    out = true, env_path = true, budget = true, env_id = true,
                    conv = true, value_conv = true}

function M.new(cls, opts)
  if type(opts) ~= "table" then
    error(("bad argument #1 to '%s' (options table expected, got %s)")
          :format(cls.name, type(opts)), 3)
  end
  local self = setmetatable({}, cls)
  self.algo = cls.name
  self.opts = opts
  -- hyperparameters: common defaults, algorithm defaults, the user's
  local hp = {}
  for k, v in pairs(COMMON) do hp[k] = v end
  for k, v in pairs(cls.defaults) do hp[k] = v end
  -- an algorithm may declare option keys of its own that are not
  -- hyperparameters (cls.structural, e.g. reinforce's estimator)
  local own = cls.structural or {}
  for k, v in pairs(opts) do
    if not STRUCTURAL[k] and not own[k] then
      local alias = hp[k] == nil and ((cls.aliases and cls.aliases[k]) or COMMON_ALIASES[k])
      if alias then
        local canon = alias
        if opts[canon] ~= nil then
          error(("%s: options '%s' and '%s' are the same; give one"):format(cls.name, k, canon), 3)
        end
        k = canon
      end
      if hp[k] == nil then
        error(("%s: unknown option '%s'"):format(cls.name, tostring(k)), 3)
      end
      check_hp(k, v)
      hp[k] = v
    end
  end
  self.hp = hp
  self.seed = opts.seed or 0

  -- the env: a moonrl.vec object, or an id/path made here
  local env = opts.env
  self.env_id = opts.env_id or (type(env) == "string" and env) or (type(env) == "table" and env.id) or nil
  if env == nil then
    error(cls.name .. ": option 'env' (rl.make(...) or an env id) is required", 3)
  end
  if type(env) == "string" then
    local eo = {}
    for k, v in pairs(opts.env_opts or {}) do eo[k] = v end
    if eo.seed == nil then eo.seed = self.seed end
    env = require("moonrl.vec").make(env, eo)
    self.owns_env = true
  end
  if type(env) ~= "table" or type(env.collect) ~= "function" or not env.num_envs then
    error(cls.name .. ": option 'env' must be rl.make(...) (a vectorised env) or an env id", 3)
  end
  self.env = env
  self.num_envs = env.num_envs
  self.obs_dim = env.obs_dim
  self.env_seed = env.seed or self.seed

  -- the networks, from the env's spaces unless given; conv = {{out=,
  -- kernel=, stride=, padding=}, ...} puts a convolutional encoder before
  -- the policy's hidden layers for a grid observation {C, H, W}
  local hidden = opts.hidden or {64, 64}
  local obs_shape
  if opts.conv ~= nil or opts.value_conv then
    local shape = env.observation_space and env.observation_space.shape
    if type(shape) ~= "table" or #shape ~= 3 then
      error(cls.name .. ": option 'conv' needs a grid observation {C, H, W}; the env's " ..
            "observation_space has " .. (type(shape) == "table" and #shape or 0) .. " dimensions", 3)
    end
    obs_shape = {shape[1], shape[2], shape[3]}
  end
  self.policy = opts.policy or core.policy{
    obs_dim = self.obs_dim, action = action_of(env.action_space),
    obs_shape = obs_shape, conv = opts.conv,
    hidden = hidden, activation = opts.activation or "tanh",
    init_log_std = opts.init_log_std or 0, seed = self.seed,
  }
  -- the critic is an MLP over the flat grid, unless value_conv gives it
  -- conv layers: true for the policy's, or its own list
  local value_conv = opts.value_conv
  if value_conv == true then value_conv = opts.conv end
  self.value = opts.value or core.net{
    in_dim = self.obs_dim, hidden = opts.value_hidden or hidden,
    obs_shape = value_conv and obs_shape or nil, conv = value_conv or nil,
    activation = opts.activation or "tanh", out_dim = 1, out_gain = 1,
    seed = self.seed + 1,
  }
  if self.policy:obs_dim() ~= self.obs_dim or self.value:in_dim() ~= self.obs_dim then
    error(cls.name .. ": policy/value observation size does not match the env's " .. self.obs_dim, 3)
  end
  local eps = opts.adam_eps or 1e-8
  self.policy_optim = core.optim{kind = "adam", n = self.policy:nparams(), eps = eps}
  self.value_optim = core.optim{kind = "adam", n = self.value:nparams(), eps = eps}
  -- the trainer's own generator (critic shuffling, KL-penalty minibatches)
  self.rng = core.rng(self.seed + 2)

  -- progress and bookkeeping (all of it checkpointed)
  self.steps_done = 0
  self.updates = 0
  self.total_steps = opts.total_steps
  self.segment = 0          -- resume points so far (env reseeds)
  self.need_reset = false   -- reset envs before the next collect
  self.window = {}          -- last stats_window episode returns
  self.window_len = {}
  self.episodes = 0
  self.reset_envs_on_save = opts.reset_envs_on_save ~= false
  self.elapsed = 0          -- wall seconds spent in learn() (informational)
  if self.hp.normalize_obs then
    self.obs_rms = core.rms(self.obs_dim)
    if type(self.hp.normalize_obs) == "table" then
      self.obs_rms:set_mask(part_mask(env.observation_space, self.hp.normalize_obs, cls.name))
    end
  end
  if self:hpv("normalize_reward") then self.rew_norm = core.reward_norm(self.num_envs) end
  self.n_steps = floor(self:hpv("n_steps"))
  self.rollout = env:rollout(self.n_steps)
  if cls.init then cls.init(self) end
  if opts.resume then require("moonrl.checkpoint").restore(self, opts.resume) end
  if W.distributed then self:_join_world() end
  return self
end

-- ------------------------------------------------ distributed (MPI) runs
-- With K > 1 ranks (moonrl.world): every rank starts from rank 0's
-- parameters, optimiser moments and generators (also after a resume); the
-- policy's generator is the shared stream that shuffles minibatches (the
-- same permutation on every rank, see mrl_ppo_config), so actions are
-- sampled from a generator of each rank's own (re-derived from the seed, the
-- rank and the resume point, hence resumes stay exact); steps_done counts
-- the env steps of all ranks.  The trust-region products reduce through the
-- policy's hook.
function Trainer:_join_world()
  core.policy_set_reduce(self.policy, W.reducer)
  W.bcast_params(self.policy)
  W.bcast_params(self.value)
  W.bcast_optim(self.policy_optim)
  W.bcast_optim(self.value_optim)
  W.bcast_rng(self.policy)
  W.bcast_rng(self.rng)
  if self.obs_rms then
    local st = self.obs_rms:state()
    local d = self.obs_dim
    local flat = {st.count}
    for j = 1, d do flat[1 + j], flat[1 + d + j] = st.mean[j], st.var[j] end
    flat = W.bcast_numbers(flat)
    for j = 1, d do st.mean[j], st.var[j] = flat[1 + j], flat[1 + d + j] end
    st.count = flat[1]
    self.obs_rms:set_state(st)
  end
  if self.rew_norm then
    local st = self.rew_norm:state()
    local flat = W.bcast_numbers({st.mean, st.var, st.count})
    self.rew_norm:set_state({mean = flat[1], var = flat[2], count = flat[3]})
  end
end

-- Runs fn(…) with the policy's generator swapped for this rank's sampling
-- generator (distributed runs only).
function Trainer:_with_sampling_rng(fn, ...)
  if not W.distributed then return fn(...) end
  if self._sample_segment ~= self.segment then
    local r = core.rng(W.rank_seed(self.seed) + 0x5bd1e995 + self.segment * 1000003)
    self._sample_state = core.rng_state(r)
    r:close()
    self._sample_segment = self.segment
  end
  local shared = core.rng_state(self.policy)
  core.set_rng_state(self.policy, self._sample_state)
  fn(...)
  self._sample_state = core.rng_state(self.policy)
  core.set_rng_state(self.policy, shared)
end

-- episode_stats() over every rank's window (a collective: every rank
-- calls it at the same point, as update() does).
function Trainer:_world_episode_stats()
  local es = self:episode_stats()
  if not W.distributed then return es end
  local w, wl = self.window, self.window_len
  local s, ls = 0, 0
  for i = 1, #w do s, ls = s + w[i], ls + wl[i] end
  local t = W.sum({s, #w, ls, self.episodes})
  local mx = W.max({es.max_return or -math.huge, -(es.min_return or math.huge)})
  local out = {episodes = t[4]}
  if t[2] > 0 then
    out.mean_return, out.mean_length = t[1] / t[2], t[3] / t[2]
    out.max_return, out.min_return = mx[1], -mx[2]
  end
  return out
end

-- The progress in [0, 1] that schedules see.
function Trainer:progress()
  local total = self.total_steps
  if not total or total <= 0 then return 0 end
  local p = self.steps_done / total
  if p > 1 then p = 1 end
  return p
end

-- A hyperparameter's value now (booleans pass through).
function Trainer:hpv(name)
  local v = self.hp[name]
  if type(v) == "boolean" or v == nil then return v end
  return schedule.resolve(v, self:progress(), name)
end

-- Mean/min/max of the last stats_window episode returns (nil before any).
function Trainer:episode_stats()
  local w = self.window
  local n = #w
  if n == 0 then return {episodes = self.episodes} end
  local s, lo, hi, ls = 0, math.huge, -math.huge, 0
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

function Trainer:_record_episodes(callbacks)
  local size = floor(self:hpv("stats_window"))
  local eps = self.env:episodes()
  for _, ep in ipairs(eps) do
    self.episodes = self.episodes + 1
    local w, wl = self.window, self.window_len
    w[#w + 1] = ep["return"]
    wl[#wl + 1] = ep.length
    while #w > size do table.remove(w, 1); table.remove(wl, 1) end
    if callbacks and callbacks.on_episode then callbacks.on_episode(ep, self) end
  end
end

-- The seed every env restarts from at resume point k.
function Trainer:_segment_seed(k)
  return self.env_seed + k * 1000003
end

-- One rollout of n_steps × num_envs transitions, with advantages.
function Trainer:collect(callbacks)
  local env = self.env
  if self.need_reset then
    env:reset(self:_segment_seed(self.segment))
    if self.rew_norm then self.rew_norm:reset_returns() end
    self.need_reset = false
  end
  if self.obs_rms or self.rew_norm then
    core.rollout_set_norm(self.rollout, {
      obs = self.obs_rms, reward = self.rew_norm, update = true,
      clip_obs = self:hpv("obs_clip"), clip_reward = self:hpv("clip_reward"),
      epsilon = 1e-8, gamma = self:hpv("gamma"),
      reduce = W.distributed and W.reducer or nil})
  end
  self:_with_sampling_rng(env.collect, env, self.rollout, self.policy, self.value)
  self.rollout:gae(self:hpv("gamma"), self:hpv("gae_lambda"))
  local n = self.n_steps * self.num_envs * W.size
  self.steps_done = self.steps_done + n
  self:_record_episodes(callbacks or self._callbacks)
  self.collected = true
  return n
end

-- Normalised observations (one row, or rows) for acting outside training
-- (play, evaluation): the statistics are not updated.
function Trainer:normalize(obs)
  if not self.obs_rms then return obs end
  return self.obs_rms:normalize(obs, self:hpv("obs_clip"), 1e-8):totable()
end

-- ------------------------------------------------------------ update

-- One update on the last rollout; returns the statistics (also given to
-- on_update).
--
-- Numerical guard: a rollout holding a NaN/Inf is refused before any
-- update, naming the field, step and env; and an update that fails (a
-- non-finite loss or gradient refused by the core, or any error) leaves
-- the parameters, optimiser states, generators and the algorithm's extra
-- state exactly as they were before it (some algorithms change the policy
-- before the value net, so the core's own refusal alone is not enough).
local RO_FIELDS = {"obs", "actions", "rewards", "logp", "values", "next_values",
                   "advantages", "returns"}

function Trainer:_check_rollout()
  local ro = self.rollout
  if not ro or not core.all_finite then return end
  for _, name in ipairs(RO_FIELDS) do
    local f = ro:field(name)
    if not core.all_finite(f) then
      local n, N = f:numel(), self.num_envs
      local per = n / (self.n_steps * N)
      local flat = f:reshape(n)
      for k = 1, n do
        local x = flat[k]
        if x ~= x or x == math.huge or x == -math.huge then
          local row = floor((k - 1) / per)
          error(("%s: update refused: rollout field '%s' holds %s at step %d, env %d%s; parameters unchanged")
                :format(self.algo, name, x ~= x and "NaN" or (x > 0 and "inf" or "-inf"),
                        floor(row / N) + 1, row % N,
                        per > 1 and (", element %d"):format((k - 1) % per + 1) or ""), 0)
        end
      end
    end
  end
end

function Trainer:_snapshot()
  local s = {policy = self.policy:params(), value = self.value:params()}
  if core.optim_state then
    s.popt = core.optim_state(self.policy_optim)
    s.vopt = core.optim_state(self.value_optim)
  end
  if core.rng_state then
    s.prng = core.rng_state(self.policy)
    s.trng = core.rng_state(self.rng)
  end
  if self.extra_state then s.extra = self:extra_state() end
  return s
end

function Trainer:_restore(s)
  self.policy:set_params(s.policy)
  self.value:set_params(s.value)
  if s.popt then
    core.set_optim_state(self.policy_optim, s.popt)
    core.set_optim_state(self.value_optim, s.vopt)
  end
  if s.prng then
    core.set_rng_state(self.policy, s.prng)
    core.set_rng_state(self.rng, s.trng)
  end
  if s.extra and self.set_extra_state then self:set_extra_state(s.extra) end
end

function Trainer:update()
  if not self.collected then error(self.algo .. ": update() needs a collect() first", 2) end
  self:_check_rollout()
  local t0 = now()
  local snap = self:_snapshot()
  local ok, stats = pcall(self._update, self)
  if ok and core.all_finite then
    -- a finite gradient times a huge learning rate can still overflow
    for _, which in ipairs({"policy", "value"}) do
      local net = self[which]
      if not core.all_finite(net.params_view and net:params_view() or net:params()) then
        ok, stats = false, ("%s: update refused: it made the %s parameters non-finite (learning rate %s too large?); parameters unchanged")
                          :format(self.algo, which, tostring(self:hpv("lr")))
        break
      end
    end
  end
  if not ok then
    self:_restore(snap)
    error(stats, 0)
  end
  self.collected = false
  self.updates = self.updates + 1
  stats.update_time = now() - t0
  stats.steps = self.steps_done
  stats.updates = self.updates
  local es = self:_world_episode_stats()
  for k, v in pairs(es) do stats[k] = v end
  stats.progress = self:progress()
  return stats
end

-- CSV columns of the log (any missing value is an empty cell).
M.CSV_COLUMNS = {"steps", "updates", "time", "episodes", "mean_return", "min_return",
                 "max_return", "mean_length", "policy_loss", "value_loss", "entropy",
                 "approx_kl", "clip_fraction", "explained_variance", "grad_norm", "lr",
                 "kl_beta", "lagrange_lambda", "accepted", "stopped_early"}

-- Opens the CSV log at path, keeping the rows already there when resuming;
-- columns defaults to M.CSV_COLUMNS (an algorithm may add its own).
function M.open_csv(path, keep, columns)
  mkdir_p(dirname(path))
  local old
  if keep then
    local f = io.open(path, "r")
    if f then
      old = {}
      f:read("*l")
      for line in f:lines() do old[#old + 1] = line end
      f:close()
    end
  end
  local c = log.csv(path, columns or M.CSV_COLUMNS)
  if old then for _, l in ipairs(old) do c.lines[#c.lines + 1] = l end; c:flush() end
  return c
end

-- learn(steps, callbacks): train for `steps` more env steps (rounded up to
-- whole rollouts).  callbacks.on_update(stats, trainer) returning false
-- stops; callbacks.on_episode(ep, trainer) sees each finished episode.
-- Options of the trainer used here: log = "path.csv" (CSV of every update),
-- progress = true | false | "tty" | "lines" (default: lines unless quiet).
function Trainer:learn(steps, callbacks)
  if type(steps) ~= "number" or steps < 0 then
    error("bad argument #1 to 'learn' (number of env steps >= 0 expected, got " .. tostring(steps) .. ")", 2)
  end
  callbacks = callbacks or {}
  if type(callbacks) ~= "table" then
    error("bad argument #2 to 'learn' (table of callbacks expected, got " .. type(callbacks) .. ")", 2)
  end
  -- Distributed: an error on any rank ends the whole job (printed with its
  -- rank), instead of leaving the other ranks waiting in a collective.
  if W.distributed and not self._in_world_learn then
    self._in_world_learn = true
    local ok, a, b = pcall(self.learn, self, steps, callbacks)
    self._in_world_learn = nil
    if not ok then W.abort(self.algo .. ": " .. tostring(a)) end
    return a, b
  end
  local target = self.steps_done + steps
  if not self.opts.total_steps then self.total_steps = target end
  local prog
  local popt = self.opts.progress
  if popt == nil then popt = not self.opts.quiet end
  if W.rank ~= 0 then popt = false end   -- only rank 0 shows progress and logs
  if popt then
    local tty = popt == "tty"
    if popt == true then
      local term = os.getenv("TERM")
      tty = term ~= nil and term ~= "" and term ~= "dumb" and os.getenv("MOONRL_PROGRESS") ~= "lines"
    end
    prog = log.progress(target, {clock = now, tty = tty, every = tty and 0.1 or 2})
    prog.start_steps, prog.t_start = self.steps_done, prog.t0
  end
  if self.opts.log and not self.csv and W.rank == 0 then
    self.csv = M.open_csv(self.opts.log, self.opts.resume ~= nil, self.csv_columns)
  end
  self._callbacks = callbacks
  local t0 = now()
  local base_elapsed = self.elapsed
  local last
  while self.steps_done < target do
    self:collect(callbacks)
    local stats = self:update()
    self.elapsed = base_elapsed + (now() - t0)
    stats.time = self.elapsed
    last = stats
    if self.csv then self.csv:row(stats) end
    if prog then
      local start = prog.start_steps
      if start > 0 then
        -- log.progress rates steps/(now − t0); a resumed run counts only
        -- this call's steps, so move t0 back in proportion
        local t = now()
        prog.t0 = t - (t - prog.t_start) * self.steps_done / math.max(self.steps_done - start, 1)
      end
      prog:update(self.steps_done, stats.mean_return)
    end
    local stop = callbacks.on_update and callbacks.on_update(stats, self) == false
    -- every rank stops when rank 0's callback says so
    if W.distributed then stop = W.root_says(stop) end
    if stop then break end
  end
  self._callbacks = nil
  if self.csv then self.csv:flush() end
  if prog then prog:finish(self.steps_done, self:episode_stats().mean_return) end
  self.last_stats = last
  return self, last
end

-- ------------------------------------------------------ checkpoints

function Trainer:save(path)
  local ck = require "moonrl.checkpoint"
  if self.reset_envs_on_save then
    -- this save is a resume point: restart the episodes here, as a resumed
    -- run will (see the header)
    self.segment = self.segment + 1
    self.need_reset = true
    if W.rank == 0 then ck.save_trainer(self, path) end   -- only rank 0 writes
  else
    -- the file says "restart the envs at segment+1"; this run goes on
    self.segment = self.segment + 1
    local ok, err = true, nil
    if W.rank == 0 then ok, err = pcall(ck.save_trainer, self, path) end
    self.segment = self.segment - 1
    if not ok then error(err, 2) end
  end
  return self
end

function Trainer:close()
  if self.csv then self.csv:close(); self.csv = nil end
  if self.owns_env and self.env then self.env:close() end
  if self.rollout then self.rollout:close() end
  if self.obs_rms then self.obs_rms:close() end
  if self.rew_norm then self.rew_norm:close() end
end

function Trainer:__tostring()
  return ("moonrl.%s (%d envs, %d steps done, %d updates)")
         :format(self.algo, self.num_envs, self.steps_done, self.updates)
end

return M
