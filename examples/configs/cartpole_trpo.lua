-- CartPole-v1 with TRPO (sb3-contrib defaults but 8 envs × 128 steps per
-- update): the mean of the last 20 returns reaches 475 in 25k–40k steps.
return {
  algo = "trpo",
  env = "CartPole-v1",
  env_opts = {num_envs = 8, threads = 0},
  steps = 200000,
  seed = 1,
  target = 475,
  out = "runs/cartpole_trpo",
  hyperparameters = {n_steps = 128, target_kl = 0.01, batch_size = 128, n_critic_updates = 10},
}
