-- moonrl.vec: a batch of Gymnasium-style envs stepped by the C engine
-- (moonrl.core.vecenv), the object behind rl.make(...).
--
--   local v = vec.make("CartPole-v1", {num_envs = 8, threads = 2, seed = 1})
--   local obs = v:reset()                       -- tensor [N][obs_dim]
--   local obs, rew, term, trunc = v:step(actions)
--   v:collect(rollout, policy, value)           -- fills a moonrl.Rollout
--   for _, ep in ipairs(v:episodes()) do print(ep["return"], ep.length) end
--   v:close()
--
-- source: an env id ("CartPole-v1"), a path to an env .lua file, or an env
-- table (a class with new/reset/step, or one env object when num_envs = 1),
-- which then runs in the caller's own Lua state.
-- opts: num_envs (1), threads (0: step in the calling thread), seed (0),
-- config (table given to Env.new; copied into each worker), budget
-- (instructions per env call, 0 = none), env_path (extra folders for ids),
-- max_episode_steps (overrides the env's registered limit; false = none),
-- memory (bytes per worker Lua state, 0 = no cap; file envs only),
-- trusted (true: the env file runs with the host's globals, no sandbox —
-- for scripts you wrote; see docs/SECURITY.md), reload ("auto": watch the
-- env file and reload it when it changes, checked at every collect() and
-- every reload_every (256) step() calls), on_reload(ok, err) (called after
-- each automatic reload attempt; without it a failed reload is written to
-- stderr), masks (false: ignore the env's action_mask).
--
-- Spaces: observations are flat arrays of any box (a grid {C, H, W} in
-- C-major order); actions are discrete, box, multi_discrete, multi_binary
-- or hybrid (moonrl.spaces), one row per env (a discrete index; else the
-- flat list).  Invalid-action masks: an env with discrete or multi-discrete
-- actions may define Env:action_mask(obs, out) → an array of K numbers
-- (1 = valid, 0 = invalid; K = n, or the sum of nvec), written into out
-- or a new table; the engine calls it after every reset and step, checks
-- it (every component keeps a valid action) and v:masks() reads them.
--
-- Hot reload: v:reload() loads the env file again in every worker; if it
-- loads and declares the same spaces, each env copy switches to the new
-- code at its next episode boundary (an auto-reset or reset()).  If not,
-- the old code keeps running and reload() returns nil, message (it never
-- raises for a bad file).  v:reload(true) does nothing (returns false)
-- unless the file changed.
--
-- The time limit (Gymnasium's TimeLimit, from Env.max_episode_steps) is
-- counted inside the engine per env copy: a step that reaches it without
-- terminating is reported truncated, and the copy is reset.
--
-- Optional fast path: an env class may also define
--   Env:step_into(action, obs) → reward, terminated, truncated
--   Env:reset_into(seed, obs)
-- which write the observation into obs (a table the engine reuses; do not
-- keep it) instead of returning a new one; the engine then calls these and
-- checks what they wrote exactly as it checks step/reset.  They must agree
-- with step/reset; a subclass that overrides step sets step_into = false
-- (or overrides it too).  The shipped envs/ define both.
--
-- Returned tensors are views of the engine's buffers: they change at the
-- next reset/step; copy what you keep.
--
-- Written in the common subset of Lua 5.1/LuaJIT and 5.4.

local spaces = require "moonrl.spaces"

local vec = {}

local Vec = {}
Vec.__index = Vec

local function core()
  local ok, c = pcall(require, "moonrl.core")
  if not ok then error("moonrl.vec: cannot load moonrl.core: " .. tostring(c), 3) end
  if type(c.vecenv) ~= "function" then
    error("moonrl.vec: this binding of moonrl.core has no vecenv", 3)
  end
  return c
end

local function check_opts(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error("moonrl.make: bad argument #2 (options table expected, got " .. type(opts) .. ")", 3)
  end
  return opts
end

function vec.make(source, opts)
  opts = check_opts(opts)
  local st = type(source)
  if st ~= "string" and st ~= "table" then
    error("moonrl.make: bad argument #1 (env id, path or env table expected, got " .. st .. ")", 2)
  end
  local c = core()
  -- each rank of a distributed run steps its own episodes (moonrl.world)
  local seed = require("moonrl.world").rank_seed(opts.seed or 0)
  local mes = opts.max_episode_steps
  if mes ~= nil and mes ~= false and (type(mes) ~= "number" or mes < 1 or mes ~= math.floor(mes)) then
    error("moonrl.make: max_episode_steps must be a positive integer or false, got " .. tostring(mes), 2)
  end
  local handle = c.vecenv{
    source = source,
    config = opts.config,
    num_envs = opts.num_envs or 1,
    threads = opts.threads or 0,
    seed = seed,
    budget = opts.budget or 0,
    memory = opts.memory or 0,
    trusted = opts.trusted and true or false,
    env_path = opts.env_path,
    max_episode_steps = mes,
    masks = opts.masks,
  }
  local self = setmetatable({
    handle = handle,
    num_envs = handle:num_envs(),
    obs_dim = handle:obs_dim(),
    threads = handle:threads(),
    observation_space = handle:observation_space(),
    action_space = handle:action_space(),
    seed = seed,
    started = false,
    auto_reload = opts.reload == "auto",
    reload_every = opts.reload_every or 256,
    on_reload = opts.on_reload,
    steps_since_check = 0,
  }, Vec)
  if opts.reload ~= nil and opts.reload ~= "auto" and opts.reload ~= false then
    handle:close()
    error("moonrl.make: reload must be \"auto\" or false, got " .. tostring(opts.reload), 2)
  end
  local limit = handle:max_episode_steps()
  self.max_episode_steps = limit > 0 and limit or nil
  -- numbers per action row: 1 per discrete index, n per box dimension or bit
  local as = self.action_space
  self.action_width = as.type == "discrete" and 1 or spaces.flat_size(as)
  self.mask_width = spaces.mask_size(as) and self.handle:masks() and spaces.mask_size(as) or 0
  return self
end

-- seed: nil continues with fresh reproducible seeds (the make seed first).
function Vec:reset(seed)
  local obs = self.handle:reset(seed)
  self.started = true
  return obs
end

function Vec:step(actions)
  if self.auto_reload then
    local n = self.steps_since_check + 1
    if n >= self.reload_every then self:check_reload(); n = 0 end
    self.steps_since_check = n
  end
  return self.handle:step(actions)
end

-- Reloads the env file now: true, or nil and a message (old code kept).
function Vec:reload()
  if type(self.handle.reload) ~= "function" then
    return nil, "reload: this binding of moonrl.core cannot reload envs"
  end
  local ok, err = self.handle:reload()
  self.reload_error = err
  return ok, err
end

-- The automatic check: reloads when the file changed; a failure is
-- reported (on_reload, or stderr once per change), never raised.
function Vec:check_reload()
  if type(self.handle.reload) ~= "function" then return false end
  local ok, err = self.handle:reload(true)
  if ok == false then return false end
  self.reload_error = err
  if self.on_reload then
    self.on_reload(ok, err)
  elseif not ok then
    io.stderr:write("moonrl: reload failed, the previous env code keeps running: ", tostring(err), "\n")
  end
  return ok, err
end

-- A rollout buffer shaped for this vecenv: steps × num_envs transitions.
function Vec:rollout(steps)
  return core().rollout{steps = steps, num_envs = self.num_envs,
                        obs_dim = self.obs_dim, action_width = self.action_width}
end

-- Fills rollout (created with :rollout(steps)) with the policy acting;
-- value (a moonrl.Net, optional) records V(s) and the bootstrap values.
-- The first call resets the envs with the make seed.
function Vec:collect(rollout, policy, value)
  if self.auto_reload then self:check_reload() end
  if not self.started then self:reset() end
  return self.handle:collect(rollout, policy, value)
end

function Vec:final_obs() return self.handle:final_obs() end
-- The envs' invalid-action masks for the current observations ([N][K], 1 =
-- valid), from the env's action_mask(obs, out); nil when it has none (or
-- the vec was made with masks = false).
function Vec:masks() return self.handle:masks() end
function Vec:episodes() return self.handle:episodes() end
function Vec:total_steps() return self.handle:total_steps() end
function Vec:close() self.handle:close() end

function Vec:__tostring() return tostring(self.handle) end

vec.Vec = Vec

return vec
