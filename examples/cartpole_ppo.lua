-- examples/cartpole_ppo.lua — PPO on CartPole-v1 written out by hand, the
-- way DESIGN.md sketches it:  build/moonrl examples/cartpole_ppo.lua
-- (or `moonrl train examples/cartpole_ppo.lua`; examples/configs/ holds the
-- declarative configs that `moonrl train` also takes).
local rl = require "moonrl"
local make = require("moonrl.vec").make   -- the vectorised rl.make

-- 8 copies of the Lua env stepped in batches.  threads = 0 steps them in
-- this thread: CartPole's step is a few µs of Lua, cheaper than a hand-off
-- to worker threads; heavier envs gain from threads = 2.
local env = make("CartPole-v1", {num_envs = 8, threads = 0, seed = 1})
local agent = rl.ppo{
  env = env, seed = 1, hidden = {64, 64},
  n_steps = 64, batch_size = 256, epochs = 4, clip = 0.2,
  lr = function(progress) return 2e-3 * (1 - 0.5 * progress) end,  -- a schedule
  log = "runs/cartpole_script/log.csv",
}
agent:learn(100000, {on_update = function(stats)
  if stats.episodes >= 20 and stats.mean_return >= 475 then return false end  -- stop early
end})
local s = agent:episode_stats()
print(("mean return %.1f over the last 20 episodes after %d steps"):format(s.mean_return, agent.steps_done))
agent.policy:save("runs/cartpole_script/policy.safetensors")
agent:save("runs/cartpole_script/checkpoint.safetensors")   -- resume: rl.ppo{resume = path, env = ...}
agent:close()
env:close()
