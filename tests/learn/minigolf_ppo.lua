-- MiniGolf-v0 (hybrid: a club, discrete 4, and a power in [-1, 1]), PPO:
-- mean return >= -1.4 (the env's stated target; -1 is a hole in one every
-- time) within 200k steps on all of seeds 1–5.
return {
  name = "MiniGolf-v0", algo = "ppo", env = "MiniGolf-v0",
  env_opts = {num_envs = 8, threads = 0},
  budget = 200000, target = -1.4, need = 5, seeds = {1, 2, 3, 4, 5},
  hp = {n_steps = 64, batch_size = 128, epochs = 4, lr = 2e-3},
}
