-- InvalidAction-v0 (50 actions, 5 valid per step), PPO with the env's
-- action masks: mean return >= 19.5 of the maximum 20 (last 20 episodes)
-- (gamma 0: every round is a new draw, its reward its own)
-- within 100k steps on at least 4 of seeds 1–5.  Its twin
-- invalid_action_nomask_ppo (bench only) learns the same env without the
-- masks; make bench-learn prints the ratio of their median steps (issue 15:
-- <= 1/3).
return {
  name = "InvalidAction-v0 masked", algo = "ppo", env = "InvalidAction-v0",
  env_opts = {num_envs = 8, threads = 0},
  budget = 100000, target = 19.5, need = 4, seeds = {1, 2, 3, 4, 5},
  hp = {n_steps = 64, batch_size = 128, epochs = 4, lr = 2e-3, gamma = 0},
}
