-- moonrl.checkpoint — policies, value networks and whole trainers as
-- safetensors files (core.st_write / core.st_read).
--
-- Tensor names follow PyTorch's nn.Sequential, where activations sit
-- between the Linear layers, so Linear k has index 2k:
--   policy.0.weight [h1][obs]  policy.0.bias [h1]  policy.2.weight …
-- A convolutional policy is Conv2d, act, …, Flatten, Linear, …: conv i
-- (0-based) has index 2i, the Linears start after the Flatten at 2·nconv:
--   policy.0.weight [F][C][k][k]  policy.0.bias [F]  policy.2.weight …
--   policy.<2·nconv + 1>.weight [h1][F·H'·W']  …
--   policy.log_std [n] (Gaussian policies)
--   policy.log_std.<i> [n] (hybrid actions: one per gaussian part, i its
--   0-based index among the parts)
--   value.0.weight …                      (trainer checkpoints; a conv
--   value net is named as a conv policy)
--   optim.policy.m, optim.policy.v, optim.value.m, optim.value.v
-- `__metadata__` holds JSON strings (moonrl.json):
--   format = "moonrl", kind = "policy" | "trainer",
--   policy = the policy's spec() (architecture, action space, seed),
--   value = the value net's spec(), obs_norm = {mean, var, count} or absent,
--   trainer = {algo, steps_done, updates, …, rng states as hex, optimiser
--   step counts, episode window, kl beta …}.
--
--   checkpoint.save_policy(policy, path, [extra_meta])
--   checkpoint.load_policy(path) → policy, info {obs_norm, metadata, kind}
--   checkpoint.save_trainer(trainer, path) / checkpoint.restore(trainer, path)
--   checkpoint.install(core)   adds :save(path) to Policy and Net objects
--
-- Written in the common subset of Lua 5.4 and LuaJIT.

local core = require "moonrl.core"
local json = require "moonrl.json"

local M = {}

local function tohex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end
local function fromhex(h)
  return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end))
end

-- The Conv2d layers of a policy spec as {out, in, kernel}, and the size of
-- their flattened output (nil without conv layers).
local function conv_layers(spec)
  if type(spec.conv) ~= "table" or #spec.conv == 0 then return {}, nil end
  local c, h, w = spec.obs_shape[1], spec.obs_shape[2], spec.obs_shape[3]
  local out = {}
  for i, l in ipairs(spec.conv) do
    local k, s, p = l.kernel, l.stride or 1, l.padding or 0
    out[i] = {l.out, c, k}
    c = l.out
    h = math.floor((h + 2 * p - k) / s) + 1
    w = math.floor((w + 2 * p - k) / s) + 1
  end
  return out, c * h * w
end

