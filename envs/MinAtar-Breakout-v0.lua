-- MinAtar-Breakout-v0: Breakout on a 10x10 grid, written from the rules
-- published with MinAtar (Young & Tian 2019, "MinAtar: An Atari-Inspired
-- Testbed for Thorough and Reproducible Reinforcement Learning
-- Experiments"): a paddle at the bottom bounces a ball that breaks three rows
-- of bricks at the top; +1 per brick; three new rows when all are cleared;
-- the ball moves only along diagonals, bounces off walls and bricks, leaves
-- the paddle to the left or right by the side it strikes; the episode ends
-- when the ball reaches the bottom; a trail channel shows the ball's
-- direction; sticky actions with probability 0.1.  Where the paper's text is
-- silent, the choices below are ours.  Runs in moonrl's env sandbox (`rng`).
--
-- Grid: rows y = 0 (top) .. 9 (bottom), columns x = 0 .. 9.
--
-- Observation: box of shape {4, 10, 10}, values 0 or 1, flattened in C
-- (row-major) order: obs[c*100 + y*10 + x + 1] for channel c, row y, column x.
--   channel 0  paddle  (one cell of row 9)
--   channel 1  ball
--   channel 2  trail   (the cell the ball was in one step before; at reset,
--                       the ball's own cell)
--   channel 3  brick
--
-- Actions: {type = "discrete", n = 3}: 0 no-op, 1 left, 2 right -- the
-- actions that act in Breakout.  config.full_action_set = true gives
-- MinAtar's full set of 6 instead (0 no-op, 1 left, 2 up, 3 right, 4 down,
-- 5 fire), where up, down and fire do nothing in this game.
--
-- Reset: bricks fill rows 1, 2 and 3 (30 bricks); the paddle is at x = 4;
-- the ball is at row 4 in column 0 or 9 (even odds), moving diagonally down
-- towards the middle.
--
-- One step:
--   1. Sticky actions: with probability sticky_p (0.1) the action is
--      replaced by the action executed on the previous step (no-op at reset).
--   2. The paddle moves one cell left or right (it stays at the edge).
--   3. The ball (position x, y, direction dx, dy in {-1, +1}) aims at
--      (x + dx, y + dy):
--      - past a side wall: dx is reversed (aim x + dx again);
--      - above the top row: dy becomes +1 (aim y + 1);
--      - at a brick: the brick breaks (+1), dy is reversed and the ball
--        moves sideways to (x + dx, y) this step, sliding along the brick's
--        face; should (x + dx, y) hold a brick too, that one breaks as well
--        (+1), dx is reversed too and the ball stays where it is;
--      - at the bottom row: if the paddle is in the aimed column, the ball
--        strikes its near side and goes back the way it came horizontally
--        (dx reversed); if the paddle is right below the ball, the ball
--        strikes its far side and keeps its horizontal direction; either way
--        dy becomes -1 and, as off a brick, the ball moves sideways to
--        (x + dx, y) this step (dx reversed once more at a wall).  Otherwise
--        the ball enters the bottom row and the episode terminates (reward 0
--        on that step).
--      Else the ball moves to the aimed cell.  The trail marks where it was.
--      (The sideways moves let the ball reach every brick: moving only
--      diagonally, x + y would stay even or odd for ever and half of the
--      bricks would be out of reach.)
--   4. When no brick is left, rows 1-3 fill again (all but the ball's cell).
--
-- Rewards: +1 per brick broken.  There is no maximum return: with new rows
-- the game goes on while the paddle keeps the ball; the registered time
-- limit is 10000 steps (truncated; config.max_episode_steps changes it, false
-- removes it).  RETURN TARGET (issue 15): mean return of the last 100
-- episodes >= 10.  For scale (200 episodes, sticky 0.1): a random policy
-- averages about 0.6 and always no-op 1.5; a scripted player that walks to
-- where the ball will next come down (walls only, bricks ignored) about 28.
-- PPO with a 64x64 MLP on the flattened grid (moonrl train, 8 envs x 64
-- steps, lr 5e-4, entropy 0.01) averaged about 7 after 1M steps.
-- A ball can settle into a loop that meets no brick until the player
-- changes where it strikes the paddle.
--
-- config (all optional):
--   sticky_p           probability of repeating the previous action (0.1)
--   full_action_set    6 actions instead of 3 (false)
--   max_episode_steps  time limit for envs.make (10000; false: none)
--   seed               generator seed used when reset() is first given none

local Env = {}
Env.__index = Env

Env.id = "MinAtar-Breakout-v0"
Env.max_episode_steps = 10000

local N = 10
local CH_PADDLE, CH_BALL, CH_TRAIL, CH_BRICK = 0, 100, 200, 300   -- channel offsets
local BRICK_ROWS = {1, 2, 3}
local NOBS = 4 * N * N

local function unit_box()
  local low, high = {}, {}
  for i = 1, NOBS do low[i], high[i] = 0, 1 end
  return {type = "box", shape = {4, N, N}, low = low, high = high}
end

Env.observation_space = unit_box()
Env.action_space = {type = "discrete", n = 3}

-- paddle move of each action: 3-action set and MinAtar's 6-action set
local MOVE3 = {[0] = 0, [1] = -1, [2] = 1}
local MOVE6 = {[0] = 0, [1] = -1, [2] = 0, [3] = 1, [4] = 0, [5] = 0}

function Env.new(config)
  config = config or {}
  local self = setmetatable({config = config}, Env)
  local p = config.sticky_p or 0.1
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    error("MinAtar-Breakout-v0: config.sticky_p must be a probability in [0, 1]", 2)
  end
  self.sticky_p = p
  self.moves = config.full_action_set and MOVE6 or MOVE3
  self.n_actions = config.full_action_set and 6 or 3
  self.action_space = {type = "discrete", n = self.n_actions}
  self.observation_space = unit_box()
  local m = config.max_episode_steps
  if m ~= nil then
    if m ~= false and (type(m) ~= "number" or m < 1 or m ~= math.floor(m)) then
      error("MinAtar-Breakout-v0: config.max_episode_steps must be a positive integer or false", 2)
    end
    self.max_episode_steps = m
  end
  self.brick = {}       -- brick[y * N + x] = true
  return self
end

function Env:_fill_bricks()
  local b, n = self.brick, 0
  for _, y in ipairs(BRICK_ROWS) do
    for x = 0, N - 1 do
      if not (x == self.bx and y == self.by) then
        b[y * N + x] = true
        n = n + 1
      end
    end
  end
  self.nbricks = n
end

function Env:_write_obs(obs)
  for i = 1, NOBS do obs[i] = 0 end
  obs[CH_PADDLE + (N - 1) * N + self.px + 1] = 1
  obs[CH_BALL + self.by * N + self.bx + 1] = 1
  obs[CH_TRAIL + self.ty * N + self.tx + 1] = 1
  local b = self.brick
  for cell = 0, N * N - 1 do
    if b[cell] then obs[CH_BRICK + cell + 1] = 1 end
  end
  return obs
end

function Env:reset_into(seed, obs)
  if seed ~= nil or not self.rng then self.rng = rng.new(seed or self.config.seed or 0) end
  for cell = 0, N * N - 1 do self.brick[cell] = nil end
  self.px = 4
  if self.rng:random() < 0.5 then
    self.bx, self.dx = 0, 1
  else
    self.bx, self.dx = N - 1, -1
  end
  self.by, self.dy = 4, 1
  self.tx, self.ty = self.bx, self.by
  self:_fill_bricks()
  self.last_action = 0
  self.terminated = false
  self:_write_obs(obs)
end

function Env:reset(seed)
  local obs = {}
  self:reset_into(seed, obs)
  return obs, {}
end

-- Breaks the brick at (x, y) if there is one; true when it did.
function Env:_hit(x, y)
  local cell = y * N + x
  if y < 0 or not self.brick[cell] then return false end
  self.brick[cell] = nil
  self.nbricks = self.nbricks - 1
  return true
end

-- The rules of one step (see the header); returns reward, terminated, the
-- executed action.
local function advance(self, action)
  if type(action) ~= "number" or self.moves[action] == nil then
    error("MinAtar-Breakout-v0: invalid action " .. tostring(action) .. " (expected an integer in 0.."
      .. self.n_actions - 1 .. ")", 3)
  end
  if self.px == nil then error("MinAtar-Breakout-v0: call reset() before step()", 3) end
  if self.terminated then return 0.0, true, action end
  local r = self.rng
  -- 1. sticky actions: one draw per step, whatever its outcome
  if r:random() < self.sticky_p then action = self.last_action end
  self.last_action = action
  -- 2. paddle
  local px = self.px + self.moves[action]
  if px < 0 then px = 0 elseif px > N - 1 then px = N - 1 end
  self.px = px
  -- 3. ball
  local x, y, dx, dy = self.bx, self.by, self.dx, self.dy
  local reward, terminated = 0.0, false
  local nx = x + dx
  if nx < 0 or nx > N - 1 then dx = -dx; nx = x + dx end
  local ny = y + dy
  if ny < 0 then dy = 1; ny = y + 1 end
  if self:_hit(nx, ny) then
    reward = reward + 1
    dy = -dy; ny = y             -- reflected: slides along the brick's face
    if self:_hit(nx, ny) then    -- a brick there too: a corner, reflected both ways
      reward = reward + 1
      dx = -dx; nx = x
    end
  elseif ny == N - 1 then
    if px == nx then
      dx, dy = -dx, -1           -- struck the paddle's near side
    elseif px == x then
      dy = -1                    -- struck the paddle's far side
    else
      terminated = true
    end
    if not terminated then       -- slides along the paddle, as off a brick
      nx = x + dx
      if nx < 0 or nx > N - 1 then dx = -dx; nx = x + dx end
      ny = y
    end
  end
  self.tx, self.ty = x, y
  self.bx, self.by, self.dx, self.dy = nx, ny, dx, dy
  -- 4. new rows
  if self.nbricks == 0 then self:_fill_bricks() end
  self.terminated = terminated
  return reward, terminated, action
end

function Env:step(action)
  local reward, terminated, executed = advance(self, action)
  return self:_write_obs({}), reward, terminated, false, {executed_action = executed}
end

function Env:step_into(action, obs)
  local reward, terminated = advance(self, action)
  self:_write_obs(obs)
  return reward, terminated, false
end

-- state: {paddle_x, ball_x, ball_y, dx, dy, bricks} with bricks a list of
-- {x, y} cells (nil: the three full rows); the trail is put one step behind
-- the ball.  Returns the observation.
function Env:set_state(s)
  local function int(v, lo, hi, what)
    if type(v) ~= "number" or v ~= math.floor(v) or v < lo or v > hi then
      error("MinAtar-Breakout-v0: set_state: " .. what .. " must be an integer in " .. lo .. ".." .. hi
        .. ", got " .. tostring(v), 3)
    end
    return v
  end
  if type(s) ~= "table" then
    error("MinAtar-Breakout-v0: set_state expects {paddle_x, ball_x, ball_y, dx, dy, bricks}", 2)
  end
  if not self.rng then self.rng = rng.new(self.config.seed or 0) end
  self.px = int(s[1], 0, N - 1, "paddle_x")
  self.bx, self.by = int(s[2], 0, N - 1, "ball_x"), int(s[3], 0, N - 1, "ball_y")
  self.dx, self.dy = s[4], s[5]
  if (self.dx ~= 1 and self.dx ~= -1) or (self.dy ~= 1 and self.dy ~= -1) then
    error("MinAtar-Breakout-v0: set_state: dx and dy must be -1 or 1", 2)
  end
  self.tx, self.ty = self.bx - self.dx, self.by - self.dy
  if self.tx < 0 or self.tx > N - 1 or self.ty < 0 or self.ty > N - 1 then
    self.tx, self.ty = self.bx, self.by
  end
  for cell = 0, N * N - 1 do self.brick[cell] = nil end
  if s[6] == nil then
    self:_fill_bricks()
  else
    self.nbricks = 0
    for i, c in ipairs(s[6]) do
      local bx = int(c[1], 0, N - 1, "bricks[" .. i .. "] x")
      local by = int(c[2], 0, N - 1, "bricks[" .. i .. "] y")
      if not self.brick[by * N + bx] then
        self.brick[by * N + bx] = true
        self.nbricks = self.nbricks + 1
      end
    end
  end
  self.last_action = self.last_action or 0
  self.terminated = false
  return self:_write_obs({})
end

-- The grid as text: # brick, O ball, . trail, = paddle.
function Env:render()
  if self.px == nil then return nil end
  local lines = {"+" .. string.rep("-", N) .. "+"}
  for y = 0, N - 1 do
    local row = {}
    for x = 0, N - 1 do
      local ch = " "
      if self.brick[y * N + x] then ch = "#" end
      if x == self.tx and y == self.ty then ch = "." end
      if y == N - 1 and x == self.px then ch = "=" end
      if x == self.bx and y == self.by then ch = "O" end
      row[x + 1] = ch
    end
    lines[#lines + 1] = "|" .. table.concat(row) .. "|"
  end
  lines[#lines + 1] = "+" .. string.rep("-", N) .. "+"
  return table.concat(lines, "\n")
end

return Env
