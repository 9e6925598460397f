-- CartPole-v1, off-policy PG (is_first_order with a value baseline, the last
-- 4 batches reused for 4 steps, weights clipped at 2, a batch dropped once
-- its relative ESS < 0.5): mean return ≥ 475 (last 20 episodes) within 200k
-- steps on at least 4 of seeds 1–5, and with fewer env steps (median over
-- the seeds) than on-policy REINFORCE (cartpole_reinforce).
return {
  name = "CartPole-v1", algo = "offpolicy", env = "CartPole-v1",
  env_opts = {num_envs = 8, threads = 0},
  budget = 200000, target = 475, need = 4, seeds = {1, 2, 3, 4, 5},
  hp = {estimator = "is_first_order", baseline = "value", batch_episodes = 8,
        n_steps = 16, lr = 5e-3, keep = 4, reuse = 4, weight_clip = 2, min_ess = 0.5},
  fewer_steps_than = "cartpole_reinforce",
}
