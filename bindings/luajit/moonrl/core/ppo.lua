-- moonrl.core.ppo (LuaJIT), the counterpart of bindings/lua54/l_ppo.c:
-- core.ppo_update (one call) and core.ppo_begin → moonrl.PpoJob, stepped a
-- piece at a time (runtime/ppo.c's mrl_ppo_begin / step / end / abort).
-- A job references every object it works on; a failed step has already
-- restored them and returns nil, message; a collected unfinished job is
-- aborted (restored).  Reducers do not exist in this binding.
-- A part of moonrl/core.lua (see PARTS there).

local ffi = require "ffi"

return function(core, I)
  local getmetatable, setmetatable, format, type = getmetatable, setmetatable, string.format, type
  local C, raise, argerror, typeerror = I.C, I.raise, I.argerror, I.typeerror
  local checktable, typename, rng_mt = I.checktable, I.typename, I.rng_mt
  local int1_t = ffi.typeof("int[1]")

  -- The rollout class is made by moonrl/core/vecenv.lua, loaded after the parts.
  local function checkrollout(v, fname, argn)
    local mt = getmetatable(v)
    if type(v) ~= "table" or mt == nil or mt.__name ~= "moonrl.Rollout" then
      typeerror(fname, argn, "moonrl.Rollout", v)
    end
    if v.h == nil then raise("attempt to use a closed moonrl.Rollout") end
    return v.h
  end
  I.checkrollout_arg = checkrollout

  -- The config table (nil: mrl_ppo_config_default) into a new
  -- mrl_ppo_config, and its rng; the runtime checks the values.  bg: for
  -- the background trainer (kl_beta, kl_target and rng not read).
  local function checkconfig(config, fname, argn, bg)
    local c = C.mrl_ppo_config_default()
    if config == nil then return c end
    checktable(config, fname, argn)
    I.readopts(config, C.MRL_OPTS_PPO_CONFIG, c)
    if config.reduce ~= nil then
      raise(bg and "bad field 'reduce' (a reduce hook cannot run on the background thread)"
               or "bad field 'reduce' (reducers are not available in the LuaJIT binding)")
    end
    if bg then return c end
    I.readopts(config, C.MRL_OPTS_PPO_KL, c)
    local rng = config.rng
    if rng ~= nil then
      if getmetatable(rng) ~= rng_mt then
        raise(format("bad field 'rng' (moonrl.Rng expected, got %s)", typename(rng)))
      end
      c.rng = I.checkrng(rng, fname)
    end
    return c, rng
  end
  I.ppo_config = checkconfig

  -- The report table of core.ppo_update ([kl_beta] when kl).
  local function report(rep, kl)
    return {policy_loss = rep.policy_loss, value_loss = rep.value_loss, entropy = rep.entropy,
            approx_kl = rep.approx_kl, clip_fraction = rep.clip_fraction,
            explained_variance = rep.explained_variance, grad_norm = rep.grad_norm,
            epochs_done = rep.epochs_done, minibatches = rep.minibatches,
            stopped_early = rep.stopped_early ~= 0, kl_beta = kl and rep.kl_beta or nil}
  end
  I.ppo_report = report

  local function checkargs(fname, policy, value, popt, vopt, rollout)
    return I.checkpolicy_arg(policy, fname, 1), I.checknet_arg(value, fname, 2),
           I.checkoptim_arg(popt, fname, 3), I.checkoptim_arg(vopt, fname, 4),
           checkrollout(rollout, fname, 5)
  end

  function core.ppo_update(policy, value, popt, vopt, rollout, config)
    local fname = "ppo_update"
    local p, v, po, vo, ro = checkargs(fname, policy, value, popt, vopt, rollout)
    local c = checkconfig(config, fname, 6)
    local rep = ffi.new("mrl_ppo_report")
    local err = ffi.new("char[256]")
    local st = C.mrl_ppo_update(p, v, po, vo, ro, c, rep, err, 256)
    if st ~= 0 then raise("ppo_update: " .. I.errmsg(err, st)) end
    return report(rep, c.kl_beta > 0)
  end

  -- -------------------------------------------------------------- PpoJob

  local JOB = {}
  local job_mt = I.newclass("moonrl.PpoJob", JOB)

  -- The first object the job works on that is closed (a closed one is
  -- freed), nil when all are open; named as in the 5.4 binding's message.
  local names = {"moonrl.Policy", "moonrl.Net", "moonrl.Optim", "moonrl.Optim", "moonrl.Rollout"}
  local function firstclosed(refs)
    for i = 1, 5 do if refs[i].h == nil then return i end end
  end
  local function alive(refs) return firstclosed(refs) == nil end

  local function checkjob(self, fname)
    if getmetatable(self) ~= job_mt then typeerror(fname, 0, "moonrl.PpoJob", self) end
    local h = self.h
    if h == nil then raise("attempt to use a finished moonrl.PpoJob") end
    local i = firstclosed(self.refs)
    if i then raise("ppo job: its " .. names[i] .. " was closed while the update ran") end
    return h
  end

  -- Ends the job's C side without the finaliser.
  local function detach(self)
    local h = self.h
    self.h = nil
    ffi.gc(h, nil)
    return h
  end

  function core.ppo_begin(policy, value, popt, vopt, rollout, config)
    local fname = "ppo_begin"
    local p, v, po, vo, ro = checkargs(fname, policy, value, popt, vopt, rollout)
    local c, rng = checkconfig(config, fname, 6)
    local out = ffi.new("mrl_ppo_job *[1]")
    local err = ffi.new("char[256]")
    local st = C.mrl_ppo_begin(out, p, v, po, vo, ro, c, err, 256)
    if st ~= 0 then raise("ppo_begin: " .. I.errmsg(err, st)) end
    local refs = {policy, value, popt, vopt, rollout, rng}
    local h = ffi.gc(out[0], function(j)
      if alive(refs) then C.mrl_ppo_abort(j) else C.mrl_ppo_discard(j) end
    end)
    return setmetatable({h = h, refs = refs, kl = c.kl_beta > 0}, job_mt)
  end

  -- job:step([max_minibatches], [max_seconds]) → done, or nil, message
  function JOB.step(self, k, secs)
    local h = checkjob(self, "step")
    k = k or 0
    secs = secs or 0
    if type(k) ~= "number" or k < 0 or k > 1e9 or k ~= math.floor(k) then
      argerror("step", 1, "minibatches >= 0 expected")
    end
    if type(secs) ~= "number" or not (secs >= 0) or secs == math.huge then
      argerror("step", 2, "seconds >= 0 expected")
    end
    local done = int1_t()
    local st = C.mrl_ppo_step(h, k, secs, done)
    if st ~= 0 then
      local msg = ffi.string(C.mrl_ppo_job_error(h))
      C.mrl_ppo_abort(detach(self))
      return nil, msg
    end
    return done[0] ~= 0
  end

  -- job:finish() → report, or nil, message
  function JOB.finish(self)
    checkjob(self, "finish")
    local h = detach(self)
    local rep = ffi.new("mrl_ppo_report")
    local err = ffi.new("char[256]")
    local st = C.mrl_ppo_end(h, rep, err, 256)
    if st ~= 0 then return nil, I.errmsg(err, st) end
    return report(rep, self.kl)
  end

  function JOB.abort(self)
    if getmetatable(self) ~= job_mt then typeerror("abort", 0, "moonrl.PpoJob", self) end
    if self.h == nil then return end
    checkjob(self, "abort")
    C.mrl_ppo_abort(detach(self))
  end

  function JOB.progress(self)
    local h = checkjob(self, "progress")
    local e, n, f = int1_t(), int1_t(), int1_t()
    C.mrl_ppo_job_progress(h, e, n, f)
    return e[0], n[0], f[0] ~= 0
  end

  job_mt.__tostring = function(self)
    if self.h == nil then return "moonrl.PpoJob (finished)" end
    local e, n, f = int1_t(), int1_t(), int1_t()
    C.mrl_ppo_job_progress(self.h, e, n, f)
    return format("moonrl.PpoJob (epoch %d, %d minibatches%s)", e[0], n[0], f[0] ~= 0 and ", finished" or "")
  end
end
