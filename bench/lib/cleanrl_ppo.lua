-- bench/lib/cleanrl_ppo.lua — PPO with CleanRL's ppo.py defaults on
-- CartPole-v1 (the Lua env), timed over a step budget; shared by make bench
-- (bench/run_all.lua) and make bench-peers (bench/peers/compare.lua).
--
-- CleanRL's settings: 4 envs × 128 steps, 4 minibatches (128), 4 epochs,
-- lr 2.5e-4 annealed to 0, γ 0.99, λ 0.95, clip 0.2, clipped value loss,
-- entropy 0.01, vf 0.5, max grad norm 0.5, separate 64-64 tanh networks.
local rl = require "moonrl"
local vec = require "moonrl.vec"

return function(total)
  local now = rl.core.now
  local env = vec.make("CartPole-v1", {num_envs = 4, threads = 0, seed = 1})
  local agent = rl.ppo{env = env, seed = 1, progress = false,
    n_steps = 128, batch_size = 128, epochs = 4,
    lr = function(p) return 2.5e-4 * (1 - p) end,
    gamma = 0.99, gae_lambda = 0.95, clip = 0.2, clip_vf = 0.2,
    ent_coef = 0.01, vf_coef = 0.5, max_grad_norm = 0.5}
  local first, update_time = nil, 0
  local t0 = now()
  agent:learn(total, {on_update = function(s)
    update_time = update_time + s.update_time
    if not first and s.episodes >= 20 and s.mean_return >= 475 then first = s.steps end
  end})
  local seconds = now() - t0
  local r = {steps = agent.steps_done, seconds = seconds, update_time = update_time,
             sps = agent.steps_done / seconds, first = first,
             final = agent:episode_stats().mean_return}
  agent:close()
  env:close()
  return r
end
