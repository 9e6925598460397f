-- moonrl.help — the texts behind the REPL's help(): one per public function,
-- object kind and method, keyed by the name a user writes ("rl.policy",
-- "Policy", "Policy:act", "rl.wrap.potential", "repl").
--
--   help()            lists the topics
--   help(x)           the text for x: a function (found by value), an object
--                     (by its kind), a module table, or a topic name string
--   H.text(x)         the same text, returned instead of printed
--   H.nameof(v)       the name help knows a function or table by, or nil
--   H.docs            the texts themselves
--
-- Written in the common subset of Lua 5.1/LuaJIT and 5.4.  The trainers'
-- texts are summaries: their modules carry the details.

local H = {}
local concat = table.concat

local docs = {}
H.docs = docs

-- --------------------------------------------------------------- the REPL

docs.repl = [[
The moonrl REPL
  Type Lua.  An expression prints its value (no `=` needed, `= x` also works);
  a statement that is not finished (`function f()`, an open table) continues
  on the next line at the `>>` prompt.  `rl` is require "moonrl".
  Results print through a pretty printer: tables nested and indented, a
  policy with its architecture, a tensor with its shape and first values,
  training statistics as two columns.
Keys
  Tab        complete globals, fields after `.` and methods after `:`
             (rl.pol<Tab>, p:ac<Tab>, rl.wrap.sh<Tab>); on an empty line, indent
  Up/Down    history; kept in ~/.moonrl_history (or $MOONRL_HISTORY; set it
             empty for none), the last 1000 entries, written when you quit
  Ctrl-C     at the prompt: drop the line (or the unfinished chunk);
             while code runs: stop it with the error "interrupted!" at the
             next Lua instruction.  Objects stay valid: a policy interrupted
             in learn keeps the parameters of its last finished update.
             A single long C call (one big update) notices only when it
             returns; a third Ctrl-C kills moonrl.
  Ctrl-D     quit (on an empty line)
Piped input: `moonrl < file.lua` runs it as a script; `moonrl -i < file`
reads it as REPL lines (printing values, no prompts).]]

-- ------------------------------------------------------------ rl functions

docs.rl = [[
rl = require "moonrl": the moonrl module.
  Models       rl.policy{...}, rl.value{...}
  Actions      rl.discrete(n), rl.box(n, low, high), rl.multi_discrete{...},
               rl.multi_binary(n), rl.hybrid{...}; masks: help("masks")
  Optimisers   rl.adam{params=}, rl.sgd{params=}
  Envs         rl.make(id, config), rl.envs, rl.wrap, rl.spaces
  Trainers     rl.ppo, rl.trpo, rl.npg, rl.reinforce, rl.offpolicy
  In a game    rl.agent{...}: act/observe per frame, train_step(ms) slices
               (or background = true: the update on a thread)
  Tensors      rl.tensor(t), rl.zeros(...)
  Math         rl.returns, rl.gae, rl.clip_grad_norm, rl.kl_beta_update
  Files        policy:save(path), rl.load(path)
  Utilities    rl.schedule, rl.log, rl.plot, rl.json, rl.core (the C module)
  rl.version is the version string.]]

docs["rl.policy"] = [[
rl.policy{obs=, action=, hidden={64, 64}, activation="tanh", seed=0,
          init_log_std=0, out_gain=0.01}  -> moonrl.Policy
  A stochastic policy: an MLP from observations to the logits of a
  categorical (action = rl.discrete(n)) or to the means of a diagonal
  Gaussian (action = rl.box(n, low, high), state-independent log std), or
  to the parts of a composite action (rl.multi_discrete, rl.multi_binary,
  rl.hybrid: log-probs, entropies and KLs are sums over the parts).
  obs: a number or an observation space; activation "tanh" or "relu".
  A grid observation {C, H, W} goes through Conv2d layers first:
  rl.core.policy{obs_shape = {4, 10, 10}, conv = {{out = 16, kernel = 3,
  stride = 1, padding = 0}}, hidden = {128}, action = …} (trainers: conv = …).
  Example:  p = rl.policy{obs = 4, action = rl.discrete(2)}
            a, logp = p:act{0.1, 0, -0.2, 0}
            a = p:act(obs, false, mask)      -- under a mask: help("masks")
  help(p) lists the methods.]]

docs["rl.value"] = [[
rl.value{obs=, hidden={64, 64}, activation="tanh", seed=0, out_dim=1,
         out_gain=1}  -> moonrl.Net
  A value network V(s) (baseline or critic): an MLP with out_dim outputs.
  Example:  v = rl.value{obs = 4};  v:forward{0, 0, 0, 0}]]

docs["rl.discrete"] = [[
rl.discrete(n)  -> {type = "discrete", n = n}
  An action space of n actions 0 … n-1 (a categorical policy).]]

docs["rl.box"] = [[
rl.box(n, [low, high])  -> {type = "box", n = n, low = {…}, high = {…}}
  An n-dimensional continuous action (a diagonal Gaussian policy); low and
  high are numbers or arrays of n numbers, both or neither.]]

