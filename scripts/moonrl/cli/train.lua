-- moonrl.cli.train — `moonrl train CONFIG.lua [options]`.
--
-- A config file returns a table:
--   return {
--     algo = "ppo",                      -- "ppo" | "trpo" | "npg" | "reinforce" | "offpolicy"
--     env = "CartPole-v1",               -- an env id or a path to an env file
--     env_opts = {num_envs = 8, threads = 0},
--     steps = 100000, seed = 1,
--     out = "runs/cartpole_ppo",         -- log.csv, policy.safetensors,
--                                        -- checkpoint.safetensors, curve.svg
--     target = 475,                      -- optional: stop once the mean of the
--                                        -- last stats_window (20) episodes reaches it
--     hyperparameters = {n_steps = 64, lr = 2e-3, ...},  -- or at top level
--   }
-- A file that returns nothing is taken to be a script that trained by
-- itself (e.g. examples/cartpole_ppo.lua) and is simply run.
--
-- options: --seed N, --steps N (the budget), --out DIR, --resume CHECKPOINT
--          (continue a run saved in OUT/checkpoint.safetensors up to the
--          budget; exact, see moonrl.trainer), --no-target (train the whole
--          budget), --quiet
--
-- Exit status 0, or 1 when a target was given and not reached.
--
--   require("moonrl.cli.train").run(config) → trainer, result
-- trains from a config table (what examples/main.lua does).
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local M = {}

-- Config keys that are not hyperparameters.
local RESERVED = {algo = true, env = true, env_opts = true, steps = true, seed = true,
                  out = true, target = true, hyperparameters = true, name = true,
                  title = true, curve = true, evaluate = true, stop_at_target = true,
                  copy_curve = true}

-- Under MPI (docs/MPI.md) every rank runs this file; only rank 0 prints
-- and writes files, and an error names its rank.
local function world() return require("moonrl.world") end

local function fail(msg)
  local W = world()
  io.stderr:write(W.distributed and ("[rank " .. W.rank .. "] ") or "", "moonrl train: ", msg, "\n")
  return 1
end

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