-- Layer sizes {in, h1, …, out} of a policy or net spec (in: the conv
-- layers' flattened output when there are some).
local function layer_dims(spec, kind)
  local _, conv_out = conv_layers(spec)
  local dims = {conv_out or (kind == "policy" and spec.obs_dim or spec.in_dim)}
  for _, h in ipairs(spec.hidden or {}) do dims[#dims + 1] = h end
  if kind == "policy" then
    dims[#dims + 1] = spec.action.n
  else
    dims[#dims + 1] = spec.out_dim
  end
  return dims
end

-- Adds prefix.<2k>.weight / .bias views of the flat vector to `out`;
-- returns the number of floats used.
local function split(out, prefix, flat, dims, convs)
  local off, base = 0, 0
  for i, c in ipairs(convs or {}) do
    local f, nin, k = c[1], c[2], c[3]
    out[prefix .. "." .. 2 * (i - 1) .. ".weight"] =
      flat:view(off + 1, f * nin * k * k):reshape(f, nin, k, k)
    off = off + f * nin * k * k
    out[prefix .. "." .. 2 * (i - 1) .. ".bias"] = flat:view(off + 1, f)
    off = off + f
    base = 2 * i + 1
  end
  for k = 1, #dims - 1 do
    local nin, nout = dims[k], dims[k + 1]
    local idx = base + 2 * (k - 1)
    out[prefix .. "." .. idx .. ".weight"] = flat:view(off + 1, nin * nout):reshape(nout, nin)
    off = off + nin * nout
    out[prefix .. "." .. idx .. ".bias"] = flat:view(off + 1, nout)
    off = off + nout
  end
  return off
end

-- The inverse: fills flat from the named tensors, checking every shape.
local function join(tensors, prefix, flat, dims, path, convs)
  local off, base = 0, 0
  local function take(name, count)
    local t = tensors[name]
    if t == nil then error(("%s: tensor '%s' is missing"):format(path, name), 0) end
    if t:numel() ~= count then
      error(("%s: tensor '%s' has %d values, the architecture needs %d")
            :format(path, name, t:numel(), count), 0)
    end
    flat:view(off + 1, count):copy(t:reshape(count))
    off = off + count
  end
  for i, c in ipairs(convs or {}) do
    take(prefix .. "." .. 2 * (i - 1) .. ".weight", c[1] * c[2] * c[3] * c[3])
    take(prefix .. "." .. 2 * (i - 1) .. ".bias", c[1])
    base = 2 * i + 1
  end
  for k = 1, #dims - 1 do
    local nin, nout = dims[k], dims[k + 1]
    local idx = base + 2 * (k - 1)
    take(prefix .. "." .. idx .. ".weight", nin * nout)
    take(prefix .. "." .. idx .. ".bias", nout)
  end
  return off, take
end

-- The log_std tensors after the network, in parameter order: {name, n}.
local function log_std_slices(action)
  if action.type == "box" then return {{"policy.log_std", action.n}} end
  local out = {}
  if action.type == "hybrid" then
    for i, part in ipairs(action.parts or {}) do
      if part.type == "box" then out[#out + 1] = {"policy.log_std." .. (i - 1), part.n} end
    end
  end
  return out
end

local function add_policy(tensors, meta, policy)
  local spec = policy:spec()
  local flat = policy:params()
  local used = split(tensors, "policy", flat, layer_dims(spec, "policy"), (conv_layers(spec)))
  for _, s in ipairs(log_std_slices(spec.action)) do
    tensors[s[1]] = flat:view(used + 1, s[2])
    used = used + s[2]
  end
  -- an empty hidden list is [] in the file, not {} (an empty Lua table)
  spec.hidden = json.array(spec.hidden)
  meta.policy = json.encode(spec)
end

local function add_value(tensors, meta, value)
  local spec = value:spec()
  split(tensors, "value", value:params(), layer_dims(spec, "value"), (conv_layers(spec)))
  spec.hidden = json.array(spec.hidden)
  meta.value = json.encode(spec)
end

local function write(path, tensors, meta)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then require("moonrl.trainer").mkdir_p(dir) end
  local ok, err = core.st_write(path, tensors, meta)
  if not ok then error("cannot save " .. path .. ": " .. tostring(err), 3) end
end

-- {mean, var, count} of a core.rms: the format older files hold too.
local function rms_state(rms)
  if not rms then return nil end
  local st = rms:state()
  return {mean = json.array(st.mean), var = json.array(st.var), count = st.count}
end

-- policy:save(path, [extra]) — the policy alone (plus `extra` metadata
-- strings, e.g. obs_norm).
function M.save_policy(policy, path, extra)
  local tensors, meta = {}, {format = "moonrl", kind = "policy"}
  add_policy(tensors, meta, policy)
  for k, v in pairs(extra or {}) do meta[k] = v end
  write(path, tensors, meta)
  return policy
end

function M.save_value(value, path)
  local tensors, meta = {}, {format = "moonrl", kind = "value"}
  add_value(tensors, meta, value)
  write(path, tensors, meta)
  return value
end

local function read(path)
  local tensors, meta = core.st_read(path)
  if not tensors then error("cannot load " .. path .. ": " .. tostring(meta), 3) end
  return tensors, meta
end

local function decode(meta, key, path)
  local s = meta[key]
  if s == nil then return nil end
  local ok, v = pcall(json.decode, s)
  if not ok then error(("%s: metadata '%s' is not valid JSON: %s"):format(path, key, tostring(v)), 0) end
  return v
end

-- Plain Lua arrays decoded from JSON may hold json.null; none are expected.
local function build_policy(tensors, meta, path)
  local spec = decode(meta, "policy", path)
  if type(spec) ~= "table" then error(path .. ": no 'policy' architecture in the metadata", 0) end
  local p = core.policy(spec)
  local flat = core.zeros(p:nparams())
  local used = join(tensors, "policy", flat, layer_dims(spec, "policy"), path,
                    (conv_layers(spec)))
  for _, s in ipairs(log_std_slices(spec.action)) do
    local t = tensors[s[1]]
    if not t or t:numel() ~= s[2] then
      p:close()
      error(("%s: tensor '%s' is missing or has the wrong size"):format(path, s[1]), 0)
    end
    flat:view(used + 1, s[2]):copy(t:reshape(s[2]))
    used = used + s[2]
  end
  p:set_params(flat)
  return p
end

local function fill_value(value, tensors, meta, path)
  local spec = value:spec()
  local flat = core.zeros(value:nparams())
  join(tensors, "value", flat, layer_dims(spec, "value"), path, (conv_layers(spec)))
  value:set_params(flat)
end

-- rl.load(path) → policy, info {kind, obs_norm, metadata}.  Works on policy
-- files and trainer checkpoints alike.
function M.load_policy(path)
  local tensors, meta = read(path)
  local p = build_policy(tensors, meta, path)
  return p, {kind = meta.kind, obs_norm = decode(meta, "obs_norm", path), metadata = meta}
end

function M.load_value(path)
  local tensors, meta = read(path)
  local spec = decode(meta, "value", path)
  if type(spec) ~= "table" then error(path .. ": no 'value' architecture in the metadata", 0) end
  local v = core.net(spec)
  fill_value(v, tensors, meta, path)
  return v
end

-- ------------------------------------------------------------ trainers

local function numbers_only(hp)
  local out = {}
  for k, v in pairs(hp) do
    if type(v) == "number" or type(v) == "boolean" then out[k] = v end
  end
  return out
end

function M.save_trainer(tr, path)
  local tensors, meta = {}, {format = "moonrl", kind = "trainer"}
  add_policy(tensors, meta, tr.policy)
  add_value(tensors, meta, tr.value)
  local opt = {}
  for _, which in ipairs({"policy", "value"}) do
    local st = core.optim_state(tr[which .. "_optim"])
    tensors["optim." .. which .. ".m"] = st.m
    tensors["optim." .. which .. ".v"] = st.v
    opt[which] = st.steps
  end
  local window = json.array({})
  for i, r in ipairs(tr.window) do window[i] = r end
  local window_len = json.array({})
  for i, l in ipairs(tr.window_len) do window_len[i] = l end
  local state = {
    algo = tr.algo, steps_done = tr.steps_done, updates = tr.updates,
    total_steps = tr.total_steps, segment = tr.segment, env_seed = tr.env_seed,
    num_envs = tr.num_envs, n_steps = tr.n_steps, episodes = tr.episodes,
    window = window, window_len = window_len, elapsed = tr.elapsed,
    optim_steps = opt, seed = tr.seed,
    rng = {policy = tohex(core.rng_state(tr.policy)), trainer = tohex(core.rng_state(tr.rng))},
    extra = tr.extra_state and tr:extra_state() or nil,
    hyperparameters = numbers_only(tr.hp),
  }
  meta.trainer = json.encode(state)
  if tr.env_id then meta.env = tostring(tr.env_id) end
  if tr.obs_rms then
    local st = rms_state(tr.obs_rms)
    -- the parts of a dict observation that are normalised (moonrl play)
    if type(tr.hp.normalize_obs) == "table" then st.parts = json.array(tr.hp.normalize_obs) end
    meta.obs_norm = json.encode(st)
  end
  if tr.rew_norm then
    local st = tr.rew_norm:state()
    st.ret = json.array(st.ret)
    meta.reward_norm = json.encode(st)
  end
  write(path, tensors, meta)
  return path
end

-- Loads a trainer checkpoint into a freshly built trainer (same algorithm,
-- env sizes and architecture).  The envs restart at the next collect.
function M.restore(tr, path)
  local tensors, meta = read(path)
  local state = decode(meta, "trainer", path)
  if type(state) ~= "table" then error(path .. ": not a trainer checkpoint (no 'trainer' metadata)", 0) end
  if state.algo ~= tr.algo then
    error(("%s: a %s checkpoint cannot resume a %s trainer"):format(path, tostring(state.algo), tr.algo), 0)
  end
  if state.num_envs ~= tr.num_envs or state.n_steps ~= tr.n_steps then
    error(("%s: saved with %d envs × %d steps, this trainer has %d × %d")
          :format(path, state.num_envs, state.n_steps, tr.num_envs, tr.n_steps), 0)
  end
  -- parameters: the saved architecture must be this trainer's
  local p = build_policy(tensors, meta, path)
  if p:nparams() ~= tr.policy:nparams() then
    p:close()
    error(path .. ": the saved policy's architecture differs from this trainer's", 0)
  end
  tr.policy:set_params(p:params())
  p:close()
  fill_value(tr.value, tensors, meta, path)
  for _, which in ipairs({"policy", "value"}) do
    local o = tr[which .. "_optim"]
    core.set_optim_state(o, {steps = state.optim_steps[which],
                             m = tensors["optim." .. which .. ".m"],
                             v = tensors["optim." .. which .. ".v"]})
  end
  core.set_rng_state(tr.policy, fromhex(state.rng.policy))
  core.set_rng_state(tr.rng, fromhex(state.rng.trainer))
  tr.steps_done, tr.updates = state.steps_done, state.updates
  if not tr.opts.total_steps then tr.total_steps = state.total_steps end
  -- rank 0 saved its own env seed; each rank of a distributed run derives
  -- its own from it (moonrl.world)
  tr.segment, tr.env_seed = state.segment, require("moonrl.world").rank_seed(state.env_seed)
  tr.episodes, tr.elapsed = state.episodes, state.elapsed or 0
  tr.window, tr.window_len = {}, {}
  for i, r in ipairs(state.window) do tr.window[i] = r end
  for i, l in ipairs(state.window_len) do tr.window_len[i] = l end
  if state.extra and tr.set_extra_state then tr:set_extra_state(state.extra) end
  -- the normalisers' statistics (a file saved without one leaves the
  -- trainer's fresh; one saved with one turns it on)
  local norm = decode(meta, "obs_norm", path)
  if norm then
    tr.obs_rms = tr.obs_rms or core.rms(tr.obs_dim)
    local ok, err = pcall(tr.obs_rms.set_state, tr.obs_rms, norm)
    if not ok then error(path .. ": obs_norm: " .. tostring(err), 0) end
  end
  local rnorm = decode(meta, "reward_norm", path)
  if rnorm then
    tr.rew_norm = tr.rew_norm or core.reward_norm(tr.num_envs)
    local ok, err = pcall(tr.rew_norm.set_state, tr.rew_norm, rnorm)
    if not ok then error(path .. ": reward_norm: " .. tostring(err), 0) end
  end
  tr.need_reset = true
  return tr
end

-- ------------------------------------------------------------ methods

-- policy:save(path) and net:save(path) on the core objects: their method
-- tables are shared by every instance, so one small instance reaches them.
function M.install(c)
  c = c or core
  local ok = pcall(function()
    local p = c.policy{obs_dim = 1, hidden = {}, action = {type = "discrete", n = 2}}
    local pm = getmetatable(p).__index
    if type(pm) == "table" and pm.save == nil then
      pm.save = function(self, path, extra) return M.save_policy(self, path, extra) end
    end
    p:close()
    local n = c.net{in_dim = 1, hidden = {}, out_dim = 1}
    local nm = getmetatable(n).__index
    if type(nm) == "table" and nm.save == nil then
      nm.save = function(self, path) return M.save_value(self, path) end
    end
    n:close()
  end)
  return ok
end

return M
