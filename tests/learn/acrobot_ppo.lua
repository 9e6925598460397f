-- Acrobot-v1, PPO: mean return ≥ −100 (last 20 episodes) within 200k steps
-- on at least 4 of seeds 1–5.  (make bench-learn)
return {
  name = "Acrobot-v1", algo = "ppo", env = "Acrobot-v1", long = true,
  env_opts = {num_envs = 8, threads = 0},
  budget = 200000, target = -100, need = 4, seeds = {1, 2, 3, 4, 5},
  hp = {n_steps = 64, batch_size = 256, epochs = 4, lr = 2e-3, gae_lambda = 0.94},
}
