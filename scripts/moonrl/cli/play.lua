-- moonrl.cli.play — `moonrl play CHECKPOINT [options]`: runs a saved policy
-- (a policy file of `moonrl train` / policy:save, or a trainer checkpoint)
-- and prints each episode's return.
--
-- options: --env ID_OR_PATH (default: the env recorded in the file),
--          --episodes N (default 5), --seed N (first episode's seed, 0),
--          --sample (sample actions; default: the greedy/mean action),
--          --render (print env:render() after every step when the env has
--          a render method; otherwise the option is ignored with a note)
--
-- Exit status 0 on success.
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local M = {}

local USAGE = "usage: moonrl play CHECKPOINT [--env ID] [--episodes N] [--seed N] [--sample] [--render]"

local function fail(msg)
  io.stderr:write("moonrl play: ", msg, "\n")
  return 1
end

-- Plays `episodes` episodes; returns the list of returns.
function M.play(path, o)
  o = o or {}
  local rl = require "moonrl"
  local json = require "moonrl.json"
  local policy, info = rl.load(path)
  local env_id = o.env or info.metadata.env
  if not env_id then
    error(path .. " does not record its env; give --env ID", 0)
  end
  local config
  if info.metadata.env_opts then
    local ok, eo = pcall(json.decode, info.metadata.env_opts)
    if ok and type(eo) == "table" then config = eo.config end
  end
  local env = rl.envs.make(env_id, config)
  local norm = info.obs_norm
  local rms
  if norm then
    rms = rl.core.rms(#norm.mean)
    rms:set_state(norm)
    if norm.parts then  -- only these parts of a dict observation
      local want, mask = {}, {}
      for _, n in ipairs(norm.parts) do want[n] = true end
      for _, part in ipairs(rl.spaces.layout(env.observation_space)) do
        for j = 1, part.size do mask[part.offset + j] = want[part.name] and 1 or 0 end
      end
      rms:set_mask(mask)
    end
  end
  local function prep(obs)
    if not rms then return obs end
    return rms:normalize(obs, 10, 1e-8):totable()
  end
  local render = o.render and type(env.render) == "function"
  if o.render and not render then
    print(("(%s has no render method: printing returns only)"):format(env_id))
  end
  -- an env with invalid-action masks: the policy acts under them (a masked
  -- action is never played), when its actions take masks
  local kind = policy:action_kind()
  local masked = type(env.action_mask) == "function" and
                 (kind == "discrete" or kind == "multi_discrete")
  local mask = {}
  local out = o.out or io.stdout
  local returns = {}
  local episodes = o.episodes or 5
  for ep = 1, episodes do
    local obs = env:reset((o.seed or 0) + ep - 1)
    local ret, len, done = 0, 0, false
    while not done do
      local a
      if masked then
        a = policy:act(prep(obs), not o.sample, env:action_mask(obs, mask))
      else
        a = policy:act(prep(obs), not o.sample)
      end
      local r, term, trunc
      obs, r, term, trunc = env:step(a)
      ret, len = ret + r, len + 1
      done = term or trunc
      if render then
        local s = env:render()
        if s then out:write(tostring(s), "\n") end
      end
    end
    returns[ep] = ret
    out:write(("episode %d: return %.2f (%d steps)\n"):format(ep, ret, len))
  end
  local s = 0
  for _, r in ipairs(returns) do s = s + r end
  out:write(("mean return over %d episodes: %.2f\n"):format(episodes, s / episodes))
  policy:close()
  return returns
end

function M.main(args)
  args = args or {}
  local o, file = {}, nil
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--episodes" or a == "--seed" then
      i = i + 1
      local v = tonumber(args[i])
      if not v then return fail(a .. " needs a number") end
      if a == "--episodes" then o.episodes = v else o.seed = v end
    elseif a == "--env" then i = i + 1; o.env = args[i]
    elseif a == "--render" then o.render = true
    elseif a == "--sample" then o.sample = true
    elseif a == "-h" or a == "--help" then print(USAGE); return 0
    elseif a:sub(1, 2) == "--" then return fail("unknown option " .. a .. "\n" .. USAGE)
    elseif not file then file = a
    else return fail("unexpected argument " .. a .. "\n" .. USAGE) end
    i = i + 1
  end
  if not file then return fail(USAGE) end
  local ok, err = pcall(M.play, file, o)
  if not ok then return fail(tostring(err)) end
  return 0
end

if ... == "moonrl.cli.play" then return M end
return M.main({...})
