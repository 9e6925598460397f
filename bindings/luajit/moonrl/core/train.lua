-- moonrl.core.train (LuaJIT), the counterpart of bindings/lua54/l_train.c:
-- the update routines over several handles: value_fit, bc_fit (behaviour
-- cloning), pg_ascend (the score-function trainers' step), and the filling of
-- a rollout one transition at a time (rollout_put / rollout_outcome /
-- rollout_bootstrap / rollout_behaviour, the in-game agent's buffer).  PPO
-- is in moonrl/core/ppo.lua.
-- A part of moonrl/core.lua (see PARTS there): it takes helpers from I, adds
-- its functions to core, and puts in I what later parts use.

return function(core, I)
  local getmetatable, format = getmetatable, string.format
  local C, ffi, MAX_BATCH, double1_t, raise = I.C, I.ffi, I.MAX_BATCH, I.double1_t, I.raise
  local argerror, typename, typeerror = I.argerror, I.typename, I.typeerror
  local optintfield, optnumfield, status_string = I.optintfield, I.optnumfield, I.status_string
  local checktable, checkmat, checkvec, net_mt = I.checktable, I.checkmat, I.checkvec, I.net_mt
  local NET_CLOSED, optim_mt, rng_mt, checkrng = I.NET_CLOSED, I.optim_mt, I.rng_mt, I.checkrng
  local newrng = I.newrng

  -- The options value_fit and bc_fit share: {epochs=, minibatch=, lr=,
  -- rng = moonrl.Rng | seed = n}, epochs defaulting to the caller's.
  local function fitopts(opts, fname, epochs)
    local mb, lr, seed, rng = 64, 1e-3, 0, nil
    if opts ~= nil then
      checktable(opts, fname, 5)
      epochs = optintfield(opts, "epochs", epochs, 1, 1000000)
      mb = optintfield(opts, "minibatch", mb, 1, MAX_BATCH)
      lr = optnumfield(opts, "lr", lr)
      seed = optintfield(opts, "seed", 0)
      rng = opts.rng
      if rng ~= nil then
        if getmetatable(rng) ~= rng_mt then
          raise(format("bad field 'rng' (moonrl.Rng expected, got %s)", typename(rng)))
        end
        checkrng(rng, fname)
      end
    end
    return epochs, mb, lr, rng or newrng(seed)
  end

  function core.value_fit(value, optim, obs, targets, opts)
    local fname = "value_fit"
    if getmetatable(value) ~= net_mt then typeerror(fname, 1, "moonrl.Net", value) end
    local v = value.h
    if v == nil then raise(NET_CLOSED) end
    if getmetatable(optim) ~= optim_mt then typeerror(fname, 2, "moonrl.Optim", optim) end
    local o = optim.h
    if o == nil then raise("attempt to use a closed moonrl.Optim") end
    if value._out_dim ~= 1 then argerror(fname, 1, "a net with out_dim = 1 expected") end
    local d, rows = checkmat(obs, fname, 3, value._in_dim, -1)
    local tg = checkvec(targets, fname, 4, rows, false)
    local epochs, mb, lr, rng = fitopts(opts, fname, 5)
    local err = ffi.new("char[256]")
    local loss = double1_t()
    local st = C.mrl_value_fit(v, o, d, tg, rows, epochs, mb, lr, rng.h, loss, err, 256)
    if st ~= 0 then raise("value_fit: " .. I.errmsg(err, st)) end
    return loss[0]
  end

  -- core.bc_fit(policy, optim, obs, actions, [opts]) → {last_epoch_nll, nll, accuracy}
  function core.bc_fit(policy, optim, obs, actions, opts)
    local fname = "bc_fit"
    local p = I.checkpolicy_arg(policy, fname, 1)
    if getmetatable(optim) ~= optim_mt then typeerror(fname, 2, "moonrl.Optim", optim) end
    local o = optim.h
    if o == nil then raise("attempt to use a closed moonrl.Optim") end
    local kind = C.mrl_policy_action_kind(p)
    local d, rows = checkmat(obs, fname, 3, C.mrl_policy_obs_dim(p), -1)
    local a = I.checkactions(actions, fname, 4, kind, C.mrl_policy_action_n(p), rows)
    local epochs, mb, lr, rng = fitopts(opts, fname, 10)
    local err = ffi.new("char[256]")
    local rep = ffi.new("mrl_bc_report")
    local st = C.mrl_policy_bc_fit(p, o, d, a, rows, epochs, mb, lr, rng.h, rep, err, 256)
    if st ~= 0 then raise("bc_fit: " .. I.errmsg(err, st)) end
    return {last_epoch_nll = rep.last_epoch_nll, nll = rep.nll,
            accuracy = kind == 0 and rep.accuracy or nil}
  end

  -- core.pg_ascend(policy, optim, ascent, {lr =, max_grad_norm = 0, scale = 1}) → norm
  function core.pg_ascend(policy, optim, ascent, opts)
    local fname = "pg_ascend"
    local p = I.checkpolicy_arg(policy, fname, 1)
    if getmetatable(optim) ~= optim_mt then typeerror(fname, 2, "moonrl.Optim", optim) end
    local o = optim.h
    if o == nil then raise("attempt to use a closed moonrl.Optim") end
    local g = checkvec(ascent, fname, 3, tonumber(C.mrl_policy_nparams(p)), false)
    checktable(opts, fname, 4)
    local lr = optnumfield(opts, "lr", 0 / 0)
    local max = optnumfield(opts, "max_grad_norm", 0)
    local scale = optnumfield(opts, "scale", 1)
    if not (lr >= 0) or lr == math.huge then raise("bad field 'lr' (finite number >= 0 expected)") end
    local norm = double1_t()
    local st = C.mrl_policy_ascent_step(p, o, g, scale, lr, max, norm)
    if st ~= 0 then
      raise("pg_ascend: " .. (st == 3 and "non-finite gradient; step refused, parameters unchanged"
                              or status_string(st)))
    end
    return norm[0]
  end

  -- ------------------------------------------- a rollout step by step
  -- (the rollout check is ppo.lua's, which loads after this part: looked
  -- up at call time)

  local float1_t = ffi.typeof("float[1]")
  local one = float1_t()

  local function ro_status(h, st, fname)
    if st ~= 0 then raise(fname .. ": " .. I.errmsg(C.mrl_rollout_error(h), st)) end
  end

  local function checkaction(a, fname, argn, width)
    if type(a) == "number" and width == 1 then
      if a ~= a or a == math.huge or a == -math.huge then argerror(fname, argn, "finite number expected") end
      one[0] = a
      return one
    end
    return checkvec(a, fname, argn, width, false)
  end

  local function checkint(x, fname, argn)
    if type(x) ~= "number" or x ~= math.floor(x) then typeerror(fname, argn, "integer", x) end
    return x
  end

  function core.rollout_put(rollout, t, env, obs, action, logp)
    local fname = "rollout_put"
    local h = I.checkrollout_arg(rollout, fname, 1)
    t, env = checkint(t, fname, 2), checkint(env, fname, 3)
    local o = checkvec(obs, fname, 4, C.mrl_rollout_obs_dim(h), false)
    local a = checkaction(action, fname, 5, C.mrl_rollout_action_width(h))
    if type(logp) ~= "number" then typeerror(fname, 6, "number", logp) end
    ro_status(h, C.mrl_rollout_put(h, t, env, o, a, logp), fname)
  end

  function core.rollout_set_mask_width(rollout, k)
    local fname = "rollout_set_mask_width"
    local h = I.checkrollout_arg(rollout, fname, 1)
    ro_status(h, C.mrl_rollout_set_mask_width(h, checkint(k, fname, 2)), fname)
  end

  function core.rollout_put_mask(rollout, t, env, mask)
    local fname = "rollout_put_mask"
    local h = I.checkrollout_arg(rollout, fname, 1)
    t, env = checkint(t, fname, 2), checkint(env, fname, 3)
    local k = C.mrl_rollout_mask_width(h)
    if k == 0 then
      raise(fname .. ": the rollout has no masks (rollout_set_mask_width first)")
    end
    local m = checkvec(mask, fname, 4, k, false)
    ro_status(h, C.mrl_rollout_put_mask(h, t, env, m), fname)
  end

  function core.rollout_outcome(rollout, t, env, reward, terminated, truncated, final_obs)
    local fname = "rollout_outcome"
    local h = I.checkrollout_arg(rollout, fname, 1)
    t, env = checkint(t, fname, 2), checkint(env, fname, 3)
    if type(reward) ~= "number" then typeerror(fname, 4, "number", reward) end
    if reward ~= reward or reward == math.huge or reward == -math.huge then
      argerror(fname, 4, "finite reward expected")
    end
    local fin = nil
    if final_obs ~= nil then fin = checkvec(final_obs, fname, 7, C.mrl_rollout_obs_dim(h), false) end
    ro_status(h, C.mrl_rollout_put_outcome(h, t, env, reward, (terminated and terminated ~= 0) and 1 or 0,
                                           (truncated and truncated ~= 0) and 1 or 0, fin), fname)
  end

  function core.rollout_bootstrap(rollout, value, next_obs)
    local fname = "rollout_bootstrap"
    local h = I.checkrollout_arg(rollout, fname, 1)
    local v = I.checknet_arg(value, fname, 2)
    local d = checkmat(next_obs, fname, 3, C.mrl_rollout_obs_dim(h), C.mrl_rollout_num_envs(h))
    ro_status(h, C.mrl_rollout_bootstrap(h, v, d), fname)
  end

  function core.rollout_behaviour(rollout, policy)
    local fname = "rollout_behaviour"
    local h = I.checkrollout_arg(rollout, fname, 1)
    local p = I.checkpolicy_arg(policy, fname, 2)
    local ratio, kl = double1_t(), double1_t()
    ro_status(h, C.mrl_rollout_behaviour(h, p, ratio, kl), fname)
    return ratio[0], kl[0]
  end
end
