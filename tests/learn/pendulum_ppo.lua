-- Pendulum-v1, PPO: mean return ≥ −250 (last 20 episodes) within 1M steps
-- on at least 4 of seeds 1–5 (γ 0.9 as in the RL zoo).  (make bench-learn)
return {
  name = "Pendulum-v1", algo = "ppo", env = "Pendulum-v1", long = true,
  env_opts = {num_envs = 8, threads = 0},
  budget = 1000000, target = -250, need = 4, seeds = {1, 2, 3, 4, 5},
  hp = {n_steps = 256, batch_size = 256, epochs = 10, lr = 1e-3, gamma = 0.9, gae_lambda = 0.95},
}
