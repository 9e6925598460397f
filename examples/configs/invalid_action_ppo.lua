-- InvalidAction-v0 with PPO under the env's invalid-action masks: 50
-- actions, 5 valid each round, one pays.  The engine reads the env's
-- action_mask after every step and the policy never draws a masked action;
-- the mean of the last 20 returns reaches 19.5 of 20 in about 10k steps
-- (without masks, env_opts.masks = false, about 10x more).
--   moonrl train examples/configs/invalid_action_ppo.lua
return {
  algo = "ppo",
  env = "InvalidAction-v0",
  env_opts = {num_envs = 8, threads = 0},
  steps = 100000,
  seed = 1,
  target = 19.5,
  out = "runs/invalid_action_ppo",
  hyperparameters = {
    n_steps = 64, batch_size = 128, epochs = 4, lr = 2e-3,
    gamma = 0,  -- every round is a new draw: its reward is its own
  },
}