docs["rl.multi_discrete"] = [[
rl.multi_discrete{n1, n2, …}  -> {type = "multi_discrete", nvec = {…}}
  One categorical choice per component, component j in 0 … nj-1 (move AND
  jump AND pick a target).  An action is a list of integers; masks have
  n1 + n2 + … entries, the components' one after another.]]

docs["rl.multi_binary"] = [[
rl.multi_binary(n)  -> {type = "multi_binary", n = n}
  n independent bits (Bernoulli logits); an action is a list of n 0/1.]]

docs["rl.hybrid"] = [[
rl.hybrid{rl.discrete(4), rl.box(1, -1, 1), …}  -> {type = "hybrid", parts}
  Discrete and continuous parts in one action (a card and an amount): an
  action is a flat list, per part an integer or the box's numbers.  Each
  box part has its own log std; envs clip box parts to their bounds.]]

docs.masks = [[
Invalid-action masks (discrete and multi-discrete actions): K numbers, 1 =
valid, 0 = invalid (K = n, or the sum of nvec).  A masked action has
probability 0: never drawn, log-probs renormalised over the valid ones,
entropy and KL over them; a component with no valid action is an error.
  env side   Env:action_mask(obs, out) -> the mask of obs (into out); the
             engine calls it after every reset and step: v:masks() [N][K]
             (vec.make{masks = false} ignores it)
  training   collect acts under the masks and every loss uses them
  policy     p:act(obs, deterministic, mask), p:evaluate(obs, a, nil, masks)
  in a game  agent:act(obs, mask, [deterministic])
Envs: InvalidAction-v0 (masked), Skirmish-v0 (multi-discrete, masked).]]

docs["rl.adam"] = [[
rl.adam{params = policy_or_net_or_tensor | n = count, beta1 = 0.9,
        beta2 = 0.999, eps = 1e-8}  -> moonrl.Optim
  Adam over n parameters.  opt:step(policy, lr) steps the policy's own
  parameters along its own gradient.]]

docs["rl.sgd"] = [[
rl.sgd{params = … | n = count, momentum = 0}  -> moonrl.Optim
  Stochastic gradient descent (with heavy-ball momentum).]]

docs["rl.tensor"] = [[
rl.tensor(nested_table)  -> moonrl.Tensor, shape from the nesting
rl.tensor(shape_table, fill)  -> every element fill
rl.tensor(t)  -> a copy of tensor t
  Float32, 1 to 4 dimensions, row-major, indices from 1.]]

docs["rl.zeros"] = [[
rl.zeros(d1, d2, …) / rl.zeros{d1, …}  -> a moonrl.Tensor of zeros]]

docs["rl.returns"] = [[
rl.returns(rewards, gamma)  -> reward_to_go (tensor [T]), discounted_return
  Discounted returns of one episode.]]

docs["rl.gae"] = [[
rl.gae(rewards, values, next_values, terminated, truncated, gamma, lambda)
  -> advantages, returns (tensors [T])
  Generalised advantage estimation; a terminated step does not bootstrap, a
  truncated one bootstraps from next_values.]]

docs["rl.clip_grad_norm"] = [[
rl.clip_grad_norm(tensor, max_norm)  -> the norm before clipping
  Scales the tensor in place so that its 2-norm is at most max_norm.]]

docs["rl.kl_beta_update"] = [[
rl.kl_beta_update(beta, mean_kl, target_kl)  -> beta/2, 2*beta or beta
  The adaptive KL-penalty coefficient rule (PPO paper, section 4).]]

docs["rl.make"] = [[
rl.make(id_or_path, {num_envs = 1, threads = 0, seed = 0, config = {}, …})
  -> a batch of environments
  id: a registered env ("CartPole-v1", "Acrobot-v1", "Pendulum-v1",
  "MountainCar-v0", "MountainCarContinuous-v0", …) or a path to an env .lua
  file.  Envs run on worker threads, each with its own Lua state; their
  registered time limit applies.  v:reset(), v:step(actions),
  v:collect(rollout, policy, value), v:episodes(), v:close().]]

docs["rl.load"] = [[
rl.load(path)  -> the policy (or value net) saved by :save(path)
  Safetensors files with the architecture in __metadata__; a truncated or
  hostile file fails with a message.]]

docs["rl.envs"] = [[
rl.envs: finding, loading and checking Lua environments.
  envs.make(id, config), envs.load(id, config), envs.resolve(id),
  envs.search_path(), envs.validate(Env), envs.rng.new(seed).
  Env scripts run in a restricted environment (no io, os, require, load).]]

docs["rl.spaces"] = [[
rl.spaces: observation and action spaces as plain tables.
  spaces.discrete(n), spaces.box(shape, low, high), spaces.validate(s),
  spaces.flat_size(s), spaces.contains(s, x), spaces.sample(s, rng),
  spaces.describe(s)]]

docs["rl.wrap"] = [[
rl.wrap: environment wrappers; each takes an env and returns one.
  shape_reward(env, fn), potential(env, phi, gamma), normalize_obs(env),
  scale_reward(env, …), time_limit(env, steps), clip_action(env),
  frame_stack(env, k), RunningMeanStd]]
docs["rl.wrap.shape_reward"] = [[
rl.wrap.shape_reward(env, fn)  -> env whose reward is fn(obs, action, reward,
  next_obs, …) instead of the env's own (see the wrap module for details).]]
docs["rl.wrap.potential"] = [[
rl.wrap.potential(env, phi, gamma)  -> env with reward r + gamma*phi(s') - phi(s)
  Potential-based shaping (Ng, Harada and Russell 1999): it keeps the
  optimal policies of the original task.]]
docs["rl.wrap.normalize_obs"] = [[
rl.wrap.normalize_obs(env, …)  -> env whose observations are standardised by
  running mean and variance (RunningMeanStd), saved with the policy.]]
docs["rl.wrap.scale_reward"] = [[
rl.wrap.scale_reward(env, …)  -> env whose rewards are divided by a running
  estimate of the return's standard deviation.]]
docs["rl.wrap.time_limit"] = [[
rl.wrap.time_limit(env, max_steps)  -> env that reports truncated at max_steps.]]
docs["rl.wrap.clip_action"] = [[
rl.wrap.clip_action(env)  -> env that clips box actions to the action space.]]
docs["rl.wrap.frame_stack"] = [[
rl.wrap.frame_stack(env, k)  -> env whose observation is the last k stacked.]]

docs["rl.schedule"] = [[
rl.schedule: hyperparameters as functions of progress in [0, 1].
  schedule.linear(from, to), schedule.exponential(from, to),
  schedule.step(values, bounds), schedule.constant(v),
  schedule.resolve(v, progress, name).  Any trainer hyperparameter may be a
  number or such a function, e.g. lr = rl.schedule.linear(3e-4, 0).]]

docs["rl.log"] = [[
rl.log: training logs.
  log.csv(path, columns) -> a log with :row(stats), :flush(), :close()
  (written atomically); log.read_csv(path); log.progress(total) -> a live
  progress line with :update(steps, mean_return), :finish(…).]]

docs["rl.plot"] = [[
rl.plot.svg{path=, title=, xlabel=, ylabel=, series = {{name=, x=, y=}, …},
            hline=, logx=}  -> SVG text (also written to path)
  Line charts as standalone SVG files, e.g. learning curves.]]

docs["rl.json"] = [[
rl.json: json.decode(text), json.try_decode(text), json.encode(value),
  json.null, json.array(t).]]

docs["rl.core"] = [[
rl.core: the C module under rl (see docs/CORE_API.md): core.policy,
  core.net, core.optim, core.tensor, core.zeros, core.returns, core.gae,
  core.value_fit, core.ppo_update, core.vecenv, core.rollout, core.rng,
  core.clip_grad_norm, core.kl_beta_update, core.all_finite; core.version,
  core.abi, core.binding.]]

docs["rl.core.policy"] = [[
core.policy{obs_dim=, action = {type = "discrete", n =} | {type = "box", n =,
            low =, high =}, hidden = {64, 64}, activation = "tanh",
            init_log_std = 0, out_gain = 0.01, seed = 0,
            obs_shape = {C, H, W}, conv = {{out =, kernel =, stride = 1,
            padding = 0}, ...}}  -> moonrl.Policy
  The constructor under rl.policy (which also takes spaces).  With
  obs_shape, a row holds C*H*W numbers, (c, y, x) at (c*H + y)*W + x, and
  obs_dim may be left out; conv puts Conv2d layers (PyTorch's, each followed
  by the activation) before the hidden layers.]]
docs["rl.core.net"] = [[
core.net{in_dim=, hidden = {64, 64}, activation = "tanh", out_dim = 1,
         out_gain = 1, seed = 0}  -> moonrl.Net]]
docs["rl.core.optim"] = [[
core.optim{kind = "adam" | "sgd", n =, beta1 =, beta2 =, eps =}  -> moonrl.Optim]]
docs["rl.core.value_fit"] = [[
core.value_fit(value, optim, obs, targets, [{epochs = 5, minibatch = 64,
               lr = 1e-3, seed = 0 | rng =}])  -> final loss
  Epochs of shuffled minibatch steps on mean (V - target)^2.]]
docs["rl.core.ppo_update"] = [[
core.ppo_update(policy, value, policy_optim, value_optim, rollout, [config])
  -> {policy_loss, value_loss, entropy, approx_kl, clip_fraction,
      explained_variance, grad_norm, epochs_done, minibatches, stopped_early}
  config (SB3 defaults): epochs = 10, minibatch_size = 64, lr = 3e-4,
  clip_eps = 0.2, clip_value = 0, ent_coef = 0, vf_coef = 0.5,
  max_grad_norm = 0.5, target_kl = 0 (off), normalize_advantages = true.
  On failure nothing changes.]]
docs["rl.core.all_finite"] = [[
core.all_finite(tensor)  -> true when no element is NaN or infinite]]
docs["rl.core.rng"] = [[
core.rng(seed)  -> moonrl.Rng: :uniform(), :normal(), :categorical(logits)
  (0-based), :seed(s), :close()]]
docs["rl.core.vecenv"] = [[
core.vecenv{source=, num_envs=, threads=, seed=}  -> moonrl.VecEnv
  Lua envs stepped in batches on worker threads (rl.make builds one).]]
docs["rl.core.rollout"] = [[
core.rollout{steps=, num_envs=, obs_dim=, action_width=}  -> moonrl.Rollout
  The buffer a VecEnv collects into: :gae(gamma, lambda), :field(name).]]

-- -------------------------------------------------------------- trainers

local trainer_common = [[

  agent:learn(steps, {on_update = function(stats, agent) … end,
                      on_episode = function(ep, agent) … end})
    trains for `steps` more env steps (a callback returning false stops);
  agent:collect() / agent:update() -> stats: one rollout, one update;
  agent:save(path), agent:close(); agent.policy is the moonrl.Policy.
  env: rl.make(...) or an env id (with env_opts = {num_envs =, threads =}).
  normalize_obs / normalize_reward (SB3: norm_obs / norm_reward, clip_obs =
  obs_clip = 10, clip_reward = 10): VecNormalize in the C collect, saved
  in checkpoints (ppo, trpo, npg).
  Any hyperparameter may be a function of progress in [0, 1] (rl.schedule).
  Ctrl-C in the REPL stops learn at the next Lua instruction; the policy
  keeps the parameters of its last finished update.  help("Trainer").]]

docs["rl.ppo"] = [[
rl.ppo{env =, seed =, n_steps = 2048, batch_size = 64, epochs = 10, lr = 3e-4,
       clip = 0.2, gamma = 0.99, gae_lambda = 0.95, ent_coef = 0, vf_coef = 0.5,
       max_grad_norm = 0.5, target_kl = 0, normalize_obs = false, hidden = …}
  -> a trainer.  Proximal policy optimisation (Schulman et al. 2017):
  clipped surrogate, GAE, a value baseline; Stable-Baselines3's defaults
  (its option names work too).  kl_penalty = {beta =, target_kl =} selects
  the adaptive-KL variant.]]
  .. trainer_common
docs["rl.trpo"] = [[
rl.trpo{env =, seed =, n_steps = 2048, target_kl = 0.01, cg_max_steps = 15,
        cg_damping = 0.1, n_critic_updates = 10, lr = 1e-3, …}  -> a trainer
  Trust-region policy optimisation (Schulman et al. 2015): the natural
  gradient by conjugate gradient on Fisher-vector products, then a
  backtracking line search that keeps KL(old ‖ new) within target_kl and
  the surrogate improving; the critic is fitted on the GAE returns.]]
  .. trainer_common
docs["rl.npg"] = [[
rl.npg{env =, seed =, n_steps = 2048, target_kl = 0.01, cg_max_steps = 15,
       cg_damping = 0.1, fisher = "analytic" | "empirical", …}  -> a trainer
  Natural policy gradient (Kakade 2001): θ += sqrt(2δ / gᵀF⁻¹g) F⁻¹g, with
  F⁻¹g by conjugate gradient and no line search.]]
  .. trainer_common
docs["rl.reinforce"] = [[
rl.reinforce{env =, seed =, estimator = "reward_to_go", baseline = "value",
             lr = 5e-3, batch_episodes = 8, n_steps = 16, gamma = 0.99,
             normalize_advantages = false, max_grad_norm = 0, value_lr = 1e-3,
             value_epochs = 5, value_minibatch = 64}  -> a trainer
  Vanilla policy gradient (REINFORCE) on complete episodes: estimator
  "reinforce" or "reward_to_go"; baseline "none", "mean", "optimal"
  (reinforce only) or "value" (reward_to_go only: a critic fitted on the
  Monte-Carlo returns with core.value_fit).  Each update takes every episode
  that ended since the last one (at least batch_episodes); episodes still
  running carry over.  A time-limit truncation ends the data (no bootstrap).]]
  .. trainer_common
docs["rl.offpolicy"] = [[
rl.offpolicy{env =, seed =, estimator = "is_first_order", baseline = "value",
             keep = 4, reuse = 4, weight_clip = 0, self_normalize = false,
             min_ess = 0.1, max_kl = 0, behavior = nil, …rl.reinforce's options}
  -> a trainer.  Off-policy policy gradient with importance sampling: the
  last `keep` batches (each with the log-probs of the policy that collected
  it) are reused for `reuse` gradient steps per update.  Estimators
  "is_trajectory", "is_per_decision", "is_full" (baseline "none") and
  "is_first_order"; weight_clip c: weights min(w, c); self_normalize:
  weighted IS.  Stats: mean_ratio, ess, ess_ratio, kl (KL(behaviour‖current)
  from the stored log-probs), dropped (batches whose ess_ratio fell below
  min_ess), batches.  max_kl > 0 stops an update's steps once the newest
  batch's KL passes it; behavior = a policy collects instead of the trainer's.]]
  .. trainer_common

docs.Trainer = [[
A trainer (rl.ppo, rl.trpo, rl.npg, rl.reinforce, rl.offpolicy)
  agent:learn(steps, callbacks)  train for `steps` more env steps -> agent, stats
  agent:collect()                one rollout with the current policy
  agent:update()                 one update on the last rollout -> stats
  agent:episode_stats()          returns and lengths of recent episodes
  agent:save(path)               a checkpoint to resume from
  agent:close()                  frees the envs and buffers
  agent.policy, agent.value      the moonrl.Policy and the critic
  agent.steps_done, agent.updates
  The statistics of an update are a flat table (mean_return, losses, KL, …)
  that the REPL prints as two columns.]]

docs["rl.agent"] = [[
rl.agent{obs =, action = rl.discrete(n) | rl.box(n, lo, hi) | rl.multi_discrete{…} | …,
         hidden = {64, 64},
         algo = "ppo", n_steps = 512, batch_size = 64, epochs = 4, lr = 3e-4,
         clip = 0.2, gamma = 0.99, gae_lambda = 0.95, ent_coef = 0, seed = 0, …}
  -> an agent for a game loop (moonrl.agent): each frame
    local a = agent:act(obs)            -- no allocation per call
    -- or agent:act(obs, mask): never a masked action (help("masks"))
  obs may be a dict space (act then takes the table of named parts) or a
  grid box with conv = {{out =, kernel =, stride =, padding =}, …}.
    agent:observe(reward, terminated, truncated)
    agent:train_step(2)                 -- at most ~2 ms of PPO update work
  A full buffer goes to the update at the next act(); the update runs one
  minibatch per piece across frames while acting goes on with the current
  parameters into a second buffer.  Those transitions keep the log-prob of
  the parameters that acted, so PPO's ratio π_θ/μ is their importance
  weight (clipped).  agent:record(obs, action) + agent:pretrain{…} clone
  the player's play (maximum likelihood) before PPO fine-tunes.
  background = true: the update runs on a runtime thread instead, and the
  game keeps acting with the last PUBLISHED parameters; they change only at
  agent:train_step() (publish = "auto") or agent:publish([wait])
  (publish = "manual"), a frame boundary the game picks.  The ratio
  π_θ/μ corrects the lag as above; the same batch gives the sliced update
  bit for bit.  agent:set_background(on) switches at a frame.
  agent:save(path) / agent:load(path); rl.load(path) reads the policy for a
  shipped game (policy:act(obs, true)).  help("Agent").]]

docs.Agent = [[
An agent (rl.agent{...})
  agent:act(obs, [deterministic])  -> action, logp (greedy: nothing recorded)
  agent:observe(r, term, trunc, [final_obs]) -> return, length at an episode end
  agent:train_step([ms], [pieces]) -> stats when an update finished, else nil
                                      (nil, message if it was refused)
  agent:busy(), agent:finish()     an update pending; run it to the end
  agent:publish([wait])            background: the finished update acts from now
  agent:set_background(on), agent:mode()   "sliced" | "background"
  agent:probs(obs)                 π(·|s) of a discrete policy
  agent:record(obs, action), agent:pretrain{epochs=, batch_size=, lr=}
  agent:demos(), agent:clear_demos(), agent:episode_stats()
  agent:save(path), agent:load(path), agent:close()
  agent.policy, agent.value, agent.steps, agent.updates, agent.episodes,
  agent.last_stats, agent.forced_updates]]

-- --------------------------------------------------------------- objects

docs.Policy = [[
moonrl.Policy — a stochastic policy (rl.policy{...}).
  Rows are observations [N][obs_dim] (a tensor or nested table) or one flat
  row; discrete actions are 0-based integers.  Methods:]]
docs.Net = [[
moonrl.Net — an MLP, used as a value function (rl.value{...}).  Methods:]]
docs.Tensor = [[
moonrl.Tensor — float32, 1 to 4 dimensions, row-major, 1-based indexing.
  t[i] is a number (1-D) or a view of row i; #t is the first dimension;
  views share memory with their base.  Methods:]]
docs.Optim = [[
moonrl.Optim — Adam or SGD state (rl.adam{...}, rl.sgd{...}).  Methods:]]
docs.Rng = [[
moonrl.Rng — a seeded random generator (rl.core.rng(seed)).  Methods:]]
docs.VecEnv = [[
moonrl.VecEnv — Lua envs stepped in batches on worker threads.  Methods:]]
docs.Rollout = [[
moonrl.Rollout — a buffer of collected steps (obs, actions, rewards, …).  Methods:]]

local function method(class, name, text) docs[class .. ":" .. name] = text end

-- Policy
method("Policy", "act", [[
p:act(obs, [deterministic])  -> action, logp
  One row (a flat table of obs_dim numbers, allocation-free): an integer
  action (discrete, 0-based) or a Lua array of n numbers (box), and its log
  probability.  [N][D] rows: an actions tensor [N][width] and logp [N].
  deterministic = true takes the mode (argmax / the mean).]])
method("Policy", "act_into", [[
p:act_into(obs_tensor, actions_out, logp_out | nil, [deterministic])
  Like act for a batch, writing into the given tensors; returns nothing.]])
method("Policy", "evaluate", [[
p:evaluate(obs, actions, [params])  -> logp, entropy
  Log-probabilities of the given actions and the entropies, tensors [N] (two
  numbers for one row); params evaluates at other parameters.]])
method("Policy", "forward", [[
p:forward(obs, [params])  -> logits (discrete) or means (box), [N][out] (or [out] for one row)]])
method("Policy", "kl", [[
p:kl(params_old | nil, params_new | nil, obs)  -> kl tensor [N], mean_kl
  KL(pi_old ‖ pi_new) per row; nil means the current parameters.]])
method("Policy", "params", [[
p:params()  -> a tensor [nparams], a copy, in the documented flat order
  (per Linear: weight [out][in] row-major, then bias; then log_std).]])
method("Policy", "set_params", [[
p:set_params(v)  -> p; v a vector of nparams numbers (non-finite: an error,
  the policy unchanged).]])
method("Policy", "params_view", [[
p:params_view()  -> a view [nparams] of the live parameters (writes bypass
  validation).]])
method("Policy", "grad", [[
p:grad()  -> a view [nparams] of the gradient buffer, set by the loss
  methods (ppo_loss, grad_weighted_logp, kl_penalty_loss, gumbel_grad).]])
method("Policy", "nparams", "p:nparams()  -> the number of parameters")
method("Policy", "obs_dim", "p:obs_dim()  -> the observation size")
method("Policy", "action_kind", [[p:action_kind()  -> "discrete" or "box"]])
method("Policy", "action_n", "p:action_n()  -> actions (discrete) or action dimensions (box)")
method("Policy", "action_width", "p:action_width()  -> numbers per action: 1 (discrete) or n (box)")
method("Policy", "spec", [[
p:spec()  -> a table that rl.core.policy(spec) accepts to rebuild the same
  architecture (obs_dim, hidden, activation, action, init_log_std, out_gain, seed).]])
method("Policy", "bounds", "p:bounds()  -> low, high arrays of a bounded box policy, else nothing")
method("Policy", "grad_weighted_logp", [[
p:grad_weighted_logp(obs, actions, weights, [scale = 1])  -> objective
  sum w log pi(a|s) * scale; grad := its gradient.]])
method("Policy", "ppo_loss", [[
p:ppo_loss(obs, actions, old_logp, adv, [{clip_eps = 0.2, ent_coef = 0,
           normalize_advantages = true}])
  -> {loss, policy_loss, entropy, clip_fraction, approx_kl}; grad := ∇loss]])
method("Policy", "kl_penalty_loss", [[
p:kl_penalty_loss(params_old, obs, actions, old_logp, adv, beta)
  -> loss, mean_kl; grad := ∇loss (the adaptive-KL PPO objective)]])
method("Policy", "fvp", [[
p:fvp(obs, actions | nil, v, damping, [fisher = "analytic" | "empirical"])
  -> (F + damping I) v, a tensor of nparams values]])
method("Policy", "cg", [[
p:cg(obs, actions | nil, g, damping, iters, [fisher])  -> x, xᵀAx
  Conjugate gradient for (F + damping I) x = g.]])
method("Policy", "npg_step", [[
p:npg_step(obs, actions | nil, g, damping, iters, max_kl, [fisher])
  -> step = sqrt(2 max_kl / xᵀAx) x]])
method("Policy", "trpo_step", [[
p:trpo_step(obs, actions, old_logp, adv, [{max_kl = 0.01, damping = 0.1,
            cg_iters = 10, backtrack_coef = 0.8, max_backtracks = 10}])
  -> {accepted, accepted_j, mean_kl, improvement, surrogate_before}
  On acceptance the parameters are the new ones.]])
method("Policy", "pg_gradient", [[
p:pg_gradient(obs, actions, rewards, behavior_logp | nil, values | nil,
              ep_offsets, opts)  -> grad [nparams] (ascent), {mean_ratio, ess, mean_return}
  opts.estimator: "reinforce", "reward_to_go", "is_trajectory",
  "is_per_decision", "is_full", "is_first_order"; opts.baseline: "none",
  "mean", "optimal", "value"; gamma = 0.99, weight_clip, self_normalize.
  ep_offsets: 0-based episode starts.]])
method("Policy", "gumbel_grad", [[
p:gumbel_grad(obs, scores, tau)  -> actions, objective (discrete only)
  grad := the straight-through Gumbel-softmax ascent direction of E[score_a].]])
method("Policy", "save", [[
p:save(path)  writes the policy as safetensors (atomically); rl.load(path)
  reads it back.  The file also loads in PyTorch.]])
method("Policy", "close", [[
p:close()  frees the C handle (also done by the garbage collector); any use
  afterwards raises "attempt to use a closed moonrl.Policy".]])

-- Net
method("Net", "forward", [[
v:forward(x)  -> [N][out] (or [out] for one row); activations are kept for
  backward.]])
method("Net", "backward", [[
v:backward(dy, [want_dx])  grad += dL/dθ for dy = dL/dy (rows of the last
  forward); returns dx when want_dx.]])
method("Net", "zero_grad", "v:zero_grad()  -> v, with the gradient set to 0")
method("Net", "jvp", "v:jvp(x, u)  -> y, (dy/dθ)·u")
method("Net", "value_loss", [[
v:value_loss(obs, targets)  -> loss, values; loss = mean (V - target)^2,
  grad := ∇loss (out_dim 1)]])
method("Net", "value_loss_clipped", [[
v:value_loss_clipped(obs, targets, old_values, clip)  -> loss; grad := ∇loss]])
method("Net", "in_dim", "v:in_dim()  -> the input size")
method("Net", "out_dim", "v:out_dim()  -> the output size")
method("Net", "nparams", "v:nparams()  -> the number of parameters")
method("Net", "spec", "v:spec()  -> a table rl.core.net(spec) rebuilds the architecture from")
method("Net", "params", "v:params()  -> a tensor [nparams], a copy")
method("Net", "set_params", "v:set_params(t)  -> v; non-finite values raise, nothing changes")
method("Net", "params_view", "v:params_view()  -> a view [nparams] of the live parameters")
method("Net", "grad", "v:grad()  -> a view [nparams] of the gradient")
method("Net", "save", "v:save(path)  writes the net as safetensors; rl.load(path) reads it")
method("Net", "close", "v:close()  frees the C handle; later use raises")

-- Tensor
method("Tensor", "shape", "t:shape()  -> an array of the dimensions")
method("Tensor", "dim", "t:dim()  -> the number of dimensions")
method("Tensor", "numel", "t:numel()  -> the number of elements")
method("Tensor", "get", "t:get(i, j, …)  -> one element by its full (1-based) index")
method("Tensor", "set", "t:set(i, j, …, v)  -> t, with that element set")
method("Tensor", "totable", "t:totable()  -> nested Lua tables")
method("Tensor", "fill", "t:fill(v)  -> t, every element v")
method("Tensor", "copy", "t:copy(src)  -> t, with src's values (same element count)")
method("Tensor", "view", "t:view(first, [count])  -> a view of rows first … first+count-1")
method("Tensor", "reshape", "t:reshape(d1, …)  -> a view with another shape, same element count")
method("Tensor", "clone", "t:clone()  -> an owning copy")
method("Tensor", "sum", "t:sum()  -> the sum of the elements (a double)")
method("Tensor", "norm", "t:norm()  -> the 2-norm (a double)")

-- Optim
method("Optim", "step", [[
o:step(policy_or_net, lr)  -> steps taken; updates the object's parameters
  along its own gradient.  o:step(params_tensor, grad, lr) does it on a
  tensor.  A non-finite gradient raises and nothing changes.]])
method("Optim", "reset", "o:reset()  clears the moments and the step count")
method("Optim", "steps", "o:steps()  -> steps taken")
method("Optim", "nparams", "o:nparams()  -> the size")
method("Optim", "kind", [[o:kind()  -> "adam" or "sgd"]])
method("Optim", "close", "o:close()  frees the C state")

-- Rng
method("Rng", "uniform", "r:uniform()  -> a number in [0, 1)")
method("Rng", "normal", "r:normal()  -> a standard normal number")
method("Rng", "categorical", "r:categorical(logits)  -> a 0-based index drawn from softmax(logits)")
method("Rng", "seed", "r:seed(s)  restarts the stream from seed s")

-- ------------------------------------------------------------ the lookup

local getregistry = debug and debug.getregistry
local classes = {"Policy", "Net", "Tensor", "Optim", "Rng", "VecEnv", "Rollout"}

-- A class's methods table, through the metatable the binding registered
-- under its name, or nil (the FFI binding keeps none there).
local function methodtable(class)
  local reg = getregistry and getregistry()
  local mt = type(reg) == "table" and rawget(reg, "moonrl." .. class)
  if type(mt) ~= "table" then return nil end
  local m = rawget(mt, "__methods")
  if type(m) ~= "table" then m = rawget(mt, "__index") end
  return type(m) == "table" and m or nil
end

-- Where help looks a value up: rl's own fields, its loaded submodules, then
-- the core and the classes' methods; the first name found wins, so
-- rl.tensor is not called rl.core.tensor.
local function buildindex()
  local names = {}
  local function add(v, name)
    if (type(v) == "function" or type(v) == "table") and names[v] == nil then
      names[v] = name
    end
  end
  local rl = package.loaded.moonrl
  if type(rl) == "table" then
    add(rl, "rl")
    for k, v in next, rl do
      if type(k) == "string" then add(v, "rl." .. k) end
    end
    for mod, m in next, package.loaded do
      local sub = type(mod) == "string" and mod:match("^moonrl%.([%w_]+)$")
      if sub and type(m) == "table" then
        add(m, "rl." .. sub)
        for k, v in next, m do
          if type(k) == "string" then add(v, "rl." .. sub .. "." .. k) end
        end
      end
    end
  end
  for _, class in ipairs(classes) do
    local m = methodtable(class)
    if m then
      for k, v in next, m do
        if type(k) == "string" then add(v, class .. ":" .. k) end
      end
    end
  end
  return names
end

function H.nameof(v)
  return buildindex()[v]
end

local function sortedkeys(t, filter)
  local out = {}
  for k in pairs(t) do
    if filter == nil or filter(k) then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

-- Words filled into lines of at most `width` characters after `indent`.
local function wrap(words, indent, width)
  local lines, line = {}, indent
  for _, w in ipairs(words) do
    if #line > #indent and #line + 1 + #w > width then
      lines[#lines + 1] = line
      line = indent .. w
    else
      line = (#line > #indent) and (line .. " " .. w) or (line .. w)
    end
  end
  if #line > #indent then lines[#lines + 1] = line end
  return concat(lines, "\n")
end

-- The class text and its methods (from the docs, and from the live
-- methods table when there is one, so nothing undocumented is hidden).
local function classtext(class)
  local set = {}
  local prefix = class .. ":"
  for k in pairs(docs) do
    if k:sub(1, #prefix) == prefix then set[k:sub(#prefix + 1)] = true end
  end
  local m = methodtable(class)
  if m then -- the live methods, when the binding shows them: no promises
    set = {}
    for k in pairs(m) do
      if type(k) == "string" and not k:match("^_") then set[k] = true end
    end
  end
  local lines = {docs[class]}
  for _, k in ipairs(sortedkeys(set)) do
    local d = docs[prefix .. k]
    local first = d and d:match("^[^\n]*") or ("x:" .. k .. "(…)")
    first = "  " .. first:gsub("^%a+:", ":", 1)
    if #first > 78 then first = first:sub(1, 75) .. "..." end
    lines[#lines + 1] = first
  end
  lines[#lines + 1] = ('  help("%s:name") for one method.'):format(class)
  return concat(lines, "\n")
end

local function module_exists(name)
  if package.loaded[name] ~= nil or package.preload[name] ~= nil then return true end
  local search = package.searchpath
  return search == nil or search(name, package.path) ~= nil
end

-- Whether a documented rl.* name is there to use (trainers and modules
-- come and go with the scripts installed), without loading anything.
local function exists(name)
  local rl = package.loaded.moonrl
  if type(rl) ~= "table" then return true end
  local a, rest = name:match("^rl%.([%w_]+)%.?(.*)$")
  if not a then return true end
  if a == "core" then
    return rest == "" or rawget(rl, "core") == nil or rl.core[rest] ~= nil
  end
  if rawget(rl, a) ~= nil then
    return rest == "" or type(rl[a]) ~= "table" or rl[a][rest] ~= nil
  end
  if a == "make" then return module_exists("moonrl.envs") end
  return module_exists("moonrl." .. a)
end

local function topics()
  local isfunc = function(k) return k:match("^rl%.") ~= nil and exists(k) end
  local lines = {
    "moonrl help.  help(x) describes x: a function (help(rl.policy)), an object",
    "(help(p) for a policy p), a module (help(rl.wrap)) or a name",
    '(help("Policy:act"), help("repl") for the REPL\'s keys).',
    "Functions and modules:",
    wrap(sortedkeys(docs, isfunc), "  ", 78),
    "Objects: " .. concat(classes, ", ") .. ", Trainer, Agent",
    'Topics: repl, rl',
  }
  return concat(lines, "\n")
end

-- The text for a name: a documented key, a class, or a method name that
-- some class has ("act" -> Policy:act).
local function namedtext(name)
  if name == "Trainer" then return docs.Trainer end
  if name == "Agent" then return docs.Agent end
  for _, class in ipairs(classes) do
    if name == class or name == "moonrl." .. class then return classtext(class) end
  end
  if docs[name] then return docs[name] end
  if docs["rl." .. name] then return docs["rl." .. name] end
  local short = name:match("^rl%.core%.(.*)$")
  if short and docs["rl." .. short] then return docs["rl." .. short] end
  local cls, meth = name:match("^(%a+)[:%.]([%w_]+)$")
  if cls and docs[cls .. ":" .. meth] then return docs[cls .. ":" .. meth] end
  local found = {}
  for _, class in ipairs(classes) do
    local d = docs[class .. ":" .. name]
    if d then found[#found + 1] = d end
  end
  if #found > 0 then return concat(found, "\n") end
  return nil
end

local function looks_like_trainer(t)
  local ok, learn = pcall(function() return t.learn end)
  return ok and type(learn) == "function"
end

function H.text(...)
  if select("#", ...) == 0 then return topics() end
  local x = ...
  local tx = type(x)
  if tx == "string" then
    return namedtext(x) or ("no help for '" .. x .. "'; help() lists the topics")
  end
  if tx == "nil" then
    return "no help for nil (an undefined name?); help() lists the topics"
  end
  local mt = getmetatable(x)
  local tname = type(mt) == "table" and rawget(mt, "__name")
  if type(tname) == "string" then
    local class = tname:match("^moonrl%.(%a+)$")
    if class then
      local t = namedtext(class)
      if t then return t end
    end
  end
  local name = H.nameof(x)
  if name then
    local t = namedtext(name)
    if t then return t end
  end
  if tx == "table" and looks_like_trainer(x) then return docs.Trainer end
  if tx == "table" and getmetatable(x) == (package.loaded["moonrl.agent"] or {}).Agent then
    return docs.Agent
  end
  local what = name or tostring(x)
  if tx == "table" then
    local keys = sortedkeys(x, function(k) return type(k) == "string" end)
    if #keys > 0 then
      return "no help for " .. what .. "; its fields:\n" .. wrap(keys, "  ", 78)
    end
  end
  return "no help for " .. what .. " (" .. tx .. "); help() lists the topics"
end

function H.help(...)
  io.write(H.text(...), "\n")
end

return H
