-- tests/mpi.t, test a (run under mpirun -np 2): after N updates every rank
-- holds bit-identical parameters (policy, value, both optimisers' moments)
-- for PPO, PPO with observation and reward normalisation, TRPO and NPG — while the
-- ranks' rollouts differed.  Rank 0 prints TAP lines.
local rl = require "moonrl"
local core = rl.core
local W = require "moonrl.world"
local mpi = require "moonrl.mpi"
local w = rl.world()
assert(w.size == 2 and W.distributed, "run me with mpirun -np 2 (size " .. w.size .. ")")

local n = 0
local function check(cond, name)
  n = n + 1
  if w.rank == 0 then print((cond and "ok " or "not ok ") .. n .. " - " .. name) end
end

-- how many of t's elements differ from rank 0's, summed over the ranks
local function mismatches(t)
  local mine = core.tensor(t)
  local root = mpi.bcast(core.tensor(t), 0)
  local bad = 0
  for i = 1, mine:numel() do if mine[i] ~= root[i] then bad = bad + 1 end end
  return W.sum({bad})[1]
end

local function state_mismatches(agent)
  local bad = mismatches(agent.policy:params()) + mismatches(agent.value:params())
  for _, o in ipairs({agent.policy_optim, agent.value_optim}) do
    local st = core.optim_state(o)
    bad = bad + mismatches(st.m) + mismatches(st.v)
    bad = bad + W.sum({st.steps == mpi.bcast({st.steps}, 0)[1] and 0 or 1})[1]
  end
  return bad
end

local cases = {
  {"ppo", "CartPole-v1", {n_steps = 64, batch_size = 32, epochs = 3}},
  {"ppo", "Pendulum-v1", {n_steps = 64, batch_size = 64, epochs = 2, normalize_obs = true,
                           normalize_reward = true}},
  {"trpo", "CartPole-v1", {n_steps = 64, batch_size = 64, n_critic_updates = 2}},
  {"npg", "Acrobot-v1", {n_steps = 64, batch_size = 64, n_critic_updates = 2}},
  {"ppo", "CartPole-v1", {n_steps = 64, batch_size = 32, epochs = 2},
   {kl_penalty = {beta = 1, target_kl = 0.01}}, "kl-penalty"},
  {"trpo", "CartPole-v1", {n_steps = 64, batch_size = 64, n_critic_updates = 2},
   {lagrangian = {steps = 3}}, "lagrangian"},
}
for _, c in ipairs(cases) do
  local algo, id, hp = c[1], c[2], c[3]
  local o = {env = rl.make(id, {num_envs = 2, seed = 5}), seed = 9, progress = false}
  for k, v in pairs(hp) do o[k] = v end
  for k, v in pairs(c[4] or {}) do o[k] = v end
  local agent = rl[algo](o)
  if c[5] then algo = algo .. " (" .. c[5] .. ")" end
  local p0 = agent.policy:params()
  agent:collect()
  -- the ranks saw different episodes (else the test proves nothing)
  local obs = agent.rollout:field("obs")
  local s = obs:sum()
  local sums = W.sum({w.rank == 0 and s or 0, w.rank == 1 and s or 0})
  check(sums[1] ~= sums[2], algo .. " " .. id .. ": the two ranks collected different rollouts")
  agent:update()
  for _ = 1, 4 do agent:collect(); agent:update() end
  local moved = 0
  local p1 = agent.policy:params()
  for i = 1, p1:numel() do if p1[i] ~= p0[i] then moved = moved + 1 end end
  check(moved > 0, algo .. " " .. id .. ": the policy moved in 5 updates")
  check(state_mismatches(agent) == 0,
        algo .. " " .. id .. ": after 5 updates every rank holds bit-identical parameters and optimiser state")
  if agent.obs_rms then
    local st = agent.obs_rms:state()
    local flat = {st.count}
    for j = 1, #st.mean do flat[#flat + 1] = st.mean[j]; flat[#flat + 1] = st.var[j] end
    local root = mpi.bcast(flat, 0)
    local bad = 0
    for i = 1, #flat do if flat[i] ~= root[i] then bad = bad + 1 end end
    check(W.sum({bad})[1] == 0 and st.count > 2 * 64 * 2 * 5 - 1,
          algo .. " " .. id .. ": the observation normaliser is merged over both ranks (count " .. st.count .. ")")
  end
  if agent.rew_norm then
    local st = agent.rew_norm:state()
    local flat = {st.mean, st.var, st.count}
    local root = mpi.bcast(flat, 0)
    local bad = 0
    for i = 1, 3 do if flat[i] ~= root[i] then bad = bad + 1 end end
    check(W.sum({bad})[1] == 0 and st.count > 2 * 2 * 64 * 5 - 1,
          algo .. " " .. id .. ": the reward normaliser is merged over both ranks (count " .. st.count .. ")")
  end
  agent:close()
end
-- parameters are broadcast from rank 0 at the start: a policy given with
-- different weights on each rank is rank 0's once the trainer exists
do
  local env = rl.make("CartPole-v1", {num_envs = 2, seed = 5})
  local pol = core.policy{obs_dim = 4, action = {type = "discrete", n = 2}, hidden = {16}, seed = 100 + w.rank}
  local before = mismatches(pol:params())
  local agent = rl.ppo{env = env, policy = pol, hidden = {16}, seed = 9, progress = false, n_steps = 32}
  check(before > 0 and state_mismatches(agent) == 0,
        "a policy that differs per rank is rank 0's after the trainer starts (broadcast)")
  agent:close()
end

if w.rank == 0 then print("1.." .. n) end
W.finish()
