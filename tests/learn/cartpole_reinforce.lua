-- CartPole-v1, REINFORCE (reward-to-go, learned value baseline): mean
-- return ≥ 475 (last 20 episodes) within 200k steps on at least 4 of seeds
-- 1–5 (examples/configs/cartpole_reinforce.lua's settings).
return {
  name = "CartPole-v1", algo = "reinforce", env = "CartPole-v1",
  env_opts = {num_envs = 8, threads = 0},
  budget = 200000, target = 475, need = 4, seeds = {1, 2, 3, 4, 5},
  hp = {estimator = "reward_to_go", baseline = "value", batch_episodes = 4,
        n_steps = 16, lr = 5e-3, value_lr = 3e-3},
}