-- Trains from a config table; returns the trainer and a result table
-- {reached, steps, seconds, mean_return, out}.
function M.run(cfg, o)
  o = o or {}
  local rl = require "moonrl"
  local core = rl.core
  local T = require "moonrl.trainer"
  local algo = cfg.algo or "ppo"
  local cls = ({ppo = true, trpo = true, npg = true, reinforce = true, offpolicy = true})[algo]
              and require("moonrl." .. algo)
  if not cls then
    error("config: algo must be \"ppo\", \"trpo\", \"npg\", \"reinforce\" or \"offpolicy\", got "
          .. tostring(algo), 0)
  end
  if type(cfg.env) ~= "string" then error("config: env (an env id or path) is required", 0) end
  local seed = o.seed or cfg.seed or 0
  local steps = o.steps or cfg.steps or 100000
  local out = o.out or cfg.out or ("runs/" .. (cfg.name or (tostring(cfg.env):gsub("[^%w_%-]", "_") .. "_" .. algo)))
  local W = world()
  local root = W.rank == 0
  if root then T.mkdir_p(out) end

  local eo = copy(cfg.env_opts)
  if eo.seed == nil then eo.seed = seed end
  local env = require("moonrl.vec").make(cfg.env, eo)
  local opts = {}
  for k, v in pairs(cfg) do if not RESERVED[k] then opts[k] = v end end
  for k, v in pairs(cfg.hyperparameters or {}) do opts[k] = v end
  opts.env, opts.seed, opts.env_id = env, seed, cfg.env
  opts.log = out .. "/log.csv"
  opts.resume = o.resume
  if o.quiet or not root then opts.progress = false end
  local agent = cls(opts)

  local target = cfg.target
  if o.no_target then target = nil end
  local reached_at
  local title = cfg.title or (cfg.env .. " (" .. algo:upper() .. ")")
  if not o.quiet and root then
    print(("moonrl train: %s, %d envs%s, seed %d, budget %d steps%s → %s/")
          :format(title, env.num_envs,
                  W.distributed and (" × " .. W.size .. " ranks") or "", seed, steps,
                  target and (", target " .. target) or "", out))
  end
  local t0 = core.now()
  -- the target is the mean return of the last stats_window (20) episodes
  local window = math.floor(agent:hpv("stats_window"))
  -- a resumed run continues towards the same budget
  local start = agent.steps_done
  local todo = math.max(0, steps - start)
  agent:learn(todo, {on_update = function(s)
    if target and not reached_at and s.mean_return and s.episodes >= window and s.mean_return >= target then
      reached_at = s.steps
      if cfg.stop_at_target ~= false then return false end
    end
  end})
  local seconds = core.now() - t0
  if agent.csv then agent.csv:close() end
  -- the run's statistics over every rank (the last update's)
  local es = agent.last_stats or agent:episode_stats()
  if not root then
    return agent, {reached = reached_at ~= nil, reached_at = reached_at, steps = agent.steps_done,
                   seconds = seconds, mean_return = es.mean_return, out = out,
                   episodes = es.episodes}
  end

  -- the policy alone (with its normaliser and env), then the whole trainer
  local json = require "moonrl.json"
  local extra = {env = cfg.env, env_opts = json.encode(cfg.env_opts and copy(cfg.env_opts) or {})}
  if agent.obs_rms then
    local st = agent.obs_rms:state()
    local norm = {mean = json.array(st.mean), var = json.array(st.var), count = st.count}
    -- the parts of a dict observation that are normalised (the rest pass)
    if type(agent.hp.normalize_obs) == "table" then
      norm.parts = json.array(agent.hp.normalize_obs)
    end
    extra.obs_norm = json.encode(norm)
  end
  require("moonrl.checkpoint").save_policy(agent.policy, out .. "/policy.safetensors", extra)
  agent:save(out .. "/checkpoint.safetensors")

  -- the learning curve from the log
  local rows = require("moonrl.log").read_csv(out .. "/log.csv").rows
  local xs, ys = {}, {}
  for _, r in ipairs(rows) do
    if type(r.mean_return) == "number" then
      xs[#xs + 1], ys[#ys + 1] = r.steps, r.mean_return
    end
  end
  local curve = out .. "/curve.svg"
  require("moonrl.plot").svg{path = curve, title = title, xlabel = "env steps",
    ylabel = ("mean return (last %d episodes)"):format(window), hline = target,
    hline_label = target and ("target " .. target) or nil,
    series = {{name = "seed " .. seed, x = xs, y = ys}}}

  if not W.distributed then es = agent:episode_stats() end
  local result = {reached = reached_at ~= nil, reached_at = reached_at, steps = agent.steps_done,
                  seconds = seconds, mean_return = es.mean_return, out = out, curve = curve,
                  episodes = es.episodes}
  if not o.quiet then
    print(("%s after %d steps in %.2f s (%.0f steps/s): mean return %.1f over the last %d episodes%s")
          :format(title, agent.steps_done, seconds, (agent.steps_done - start) / math.max(seconds, 1e-9),
                  es.mean_return or 0 / 0, math.min(es.episodes or 0, window),
                  target and (reached_at and (", target " .. target .. " reached at " .. reached_at .. " steps")
                                          or (", target " .. target .. " NOT reached")) or ""))
    print(("wrote %s/log.csv, %s/policy.safetensors, %s/checkpoint.safetensors, %s")
          :format(out, out, out, curve))
  end
  return agent, result
end

local USAGE = "usage: moonrl train CONFIG.lua [--seed N] [--steps N] [--out DIR] [--resume CHECKPOINT] [--no-target] [--quiet]"

function M.main(args)
  args = args or {}
  local file
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local function num()
      i = i + 1
      local v = tonumber(args[i])
      if not v then error(a .. " needs a number", 0) end
      return v
    end
    if a == "--seed" then o.seed = num()
    elseif a == "--steps" then o.steps = num()
    elseif a == "--out" then i = i + 1; o.out = args[i]
    elseif a == "--resume" then i = i + 1; o.resume = args[i]
    elseif a == "--no-target" then o.no_target = true
    elseif a == "--quiet" then o.quiet = true
    elseif a == "-h" or a == "--help" then print(USAGE); return 0
    elseif a:sub(1, 2) == "--" then return fail("unknown option " .. a .. "\n" .. USAGE)
    elseif not file then file = a
    else return fail("unexpected argument " .. a .. "\n" .. USAGE) end
    i = i + 1
  end
  if not file then return fail(USAGE) end
  local chunk, err = loadfile(file)
  if not chunk then return fail(err) end
  local ok, cfg = pcall(chunk)
  if not ok then return fail(tostring(cfg)) end
  if cfg == nil then return 0 end   -- a script that trained by itself
  if type(cfg) ~= "table" then return fail(file .. " must return a config table") end
  local ok2, agent, res = pcall(M.run, cfg, o)
  if not ok2 then
    fail(tostring(agent))
    -- distributed: end the whole job now (no rank may wait for this one)
    if world().distributed then world().abort("moonrl train: giving up") end
    return 1
  end
  agent:close()
  -- every rank got here: end MPI cleanly, whatever the exit status
  world().finish()
  if cfg.target and not o.no_target and not res.reached then return 1 end
  return 0
end

-- Required as a module: the table.  Run by the host (`moonrl train …`,
-- which loads this file with the arguments as `...`): main.
if ... == "moonrl.cli.train" then return M end
return M.main({...})
