-- InvalidAction-v0 without its masks (masks = false): the same PPO as
-- invalid_action_ppo must find the target among all 50 actions.  Bench only
-- (long): the steps it needs against the masked run's.
return {
  name = "InvalidAction-v0 unmasked", algo = "ppo", env = "InvalidAction-v0",
  env_opts = {num_envs = 8, threads = 0, masks = false}, long = true,
  budget = 2000000, target = 19.5, need = 4, seeds = {1, 2, 3, 4, 5},
  hp = {n_steps = 64, batch_size = 128, epochs = 4, lr = 2e-3, gamma = 0},
}
