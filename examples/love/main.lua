-- moonrl in LÖVE: an agent learns to balance a pole while you watch.
--
--   love examples/love                        play (from the repository root)
--   love examples/love --frames 1500 --seed 1 --steps-per-frame 10 \
--        --pieces 20 --screenshot /tmp/shot.png     a fixed, headless-able run
--   love examples/love --background ...                the update on a thread (or T)
--   love examples/love --play policy.safetensors      a shipped game: inference only
--
-- Every frame the agent acts (rl.agent:act), is told the reward
-- (agent:observe) and spends a slice of the frame on its PPO update
-- (agent:train_step(budget_ms), or a fixed number of pieces with --pieces,
-- which makes a run the same on every machine).  The screen shows the
-- world, the return of every episode and the agent's action probabilities.
--
-- Background training (T toggles it; start with --background or
-- MOONRL_LOVE_BACKGROUND=1): the update runs on a runtime thread instead of
-- in slices of the frame; the agent keeps acting with the last published
-- parameters and train_step publishes a finished update at the end of the
-- frame (rl.agent's background = true).  The mode is shown on screen.
--
-- Keys: S save the agent, L load it, G greedy/sampling, ←/→ push the pole
-- (a gust), H hand control to you (your moves are recorded), B clone your
-- recorded play into the policy (behaviour cloning), T sliced/background
-- training, +/− speed, Esc quit.
--
-- moonrl.core here is the LuaJIT FFI binding (bindings/luajit) over
-- build/libmoonrl.so; the paths are found from this folder, or from
-- $MOONRL_ROOT (the repository) and $BUILD / $MOONRL_LIB (the library).
-- At the end of a --frames run one line goes to stdout:
--   moonrl-love: frames=… steps=… episodes=… updates=… first_mean=… last_mean=… best=… seed=…

-- ------------------------------------------------------------ paths

local function repo_root()
  local env = os.getenv("MOONRL_ROOT")
  if env and env ~= "" then return env end
  local src = love.filesystem.getSource()
  if src:sub(1, 1) ~= "/" then src = (os.getenv("PWD") or ".") .. "/" .. src end
  return src .. "/../.."
end

local ROOT = repo_root()
package.path = ROOT .. "/bindings/luajit/?.lua;" .. ROOT .. "/bindings/luajit/?/init.lua;" ..
               ROOT .. "/scripts/?.lua;" .. ROOT .. "/scripts/?/init.lua;" .. package.path

local rl = require "moonrl"
local Game = require "game"

-- ------------------------------------------------------------ options

local opts = {frames = nil, seed = 1, steps_per_frame = 2, pieces = nil, budget_ms = 4,
              screenshot = nil, play = nil, n_steps = 512,
              background = os.getenv("MOONRL_LOVE_BACKGROUND") == "1"}

local function parse_args(args)
  local i = 1
  while i <= #args do
    local a, v = args[i], args[i + 1]
    local function num()
      local n = tonumber(v)
      if not n then error("love examples/love: " .. a .. " needs a number, got " .. tostring(v)) end
      i = i + 1
      return n
    end
    if a == "--frames" then opts.frames = num()
    elseif a == "--seed" then opts.seed = num()
    elseif a == "--steps-per-frame" then opts.steps_per_frame = num()
    elseif a == "--pieces" then opts.pieces = num()
    elseif a == "--budget-ms" then opts.budget_ms = num()
    elseif a == "--n-steps" then opts.n_steps = num()
    elseif a == "--background" then opts.background = true
    elseif a == "--sliced" then opts.background = false
    elseif a == "--screenshot" then opts.screenshot = v; i = i + 1
    elseif a == "--play" then opts.play = v; i = i + 1
    end
    i = i + 1
  end
end

-- ------------------------------------------------------------ state

local S = {}   -- everything the frame functions share

local function mean_of(t, first, last)
  local s, n = 0, 0
  for i = math.max(first, 1), math.min(last, #t) do s, n = s + t[i], n + 1 end
  return n > 0 and s / n or 0
end

local function message(text)
  S.msg, S.msg_time = text, 3
  print(text)
end

function love.load(args)
  parse_args(args or arg or {})
  love.graphics.setBackgroundColor(0.08, 0.09, 0.11)
  S.font = love.graphics.newFont(14)
  S.small = love.graphics.newFont(11)
  S.rng = require("moonrl.envs").rng.new(opts.seed)
  S.world = Game.new(S.rng)
  S.obs = S.world:reset()
  S.returns = {}          -- every finished episode's return, in order
  S.frame = 0
  S.greedy = false
  S.human = false
  S.human_action = 1
  S.recorded = 0
  S.save_path = love.filesystem.getSaveDirectory() .. "/agent.safetensors"
  if opts.play then
    -- the shipped game: a trained policy and inference only
    S.policy = rl.load(opts.play)
    S.greedy = true
    message("playing " .. opts.play .. " (inference only)")
  else
    S.agent = rl.agent{obs = Game.OBS, action = rl.discrete(Game.ACTIONS), hidden = {64, 64},
                       algo = "ppo", n_steps = opts.n_steps, batch_size = 64, epochs = 10,
                       lr = 3e-4, seed = opts.seed, background = opts.background}
  end
  S.probs = {0.5, 0.5}
end

-- ------------------------------------------------------------ one step

local function end_episode(ret)
  S.returns[#S.returns + 1] = ret
  S.obs = S.world:reset()
end

local function step_agent()
  local agent, world = S.agent, S.world
  local a
  if S.human then
    -- the player acts; the agent watches and records (behaviour cloning data)
    a = S.human_action
    agent:record(S.obs, a)
    S.recorded = S.recorded + 1
    local _, _, te, tr = world:step(a)
    S.human_return = (S.human_return or 0) + 1
    if te or tr then
      message(("your episode: %d"):format(S.human_return))
      S.human_return = 0
      S.obs = world:reset()
    end
    return
  end
  a = agent:act(S.obs, S.greedy)
  local obs, r, te, tr = world:step(a)
  local ret = agent:observe(r, te, tr, tr and obs or nil)
  if ret then end_episode(ret) else S.obs = obs end
end

local function step_shipped()
  local a = S.policy:act(S.obs, true)
  local obs, _, te, tr = S.world:step(a)
  S.ep_ret = (S.ep_ret or 0) + 1
  if te or tr then end_episode(S.ep_ret); S.ep_ret = 0 else S.obs = obs end
end

local function summary()
  local n = #S.returns
  local k = math.min(10, math.floor(n / 2))
  local agent = S.agent
  return ("moonrl-love: frames=%d steps=%d episodes=%d updates=%d first_mean=%.1f last_mean=%.1f best=%.0f seed=%d binding=%s mode=%s")
    :format(S.frame, agent and agent.steps or 0, n, agent and agent.updates or 0,
            mean_of(S.returns, 1, k), mean_of(S.returns, n - k + 1, n),
            (function() local b = 0; for _, r in ipairs(S.returns) do if r > b then b = r end end; return b end)(),
            opts.seed, rl.core.binding, agent and agent:mode() or "inference")
end

-- ------------------------------------------------------------ LÖVE callbacks

function love.update(dt)
  S.frame = S.frame + 1
  if S.msg_time then
    S.msg_time = S.msg_time - dt
    if S.msg_time <= 0 then S.msg = nil end
  end
  if S.quit_next then
    S.frame = S.frame - 1   -- this frame did no work
    print(summary())
    love.event.quit(0)
    return
  end
  for _ = 1, opts.steps_per_frame do
    if S.policy then step_shipped() else step_agent() end
  end
  if S.agent then
    -- at most budget_ms of update work this frame (or a fixed piece count)
    local stats, err
    if opts.pieces then
      stats, err = S.agent:train_step(nil, opts.pieces)
    else
      stats, err = S.agent:train_step(opts.budget_ms)
    end
    if err then message("update refused: " .. err) end
    if stats then S.last = stats end
    if S.agent.discrete then S.probs = S.agent:probs(S.obs) end
  end
  if opts.frames and S.frame >= opts.frames and not S.shot_requested then
    S.shot_requested = true
    if opts.screenshot then
      local path = opts.screenshot
      if path:sub(1, 1) == "/" then
        love.graphics.captureScreenshot(function(img)
          local f = assert(io.open(path, "wb"))
          f:write(img:encode("png"):getString())
          f:close()
        end)
      else
        -- relative names land in the save directory
        love.graphics.captureScreenshot(path)
      end
    end
    S.quit_next = true   -- the capture happens at the end of this frame's draw
  end
end

local function draw_world(x0, y0, w, h)
  local o = S.obs
  love.graphics.setColor(0.14, 0.16, 0.2)
  love.graphics.rectangle("fill", x0, y0, w, h, 6, 6)
  local scale = w / (2 * Game.X_LIMIT + 1)
  local cx = x0 + w / 2 + o[1] * scale
  local rail = y0 + h * 0.72
  love.graphics.setColor(0.45, 0.47, 0.52)
  love.graphics.setLineWidth(2)
  love.graphics.line(x0 + w / 2 - Game.X_LIMIT * scale, rail, x0 + w / 2 + Game.X_LIMIT * scale, rail)
  -- the pole: 2·half-length long, angle theta from vertical
  local len = 2 * 0.5 * scale * 1.6
  local tx, ty = cx + math.sin(o[3]) * len, rail - 12 - math.cos(o[3]) * len
  love.graphics.setLineWidth(8)
  local danger = math.min(1, math.abs(o[3]) / Game.THETA_LIMIT)
  love.graphics.setColor(0.9, 0.75 - 0.5 * danger, 0.25)
  love.graphics.line(cx, rail - 12, tx, ty)
  love.graphics.setColor(0.3, 0.6, 0.95)
  love.graphics.rectangle("fill", cx - 40, rail - 24, 80, 24, 4, 4)
  love.graphics.setColor(0.9, 0.9, 0.9)
  love.graphics.circle("fill", cx, rail - 12, 5)
  love.graphics.setLineWidth(1)
  -- wind
  if S.world.wind_steps > 0 then
    love.graphics.setColor(0.6, 0.85, 1, 0.8)
    local dir = S.world.wind > 0 and 1 or -1
    for k = 0, 2 do
      local yy = ty + 10 + k * 14
      love.graphics.line(tx - dir * 70, yy, tx - dir * 20, yy)
    end
  end
  love.graphics.setFont(S.font)
  love.graphics.setColor(1, 1, 1)
  local mode = S.policy and "shipped policy (inference)" or S.human and "you are playing (recording)"
               or S.greedy and "agent: greedy" or "agent: learning"
  love.graphics.print(mode, x0 + 12, y0 + 10)
  love.graphics.setFont(S.small)
  love.graphics.setColor(0.75, 0.78, 0.82)
  love.graphics.print(("t = %d   x = %+.2f   theta = %+.1f deg"):format(S.world.t, o[1], math.deg(o[3])),
                      x0 + 12, y0 + 32)
end

local function draw_curve(x0, y0, w, h)
  love.graphics.setColor(0.14, 0.16, 0.2)
  love.graphics.rectangle("fill", x0, y0, w, h, 6, 6)
  love.graphics.setFont(S.small)
  love.graphics.setColor(0.75, 0.78, 0.82)
  love.graphics.print("return per episode (dots) and mean of 10 (line)", x0 + 10, y0 + 6)
  local px, py, pw, ph = x0 + 36, y0 + 26, w - 50, h - 46
  love.graphics.setColor(0.3, 0.32, 0.36)
  love.graphics.rectangle("line", px, py, pw, ph)
  for _, v in ipairs({0, 250, 500}) do
    local yy = py + ph - v / 500 * ph
    love.graphics.print(tostring(v), x0 + 4, yy - 6)
  end
  local r = S.returns
  local n = #r
  if n == 0 then return end
  local function X(i) return px + (n > 1 and (i - 1) / (n - 1) or 0) * pw end
  local function Y(v) return py + ph - math.min(v, 500) / 500 * ph end
  love.graphics.setColor(0.45, 0.6, 0.9, 0.6)
  for i = 1, n do love.graphics.circle("fill", X(i), Y(r[i]), 1.5) end
  local pts = {}
  local step = math.max(1, math.floor(n / 300))
  for i = 1, n, step do
    pts[#pts + 1] = X(i)
    pts[#pts + 1] = Y(mean_of(r, i - 9, i))
  end
  if #pts >= 4 then
    love.graphics.setColor(1, 0.8, 0.3)
    love.graphics.setLineWidth(2)
    love.graphics.line(pts)
    love.graphics.setLineWidth(1)
  end
  love.graphics.setColor(0.75, 0.78, 0.82)
  love.graphics.print(("%d episodes"):format(n), px + pw - 80, py + 4)
end

local function draw_probs(x0, y0, w, h)
  love.graphics.setColor(0.14, 0.16, 0.2)
  love.graphics.rectangle("fill", x0, y0, w, h, 6, 6)
  love.graphics.setFont(S.small)
  love.graphics.setColor(0.75, 0.78, 0.82)
  love.graphics.print("π(action | state)", x0 + 10, y0 + 6)
  local names = {"push left", "push right"}
  local bw = (w - 60) / 2
  for i = 1, 2 do
    local p = S.probs[i] or 0
    local bx = x0 + 20 + (i - 1) * (bw + 20)
    local bh = (h - 60) * p
    love.graphics.setColor(0.25, 0.27, 0.31)
    love.graphics.rectangle("fill", bx, y0 + 26, bw, h - 60)
    love.graphics.setColor(0.3 + 0.5 * p, 0.75, 0.45)
    love.graphics.rectangle("fill", bx, y0 + 26 + (h - 60) - bh, bw, bh)
    love.graphics.setColor(1, 1, 1)
    love.graphics.print(("%s %.2f"):format(names[i], p), bx, y0 + h - 28)
  end
end

local function draw_stats(x0, y0, w, h)
  love.graphics.setColor(0.14, 0.16, 0.2)
  love.graphics.rectangle("fill", x0, y0, w, h, 6, 6)
  love.graphics.setFont(S.small)
  love.graphics.setColor(0.85, 0.87, 0.9)
  local a = S.agent
  local lines = {}
  if a then
    local es = a:episode_stats()
    lines[#lines + 1] = ("steps %d   updates %d   episodes %d"):format(a.steps, a.updates, a.episodes)
    lines[#lines + 1] = ("mean return (last 20): %.1f"):format(es.mean_return or 0)
    if S.last then
      lines[#lines + 1] = ("entropy %.3f  kl %.4f  clip %.3f"):format(S.last.entropy, S.last.approx_kl,
                                                                     S.last.clip_fraction)
      if S.last.background then
        lines[#lines + 1] = ("update: on the trainer thread, behaviour ratio %.4f"):format(
          S.last.behaviour_ratio)
      else
        lines[#lines + 1] = ("update: %d pieces over frames, behaviour ratio %.4f"):format(
          S.last.pieces, S.last.behaviour_ratio)
      end
    end
    local bgm = a:mode() == "background"
    lines[#lines + 1] = (bgm and "training: BACKGROUND thread (T)" or "training: sliced in frames (T)")
    lines[#lines + 1] = a:busy() and (bgm and "updating on a thread, acting on published params"
                                      or "updating (a slice per frame)") or "collecting"
    lines[#lines + 1] = ("recorded moves: %d"):format(a:demos())
  end
  lines[#lines + 1] = ("%d steps/frame   %s"):format(opts.steps_per_frame,
    (a and a:mode() == "background") and "update on a thread"
    or opts.pieces and (opts.pieces .. " pieces/frame") or (opts.budget_ms .. " ms/frame"))
  lines[#lines + 1] = "S save  L load  G greedy  H play  B clone  T bg/sliced"
  lines[#lines + 1] = "arrows: gust   +/-: speed"
  for i, l in ipairs(lines) do love.graphics.print(l, x0 + 10, y0 + 8 + (i - 1) * 16) end
end

function love.draw()
  local W, H = love.graphics.getDimensions()
  draw_world(10, 10, W * 0.58, H * 0.62)
  draw_probs(W * 0.58 + 20, 10, W * 0.42 - 30, H * 0.30)
  draw_stats(W * 0.58 + 20, H * 0.30 + 20, W * 0.42 - 30, H * 0.32 - 10)
  draw_curve(10, H * 0.62 + 20, W - 20, H * 0.38 - 30)
  if S.msg then
    love.graphics.setFont(S.font)
    love.graphics.setColor(1, 0.9, 0.5)
    love.graphics.print(S.msg, 24, H * 0.62 - 24)
  end
end

function love.keypressed(key)
  if key == "escape" then
    if opts.frames then print(summary()) end
    love.event.quit(0)
  elseif key == "left" or key == "right" then
    if S.human then
      S.human_action = key == "left" and 0 or 1
    else
      S.world:gust(key == "left" and -3 or 3)
    end
  elseif key == "=" or key == "+" or key == "kp+" then
    opts.steps_per_frame = math.min(64, opts.steps_per_frame * 2)
  elseif key == "-" or key == "kp-" then
    opts.steps_per_frame = math.max(1, math.floor(opts.steps_per_frame / 2))
  elseif not S.agent then
    return
  elseif key == "s" then
    local ok, err = pcall(S.agent.save, S.agent, S.save_path)
    message(ok and ("saved " .. S.save_path) or ("save failed: " .. tostring(err)))
  elseif key == "l" then
    local ok, err = pcall(S.agent.load, S.agent, S.save_path)
    message(ok and ("loaded " .. S.save_path) or ("load failed: " .. tostring(err)))
    S.obs = S.world:reset()
  elseif key == "g" then
    S.greedy = not S.greedy
  elseif key == "t" then
    -- the update in progress ends first (this frame is longer), then the
    -- other mode continues from the same parameters and optimiser moments
    S.agent:set_background(S.agent:mode() ~= "background")
    message("training: " .. S.agent:mode())
  elseif key == "h" then
    S.human = not S.human
    S.human_return = 0
    S.obs = S.world:reset()
    message(S.human and "your turn: ←/→ move the cart; B clones your play" or "the agent plays again")
  elseif key == "b" then
    if S.agent:demos() == 0 then
      message("nothing recorded yet: press H and play")
    else
      local r = S.agent:pretrain{epochs = 20, batch_size = 64, lr = 1e-3}
      message(("cloned %d moves: accuracy %.2f, nll %.3f"):format(r.samples, r.accuracy, r.nll))
    end
  end
end
