-- tests/mpi.t, test b (run under mpirun -np 2): a 2-rank update over two
-- half-batches equals a 1-rank update over the whole batch.
--
-- Each rank collects its own rollout (T steps × N envs, its own seeds).
-- Rank 1 sends its rollout to rank 0, which builds the whole batch (rank 0's
-- rows, then rank 1's: a rollout of 2T steps × N envs) and replays it in one
-- process:
--   PPO    core.ppo_update with minibatch 2b and shards = 2 (one permutation
--          of a block's positions, minibatch k = the same positions of both
--          blocks) vs. both ranks with minibatch b and the MPI reducer (each
--          shuffles its own rows with the same generator state);
--   TRPO   policy:trpo_step over the whole batch vs. both ranks with the
--          reducer set on the policy (CG products, gradient, line search);
--   critic core.value_fit over the whole batch (one minibatch) vs. both
--          ranks with the reducer.
-- Equal to float tolerance (sums in a different order), and the same
-- number of minibatches / the same accepted line-search step.
local rl = require "moonrl"
local core = rl.core
local W = require "moonrl.world"
local mpi = require "moonrl.mpi"
local w = rl.world()
assert(w.size == 2 and W.distributed, "run me with mpirun -np 2")

local n = 0
local function check(cond, name)
  n = n + 1
  if w.rank == 0 then print((cond and "ok " or "not ok ") .. n .. " - " .. name) end
end
local function diag(s) if w.rank == 0 then print("# " .. s) end end

local T, N, B = 64, 4, 32    -- per rank: 256 rows, minibatches of 32
local FIELDS = {"obs", "actions", "rewards", "logp", "values", "next_values", "advantages", "returns"}

local function nets(seed)
  local pol = core.policy{obs_dim = 4, action = {type = "discrete", n = 2}, hidden = {32, 32}, seed = seed}
  local val = core.net{in_dim = 4, hidden = {32, 32}, out_dim = 1, out_gain = 1, seed = seed + 1}
  return pol, val, core.optim{kind = "adam", n = pol:nparams()}, core.optim{kind = "adam", n = val:nparams()}
end

-- this rank's rollout, collected by a separate behaviour policy so the
-- learners' generators are untouched (their state is the same everywhere)
local env = rl.make("CartPole-v1", {num_envs = N, seed = 11})
local behave, bval = nets(3)
local ro = env:rollout(T)
env:collect(ro, behave, bval)
ro:gae(0.99, 0.95)

-- the whole batch on rank 0: [2T][N], rank 0's steps then rank 1's
local whole
do  -- a collective: both ranks take part
  whole = core.rollout{steps = 2 * T, num_envs = N, obs_dim = 4, action_width = 1}
  for _, f in ipairs(FIELDS) do
    local mine = ro:field(f)
    local k = mine:numel()
    local dst = whole:field(f):reshape(2 * k)
    local other = mpi.bcast(core.tensor(mine:reshape(k)), 1)   -- rank 1's field
    local src0 = mine:reshape(k)
    for i = 1, k do dst[i] = src0[i]; dst[k + i] = other[i] end
  end
end
local s = ro:field("obs"):sum()
local sums = W.sum({w.rank == 0 and s or 0, w.rank == 1 and s or 0})
check(sums[1] ~= sums[2], "the ranks collected different rollouts")

local function maxdiff(a, b)
  local m, scale = 0, 0
  for i = 1, a:numel() do
    local d = math.abs(a[i] - b[i])
    if d > m then m = d end
    if math.abs(b[i]) > scale then scale = math.abs(b[i]) end
  end
  return m, scale
end

-- ---------------------------------------------------------------- PPO
local cfg = {epochs = 4, lr = 3e-4, clip_eps = 0.2, clip_value = 0.2, ent_coef = 0.01,
             vf_coef = 0.5, max_grad_norm = 0.5, normalize_advantages = true}
local function with(t, extra)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  for k, v in pairs(extra) do c[k] = v end
  return c
end

local pol, val, popt, vopt = nets(1)
local rep = core.ppo_update(pol, val, popt, vopt, ro, with(cfg, {minibatch_size = B, reduce = W.reducer}))
if w.rank == 0 then
  local rpol, rval, rpopt, rvopt = nets(1)
  local rrep = core.ppo_update(rpol, rval, rpopt, rvopt, whole, with(cfg, {minibatch_size = 2 * B, shards = 2}))
  local dp, sp = maxdiff(pol:params(), rpol:params())
  local dv, sv = maxdiff(val:params(), rval:params())
  diag(("ppo: max |Δθ| policy %.3g (scale %.3g), value %.3g (scale %.3g); policy_loss %.9g vs %.9g")
       :format(dp, sp, dv, sv, rep.policy_loss, rrep.policy_loss))
  check(rep.minibatches == rrep.minibatches and rep.minibatches == 4 * (T * N / B),
        ("ppo: the same number of minibatches (%d, %d)"):format(rep.minibatches, rrep.minibatches))
  check(dp < 2e-5 and dv < 2e-5,
        "ppo: the 2-rank update equals the 1-rank update over the whole batch (shards = 2)")
  check(math.abs(rep.policy_loss - rrep.policy_loss) < 1e-5 and
        math.abs(rep.value_loss - rrep.value_loss) < 1e-4 * math.max(1, math.abs(rrep.value_loss)) and
        math.abs(rep.approx_kl - rrep.approx_kl) < 1e-6,
        "ppo: the reported losses and KL are the whole batch's")
  -- the test can tell: a plain shuffle of the whole batch is another update
  local qpol, qval, qpopt, qvopt = nets(1)
  core.ppo_update(qpol, qval, qpopt, qvopt, whole, with(cfg, {minibatch_size = 2 * B}))
  local dq = maxdiff(pol:params(), qpol:params())
  check(dq > 100 * dp and dq > 1e-4,
        ("ppo: control: another minibatch order differs (%.3g)"):format(dq))
  rpol:close(); rval:close(); qpol:close(); qval:close()
end

-- ---------------------------------------------------------------- TRPO
local function flat(r, rows)
  return r:field("obs"):reshape(rows, 4), r:field("actions"):reshape(rows, 1),
         r:field("logp"):reshape(rows), r:field("advantages"):reshape(rows)
end
local tp = nets(21)
core.policy_set_reduce(tp, W.reducer)
local o, a, lp, adv = flat(ro, T * N)
local topts = {max_kl = 0.01, damping = 0.1, cg_iters = 10, backtrack_coef = 0.8, max_backtracks = 10}
local tr = tp:trpo_step(o, a, lp, adv, topts)
if w.rank == 0 then
  local rp = nets(21)
  local ro_, ra, rlp, radv = flat(whole, 2 * T * N)
  local rr = rp:trpo_step(ro_, ra, rlp, radv, topts)
  local d, sc = maxdiff(tp:params(), rp:params())
  diag(("trpo: accepted %s vs %s, kl %.9g vs %.9g, max |Δθ| %.3g (scale %.3g)")
       :format(tostring(tr.accepted_j), tostring(rr.accepted_j), tr.mean_kl, rr.mean_kl, d, sc))
  check(tr.accepted_j == rr.accepted_j and tr.accepted_j ~= nil and tr.accepted_j >= 0,
        "trpo: the same line-search step is accepted")
  check(d < 1e-5 and math.abs(tr.mean_kl - rr.mean_kl) < 1e-7 and
        math.abs(tr.surrogate_before - rr.surrogate_before) < 1e-6,
        "trpo: the 2-rank step equals the 1-rank step over the whole batch")
  rp:close()
end

-- -------------------------------------------------------------- critic
local _, cv, _, cvo = nets(31)
local robs, rret = ro:field("obs"):reshape(T * N, 4), ro:field("returns"):reshape(T * N)
local loss = core.value_fit(cv, cvo, robs, rret, {epochs = 3, minibatch = T * N, lr = 1e-3, seed = 4, reduce = W.reducer})
if w.rank == 0 then
  local _, rv, _, rvo = nets(31)
  local wobs, wret = whole:field("obs"):reshape(2 * T * N, 4), whole:field("returns"):reshape(2 * T * N)
  local rloss = core.value_fit(rv, rvo, wobs, wret, {epochs = 3, minibatch = 2 * T * N, lr = 1e-3, seed = 4})
  local d = maxdiff(cv:params(), rv:params())
  diag(("value_fit: loss %.9g vs %.9g, max |Δθ| %.3g"):format(loss, rloss, d))
  check(d < 1e-5 and math.abs(loss - rloss) < 1e-4 * math.max(1, rloss),
        "value_fit: the 2-rank fit equals the 1-rank fit over the whole batch")
end

-- ------------------------------------------------------- normaliser
-- each rank merges its own rows through the reducer; rank 0 merges both
-- ranks' rows locally in one batch: the same statistics up to rounding
local function rows_of(rank)
  local r, g = {}, core.rng(70 + rank)
  for i = 1, 5 + 4 * rank do r[i] = {g:normal() * 3 + rank, g:uniform() - 2} end
  g:close()
  return r
end
local rms = core.rms(2)
rms:update(rows_of(w.rank), W.reducer)
rms:update(rows_of(1 - w.rank), W.reducer)
if w.rank == 0 then
  local ref = core.rms(2)
  local union = rows_of(0)
  for _, x in ipairs(rows_of(1)) do union[#union + 1] = x end
  ref:update(union)
  ref:update(union)
  local a, b = rms:state(), ref:state()
  local d = math.abs(a.count - b.count)
  for j = 1, 2 do
    d = math.max(d, math.abs(a.mean[j] - b.mean[j]), math.abs(a.var[j] - b.var[j]))
  end
  diag(("rms: max |d| %.3g (count %g)"):format(d, a.count))
  check(d < 1e-12 and a.count == 2 * 14 + 1e-4,
        "rms: a 2-rank update through the reducer equals one update over the union")
  ref:close()
end
rms:close()

if w.rank == 0 then print("1.." .. n) end
W.finish()
