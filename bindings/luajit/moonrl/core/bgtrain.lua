-- moonrl.core.bgtrain (LuaJIT), the counterpart of bindings/lua54/l_bgtrain.c:
-- moonrl.BgTrain, PPO updates on a background thread (mrl_bgtrain_*).
-- Conversion only: the batch's arrays become float buffers that
-- mrl_bgtrain_submit copies; every state lives in C.
-- A part of moonrl/core.lua (see PARTS there).

return function(core, I)
  local type, tonumber, getmetatable, setmetatable = type, tonumber, getmetatable, setmetatable
  local format = string.format
  local C, ffi, raise, typeerror = I.C, I.ffi, I.raise, I.typeerror
  local optintfield, optnumfield = I.optintfield, I.optnumfield
  local checkmat, checkvec, checkactions = I.checkmat, I.checkvec, I.checkactions
  local status_string, isobj, MAX_BATCH = I.status_string, I.isobj, I.MAX_BATCH

  local B = {}
  local bg_mt = I.newclass("moonrl.BgTrain", B)
  local states = {[0] = "idle", "running", "done", "failed"}
  local u8_t = ffi.typeof("uint8_t[?]")

  local checkbg = I.selfchecker(bg_mt, "moonrl.BgTrain")

  local function fail(h)
    raise(ffi.string(C.mrl_bgtrain_error(h)))
  end

  bg_mt.__tostring = function(self)
    if self.h == nil then return "moonrl.BgTrain (closed)" end
    return format("moonrl.BgTrain (%s, %d updates)", states[tonumber(C.mrl_bgtrain_poll(self.h))],
                  tonumber(C.mrl_bgtrain_updates(self.h)))
  end

  function core.bgtrain(policy, value, popt, vopt)
    local fname = "bgtrain"
    local p = I.checkpolicy_arg(policy, fname, 1)
    local v = I.checknet_arg(value, fname, 2)
    local po = I.checkoptim_arg(popt, fname, 3)
    local vo = I.checkoptim_arg(vopt, fname, 4)
    local out = ffi.new("mrl_bgtrain *[1]")
    local st = C.mrl_bgtrain_new(out, p, v, po, vo)
    if st == 1 then
      raise(format("bgtrain: the value net (%d -> %d) or an optimiser (%d, %d parameters) " ..
                   "does not fit the policy (obs_dim %d, %d parameters) or its net (%d)",
                   C.mrl_net_in_dim(v), C.mrl_net_out_dim(v), tonumber(C.mrl_optim_nparams(po)),
                   tonumber(C.mrl_optim_nparams(vo)), policy._obs_dim,
                   tonumber(C.mrl_policy_nparams(p)), tonumber(C.mrl_net_nparams(v))))
    end
    if st ~= 0 then raise("bgtrain: " .. status_string(st)) end
    return setmetatable({h = ffi.gc(out[0], C.mrl_bgtrain_free), _obs_dim = policy._obs_dim,
                         _kind = policy._kind, _n = policy._n}, bg_mt)
  end

  B.close = I.closer(bg_mt, "moonrl.BgTrain", C.mrl_bgtrain_free) -- cancels a running update

  local function field(b, k, required)
    local v = b[k]
    if v == nil and required then raise(format("bad field '%s' (array expected, got nil)", k)) end
    return v
  end

  local function flags(v, fname, n)
    local f = checkvec(v, fname, 1, n, true)
    local u = u8_t(n)
    C.mrl_flags_from_floats(f, n, u)
    return u
  end

  -- bg:submit(batch, [config]): a moonrl.Rollout after gae(), or a table
  -- (see docs/CORE_API.md).  The arrays are copied before it returns.
  function B.submit(self, batch, config)
    local fname = "submit"
    local h = checkbg(self, fname)
    local c = I.ppo_config(config, fname, 2, true)
    local mt = getmetatable(batch)
    local st
    local ro = type(batch) == "table" and not isobj(batch) and batch.rollout or nil
    if type(mt) == "table" and mt.__name == "moonrl.Rollout" then
      if batch.h == nil then raise("attempt to use a closed moonrl.Rollout") end
      st = C.mrl_bgtrain_submit_rollout(h, batch.h, nil, 0, 0, c)
    elseif ro ~= nil then
      -- {rollout =, boot_obs =, [gamma], [lambda]}: bootstrapped on the thread
      local rmt = getmetatable(ro)
      if type(rmt) ~= "table" or rmt.__name ~= "moonrl.Rollout" then
        raise(format("bad field 'rollout' (moonrl.Rollout expected, got %s)", I.typename(ro)))
      end
      if ro.h == nil then raise("attempt to use a closed moonrl.Rollout") end
      local bo = checkmat(field(batch, "boot_obs", true), fname, 1, self._obs_dim,
                          C.mrl_rollout_num_envs(ro.h))
      st = C.mrl_bgtrain_submit_rollout(h, ro.h, bo, optnumfield(batch, "gamma", 0.99),
                                        optnumfield(batch, "lambda", 0.95), c)
    else
      if type(batch) ~= "table" or isobj(batch) then
        typeerror(fname, 1, "moonrl.Rollout or batch table", batch)
      end
      local x = ffi.new("mrl_bg_batch")
      local keep = {}  -- the buffers live until the C call has copied them
      x.num_envs = optintfield(batch, "num_envs", 1, 1, MAX_BATCH)
      local obs, rows = checkmat(field(batch, "obs", true), fname, 1, self._obs_dim, -1)
      if rows % x.num_envs ~= 0 then
        raise(format("bad field 'obs' (%d rows is not a multiple of num_envs %d)", rows,
                     tonumber(x.num_envs)))
      end
      x.steps = rows / x.num_envs
      keep[1], x.obs = obs, obs
      local a = checkactions(field(batch, "actions", true), fname, 1, self._kind, self._n, rows)
      keep[2], x.actions = a, a
      local lp = checkvec(field(batch, "logp", true), fname, 1, rows, false)
      keep[3], x.logp = lp, lp
      local boot = field(batch, "boot_obs", false)
      if boot ~= nil then
        local bo = checkmat(boot, fname, 1, self._obs_dim, tonumber(x.num_envs))
        keep[4], x.boot_obs = bo, bo
        local r = checkvec(field(batch, "rewards", true), fname, 1, rows, false)
        keep[5], x.rewards = r, r
        local te = flags(field(batch, "terminated", true), fname, rows)
        local tr = flags(field(batch, "truncated", true), fname, rows)
        keep[6], keep[7], x.terminated, x.truncated = te, tr, te, tr
        local fin = field(batch, "final_obs", false)
        if fin ~= nil then
          local fo = checkmat(fin, fname, 1, self._obs_dim, rows)
          keep[8], x.final_obs = fo, fo
        end
        x.gamma = optnumfield(batch, "gamma", 0.99)
        x.lambda = optnumfield(batch, "lambda", 0.95)
      else
        local v = checkvec(field(batch, "values", true), fname, 1, rows, false)
        local ad = checkvec(field(batch, "advantages", true), fname, 1, rows, false)
        local re = checkvec(field(batch, "returns", true), fname, 1, rows, false)
        keep[4], keep[5], keep[6] = v, ad, re
        x.values, x.advantages, x.returns = v, ad, re
      end
      st = C.mrl_bgtrain_submit(h, x, c)
      keep = nil
    end
    if st ~= 0 then fail(h) end
  end

  function B.poll(self)
    return states[tonumber(C.mrl_bgtrain_poll(checkbg(self, "poll")))]
  end

  function B.wait(self)
    return states[tonumber(C.mrl_bgtrain_wait(checkbg(self, "wait")))]
  end

  function B.cancel(self)
    return states[tonumber(C.mrl_bgtrain_cancel(checkbg(self, "cancel")))]
  end

  function B.publish(self, policy, value)
    local h = checkbg(self, "publish")
    local p = policy ~= nil and I.checkpolicy_arg(policy, "publish", 1) or nil
    local v = value ~= nil and I.checknet_arg(value, "publish", 2) or nil
    if C.mrl_bgtrain_publish(h, p, v) ~= 0 then fail(h) end
  end

  local function sync(self, fname, policy, value, popt, vopt, out)
    local h = checkbg(self, fname)
    local p = policy ~= nil and I.checkpolicy_arg(policy, fname, 1) or nil
    local v = value ~= nil and I.checknet_arg(value, fname, 2) or nil
    local po = popt ~= nil and I.checkoptim_arg(popt, fname, 3) or nil
    local vo = vopt ~= nil and I.checkoptim_arg(vopt, fname, 4) or nil
    local st
    if out then
      st = C.mrl_bgtrain_sync_out(h, p, v, po, vo)
    else
      st = C.mrl_bgtrain_sync_in(h, p, v, po, vo)
    end
    if st ~= 0 then fail(h) end
  end

  function B.sync_in(self, policy, value, popt, vopt)
    sync(self, "sync_in", policy, value, popt, vopt, false)
  end

  function B.sync_out(self, policy, value, popt, vopt)
    sync(self, "sync_out", policy, value, popt, vopt, true)
  end

  function B.report(self)
    local h = checkbg(self, "report")
    local r = ffi.new("mrl_ppo_report")
    if C.mrl_bgtrain_report(h, r) ~= 0 then return nil end
    return I.ppo_report(r)
  end

  function B.updates(self)
    return tonumber(C.mrl_bgtrain_updates(checkbg(self, "updates")))
  end

  function B.error(self)
    return ffi.string(C.mrl_bgtrain_error(checkbg(self, "error")))
  end
end
