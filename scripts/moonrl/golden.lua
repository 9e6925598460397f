-- moonrl.golden — checks the numerical core against golden vectors
-- (../shared/golden/README.md), printing TAP:
--
--   1..N
--   ok 1 - name
--   not ok 2 - name: grad: |got-exp| = 3.1e-02 > allowed 1.2e-05 (n=18)
--   …
--   N passed, N failed
--
-- Every case maps onto one moonrl.core call.  A case of an unknown kind, or
-- with an option value the core does not know, fails; a Lua error inside a
-- case fails that case only.  golden.main{...} takes the command-line words
-- (`--kinds k1,k2` keeps only those kinds, leaving the others out entirely).

local json = require "moonrl.json"

local golden = {}

local core_ -- loaded on first use, so this file loads with any binding
local function core()
  if not core_ then core_ = require "moonrl.core" end
  return core_
end

local unpack = unpack or table.unpack
local sqrt, abs, huge = math.sqrt, math.abs, math.huge

-- ------------------------------------------------------------- comparing

-- Appends the leaves of v (numbers, booleans; tensors and nested tables are
-- walked in row-major order) to out.
local function flatten(v, out)
  local tv = type(v)
  if tv == "table" then
    for i = 1, #v do flatten(v[i], out) end
  elseif tv == "userdata" or tv == "cdata" then  -- a tensor of either binding
    flatten(v:totable(), out)
  elseif tv == "number" or tv == "boolean" then
    out[#out + 1] = v
  else
    error("cannot compare a " .. tv, 0)
  end
  return out
end

local function isint(x)
  return math.type ~= nil and math.type(x) == "integer"
end

-- Integer results whatever the interpreter (LuaJIT cannot tell 1 from 1.0).
local integer_keys = {accepted_j = true}

-- Booleans and integers must match exactly: an expected integer literal
-- against an integer result (a float result, say a reward written as "1",
-- is held to the tolerance instead).
local function isexact(key, g, e)
  if type(e) == "boolean" or type(g) == "boolean" then return true end
  if integer_keys[key] then return true end
  return isint(e) and isint(g)
end

local function fmt(x)
  if x ~= x then return "nan" end
  if type(x) == "number" then return ("%.6g"):format(x) end
  return tostring(x)
end

-- nil when got matches exp under the rule of README.md, else what differed.
function golden.compare(key, got, exp, tol)
  local rtol, atol = tol.rtol or 1e-4, tol.atol or 1e-6
  if got == nil then return key .. ": no value computed" end
  local g, e = flatten(got, {}), flatten(exp, {})
  if #g ~= #e then
    return ("%s: %d values, expected %d"):format(key, #g, #e)
  end
  local d2, e2, n, worst, wi = 0, 0, 0, -1, nil
  for i = 1, #e do
    local gi, ei = g[i], e[i]
    if isexact(key, gi, ei) then
      if gi ~= ei and not (type(gi) == "number" and type(ei) == "number" and gi == ei) then
        return ("%s[%d]: got %s, expected exactly %s"):format(key, i, fmt(gi), fmt(ei))
      end
    else
      if type(gi) ~= "number" then
        return ("%s[%d]: got %s, expected a number"):format(key, i, fmt(gi))
      end
      if gi ~= gi or gi == huge or gi == -huge then
        return ("%s[%d]: got %s"):format(key, i, fmt(gi))
      end
      local d = gi - ei
      d2, e2, n = d2 + d * d, e2 + ei * ei, n + 1
      if abs(d) > worst then worst, wi = abs(d), i end
    end
  end
  if n > 0 then
    local err, allowed = sqrt(d2), atol * sqrt(n) + rtol * sqrt(e2)
    if not (err <= allowed) then
      return ("%s: |got-exp| = %.3e > allowed %.3e (n=%d; worst [%d] got %s, expected %s)")
        :format(key, err, allowed, n, wi, fmt(g[wi]), fmt(e[wi]))
    end
  end
  return nil
end

-- ------------------------------------------------------------------ cases

local function need(case, k)
  local v = case[k]
  if v == nil then error("missing input '" .. k .. "'", 0) end
  return v
end

-- A key of an object the runner does not know fails the case (README).
local function only_keys(obj, what, allowed)
  if type(obj) ~= "table" then error(what .. " must be an object", 0) end
  for k in pairs(obj) do
    if not allowed[k] then error(("unknown key '%s' in %s"):format(tostring(k), what), 0) end
  end
end

-- golden action parts → the core's: categorical n → discrete n, gaussian
-- dim → box n.
local function core_part(a, what)
  if type(a) ~= "table" then error(what .. " must be an object", 0) end
  if a.type == "categorical" then
    only_keys(a, what, {type = true, n = true})
    return {type = "discrete", n = need(a, "n")}
  elseif a.type == "gaussian" then
    only_keys(a, what, {type = true, dim = true})
    return {type = "box", n = need(a, "dim")}
  end
  error(("unknown %s type '%s'"):format(what, tostring(a.type)), 0)
end

-- The golden action names map onto the core's.
local function core_action(a)
  if type(a) ~= "table" then error("policy.action missing", 0) end
  if a.type == "categorical" or a.type == "gaussian" then return core_part(a, "action") end
  if a.type == "multi_discrete" then
    only_keys(a, "action", {type = true, nvec = true})
    return {type = "multi_discrete", nvec = need(a, "nvec")}
  elseif a.type == "multi_binary" then
    only_keys(a, "action", {type = true, n = true})
    return {type = "multi_binary", n = need(a, "n")}
  elseif a.type == "hybrid" then
    only_keys(a, "action", {type = true, parts = true})
    local parts = need(a, "parts")
    if type(parts) ~= "table" or #parts == 0 then error("action.parts must be a non-empty list", 0) end
    local out = {}
    for i, part in ipairs(parts) do out[i] = core_part(part, "action part " .. i) end
    return {type = "hybrid", parts = out}
  end
  error("unknown action type '" .. tostring(a.type) .. "'", 0)
end

-- The kinds that take `masks`, and the action types that allow them.
local mask_kinds = {policy_eval = true, kl = true, ppo_clip = true, kl_penalty = true,
                    logp_grad = true, recurrent_eval = true, recurrent_ppo_clip = true}
local mask_types = {categorical = true, multi_discrete = true}

local policy_keys = {obs_dim = true, hidden = true, activation = true, action = true,
                     obs_shape = true, conv = true}

-- The case's policy, and its masks (nil when the case has none).
local function make_policy(case, objs, key)
  local spec = need(case, key or "policy")
  only_keys(spec, "policy", policy_keys)
  local action = core_action(spec.action)
  local masks = case.masks
  if masks ~= nil and not (mask_kinds[case.kind] and mask_types[spec.action.type]) then
    error(("masks given to a %s case with a %s action, which takes none")
          :format(tostring(case.kind), tostring(spec.action.type)), 0)
  end
  local p = core().policy{obs_dim = spec.obs_dim, hidden = spec.hidden,
                          activation = spec.activation, action = action, seed = 0,
                          obs_shape = spec.obs_shape, conv = spec.conv}
  objs[#objs + 1] = p
  return p, masks
end

local function make_value(case, objs)
  local spec = need(case, "value")
  local n = core().net{in_dim = spec.obs_dim, hidden = spec.hidden,
                       activation = spec.activation, out_dim = 1, seed = 0}
  objs[#objs + 1] = n
  n:set_params(need(case, "value_params"))
  return n
end

local function with_params(case, objs)
  local p, masks = make_policy(case, objs)
  p:set_params(need(case, "params"))
  return p, masks
end

-- The output field of policy_eval for each golden action type.
local out_field = {categorical = "logits", multi_discrete = "logits", multi_binary = "logits",
                   gaussian = "mean", hybrid = "outputs"}

local kinds = {}

function kinds.policy_eval(c, objs)
  local p, masks = with_params(c, objs)
  local out = p:forward(need(c, "obs"))
  local logp, ent = p:evaluate(c.obs, need(c, "actions"), nil, masks)
  return {[out_field[c.policy.action.type]] = out, logp = logp, entropy = ent}
end

function kinds.kl(c, objs)
  local p, masks = make_policy(c, objs)
  local kl, mean = p:kl(need(c, "params_old"), need(c, "params_new"), need(c, "obs"), masks)
  return {kl = kl, mean_kl = mean}
end

-- Σ w log π(a|s) and its gradient (golden-2).
function kinds.logp_grad(c, objs)
  local p, masks = with_params(c, objs)
  local value = p:grad_weighted_logp(need(c, "obs"), need(c, "actions"), need(c, "weights"),
                                     1, masks)
  return {value = value, grad = p:grad():clone()}
end

function kinds.returns(c)
  local rtg, R = core().returns(need(c, "rewards"), need(c, "gamma"))
  return {reward_to_go = rtg, discounted_return = R}
end

function kinds.gae(c)
  local adv, ret = core().gae(need(c, "rewards"), need(c, "values"), need(c, "next_values"),
                              need(c, "terminated"), need(c, "truncated"),
                              need(c, "gamma"), need(c, "lambda"))
  return {advantages = adv, returns = ret}
end

function kinds.value_loss(c, objs)
  local n = make_value(c, objs)
  local loss = n:value_loss(need(c, "obs"), need(c, "targets"))
  return {loss = loss, grad = n:grad():clone()}
end

-- Concatenates episodes into flat arrays and 0-based start offsets.
local function concat_episodes(episodes)
  local obs, actions, rewards, blp, offsets = {}, {}, {}, {}, {}
  local has_blp = true
  for _, ep in ipairs(episodes) do
    offsets[#offsets + 1] = #obs
    local T = #need(ep, "obs")
    for t = 1, T do
      obs[#obs + 1] = ep.obs[t]
      actions[#actions + 1] = need(ep, "actions")[t]
      rewards[#rewards + 1] = need(ep, "rewards")[t]
      if ep.behavior_logp then blp[#blp + 1] = ep.behavior_logp[t] else has_blp = false end
    end
  end
  offsets[#offsets + 1] = #obs
  return obs, actions, rewards, has_blp and blp or nil, offsets
end

function kinds.pg_gradient(c, objs)
  local p = with_params(c, objs)
  local obs, actions, rewards, blp, offsets = concat_episodes(need(c, "episodes"))
  local values
  if c.baseline == "value" then
    values = make_value(c, objs):forward(obs):reshape(#obs)
  end
  local grad = p:pg_gradient(obs, actions, rewards, blp, values, offsets, {
    estimator = need(c, "estimator"), baseline = need(c, "baseline"),
    gamma = need(c, "gamma"), weight_clip = c.weight_clip,
    self_normalize = c.self_normalize,
  })
  return {grad = grad}
end

function kinds.ppo_clip(c, objs)
  local p, masks = with_params(c, objs)
  local s = p:ppo_loss(need(c, "obs"), need(c, "actions"), need(c, "old_logp"),
                       need(c, "advantages"), {clip_eps = need(c, "clip_eps"),
                       ent_coef = need(c, "ent_coef"),
                       normalize_advantages = need(c, "normalize_advantages")}, masks)
  return {loss = s.loss, grad = p:grad():clone(), clip_fraction = s.clip_fraction,
          approx_kl = s.approx_kl}
end

function kinds.kl_penalty(c, objs)
  local p, masks = with_params(c, objs)
  local beta = need(c, "beta")
  local loss, mkl = p:kl_penalty_loss(need(c, "params_old"), need(c, "obs"),
                                      need(c, "actions"), need(c, "old_logp"),
                                      need(c, "advantages"), beta, masks)
  local got = {loss = loss, grad = p:grad():clone(), mean_kl = mkl}
  if c.target_kl ~= nil then got.beta_next = core().kl_beta_update(beta, mkl, c.target_kl) end
  return got
end

function kinds.fvp(c, objs)
  local p = with_params(c, objs)
  return {fvp = p:fvp(need(c, "obs"), c.actions, need(c, "v"), need(c, "damping"),
                      need(c, "fisher"))}
end

function kinds.cg(c, objs)
  local p = with_params(c, objs)
  local x = p:cg(need(c, "obs"), c.actions, need(c, "g"), need(c, "damping"),
                 need(c, "iters"), need(c, "fisher"))
  return {x = x}
end

function kinds.npg_step(c, objs)
  local p = with_params(c, objs)
  return {step = p:npg_step(need(c, "obs"), c.actions, need(c, "g"), need(c, "damping"),
                            need(c, "iters"), need(c, "max_kl"), need(c, "fisher"))}
end

function kinds.trpo_step(c, objs)
  local p = with_params(c, objs)
  local r = p:trpo_step(need(c, "obs"), need(c, "actions"), need(c, "old_logp"),
                        need(c, "advantages"), {max_kl = need(c, "max_kl"),
                        damping = need(c, "damping"), cg_iters = need(c, "cg_iters"),
                        backtrack_coef = need(c, "backtrack_coef"),
                        max_backtracks = need(c, "max_backtracks")})
  return {params_new = p:params(), accepted_j = r.accepted_j, mean_kl = r.mean_kl,
          improvement = r.improvement}
end

function kinds.env_trajectory(c)
  local envs = require "moonrl.envs"
  if type(envs.run_trajectory) ~= "function" then
    error("moonrl.envs has no run_trajectory", 0)
  end
  return envs.run_trajectory(need(c, "env"), need(c, "state"), need(c, "actions"))
end

-- Stable-Baselines3's RunningMeanStd: the batches merged in order, then obs
-- normalised (golden-2).
function kinds.running_norm(c, objs)
  local batches, obs = need(c, "batches"), need(c, "obs")
  if type(batches) ~= "table" or #batches == 0 or type(obs) ~= "table" or #obs == 0 then
    error("batches and obs must be non-empty arrays of rows", 0)
  end
  local dim = type(obs[1]) == "table" and #obs[1] or 0
  local s = core().rms(dim)
  objs[#objs + 1] = s
  for _, b in ipairs(batches) do s:update(b) end
  local st = s:state()
  return {mean = st.mean, var = st.var, count = st.count,
          normalized = s:normalize(obs, need(c, "clip_obs"), need(c, "epsilon"))}
end

-- VecNormalize's reward normalisation, one step per row of rewards.
function kinds.reward_norm(c, objs)
  local rewards, dones = need(c, "rewards"), need(c, "dones")
  if type(rewards) ~= "table" or #rewards == 0 or type(dones) ~= "table" or #dones ~= #rewards then
    error("rewards and dones must be arrays of the same T rows", 0)
  end
  local rn = core().reward_norm(type(rewards[1]) == "table" and #rewards[1] or 0)
  objs[#objs + 1] = rn
  local gamma, clip, eps = need(c, "gamma"), need(c, "clip_reward"), need(c, "epsilon")
  local out = {}
  for t = 1, #rewards do out[t] = rn:step(rewards[t], dones[t], gamma, clip, eps) end
  local st = rn:state()
  return {normalized = out, ret_mean = st.mean, ret_var = st.var, ret_count = st.count}
end

golden.kinds = kinds

-- The file formats this runner reads (golden-2 is a superset of golden-1).
golden.formats = {["moonrl-golden-1"] = true, ["moonrl-golden-2"] = true}

-- Runs one case; returns nil when it passes, else the reason.
function golden.check(case)
  if type(case) ~= "table" then return "case is not an object" end
  local run = kinds[case.kind]
  if not run then return "unknown kind '" .. tostring(case.kind) .. "'" end
  if type(case.expect) ~= "table" then return "no expect" end
  local objs = {}
  local ok, got = pcall(run, case, objs)
  for i = #objs, 1, -1 do objs[i]:close() end
  if not ok then return "error: " .. tostring(got) end
  if type(got) ~= "table" then return "the kind returned no results" end
  local keys = {}
  for k in pairs(case.expect) do keys[#keys + 1] = k end
  table.sort(keys)
  local tol = case.tol or {}
  for _, k in ipairs(keys) do
    local ok2, why = pcall(golden.compare, k, got[k], case.expect[k], tol)
    if not ok2 then return k .. ": " .. tostring(why) end
    if why then return why end
  end
  return nil
end

-- ------------------------------------------------------------------ runner

local function readfile(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a") or f:read("*a")
  f:close()
  return s
end

-- One line, and nothing TAP would read as a directive.
local function oneline(s)
  s = tostring(s):gsub("[\r\n]+", " | "):gsub("#", "\\#")
  return s
end

local function usage(out)
  out:write("usage: moonrl golden [--kinds k1,k2,...] FILE.json ...\n")
end

-- args: the words after `golden`; out: a file (default io.stdout).
-- Returns 0 when every case passed, 1 otherwise.
function golden.main(args, out)
  out = out or io.stdout
  local files, only = {}, nil
  local i = 1
  while i <= #args do
    local a = args[i]
    local list = a:match("^%-%-kinds=(.*)$")
    if a == "--kinds" then i = i + 1; list = args[i] or "" end
    if list then
      only = only or {}
      for k in list:gmatch("[^,%s]+") do only[k] = true end
    elseif a == "-h" or a == "--help" then
      usage(out)
      return 0
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      usage(io.stderr)
      return 2
    else
      files[#files + 1] = a
    end
    i = i + 1
  end
  if #files == 0 then
    usage(io.stderr)
    return 2
  end
  -- every entry: {name=, case=} or {name=, err=} for a file that won't load
  local entries = {}
  for _, path in ipairs(files) do
    local text, err = readfile(path)
    local doc
    if text then
      local ok, d = pcall(json.decode, text)
      if ok then doc = d else err = d end
    end
    if doc and (type(doc) ~= "table" or not golden.formats[doc.format]
                or type(doc.cases) ~= "table") then
      doc, err = nil, "not a moonrl-golden-1 or moonrl-golden-2 file (format "
                      .. tostring(type(doc) == "table" and doc.format or nil) .. ")"
    end
    if not doc then
      entries[#entries + 1] = {name = path, err = "cannot load: " .. tostring(err)}
    else
      for n, case in ipairs(doc.cases) do
        if not only or (type(case) == "table" and only[case.kind]) then
          local name = type(case) == "table" and case.name or nil
          entries[#entries + 1] = {name = name or (path .. " case " .. n), case = case}
        end
      end
    end
  end
  out:write(("1..%d\n"):format(#entries))
  local passed, failed = 0, 0
  for n, e in ipairs(entries) do
    local why = e.err or golden.check(e.case)
    if why then
      failed = failed + 1
      out:write(("not ok %d - %s: %s\n"):format(n, oneline(e.name), oneline(why)))
    else
      passed = passed + 1
      out:write(("ok %d - %s\n"):format(n, oneline(e.name)))
    end
    out:flush()
    if n % 16 == 0 then collectgarbage() end
  end
  out:write(("%d passed, %d failed\n"):format(passed, failed))
  return failed == 0 and 0 or 1
end

return golden
