-- The composite spaces of moonrl.spaces (multi_discrete, multi_binary,
-- hybrid, dict) and grids: construction, validation messages, membership,
-- sampling, flattening order and printing, under Lua 5.4 and LuaJIT.
dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local spaces = require "moonrl.spaces"
local envs = require "moonrl.envs"

local function expect_error(f, pattern)
  local ok, err = pcall(f)
  assert.is_false(ok)
  assert.is_truthy(tostring(err):find(pattern, 1, true), tostring(err))
end

describe("multi_discrete", function()
  it("holds one integer per component, each below its n", function()
    local s = spaces.multi_discrete({3, 2, 4})
    assert.same({type = "multi_discrete", nvec = {3, 2, 4}}, s)
    assert.equal(3, spaces.flat_size(s))
    assert.equal(9, spaces.mask_size(s))
    assert.equal("MultiDiscrete([3 2 4])", spaces.describe(s))
    assert.is_true(spaces.contains(s, {2, 1, 0}))
    assert.is_false(spaces.contains(s, {3, 1, 0}))   -- 3 is not below 3
    assert.is_false(spaces.contains(s, {0, 0}))      -- a component missing
    assert.is_false(spaces.contains(s, {0.5, 0, 0}))
    expect_error(function() spaces.multi_discrete({3, 0}) end, "nvec[2] must be a positive integer")
    expect_error(function() spaces.multi_discrete({}) end, "non-empty list")
    expect_error(function() spaces.multi_discrete(3) end, "nvec must be a list")
  end)

  it("samples every value of every component and nothing else", function()
    local s, r = spaces.multi_discrete({3, 2}), envs.rng.new(4)
    local seen = {{}, {}}
    for _ = 1, 300 do
      local a = spaces.sample(s, r)
      assert.is_true(spaces.contains(s, a))
      seen[1][a[1]], seen[2][a[2]] = true, true
    end
    assert.same({[0] = true, true, true}, seen[1])
    assert.same({[0] = true, true}, seen[2])
  end)
end)

describe("multi_binary", function()
  it("holds n bits", function()
    local s = spaces.multi_binary(5)
    assert.equal(5, spaces.flat_size(s))
    assert.is_nil(spaces.mask_size(s))
    assert.equal("MultiBinary(5)", spaces.describe(s))
    assert.is_true(spaces.contains(s, {0, 1, 1, 0, 1}))
    assert.is_false(spaces.contains(s, {0, 1, 2, 0, 1}))
    assert.is_true(spaces.contains(s, spaces.sample(s, envs.rng.new(1))))
    expect_error(function() spaces.multi_binary(0) end, "positive integer")
  end)
end)

describe("hybrid", function()
  local s = spaces.hybrid({spaces.discrete(4), spaces.box(2, -1, 1)})

  it("is a flat list: an integer per discrete part, the numbers of each box", function()
    assert.equal(3, spaces.flat_size(s))
    assert.is_nil(spaces.mask_size(s))
    assert.equal("Hybrid(Discrete(4), Box(-1, 1, (2,)))", spaces.describe(s))
    assert.is_true(spaces.contains(s, {3, 0.5, -1}))
    assert.is_false(spaces.contains(s, {4, 0.5, -1}))
    assert.is_false(spaces.contains(s, {3, 1.5, -1}))
    assert.is_false(spaces.contains(s, {3, 0.5}))
    local r = envs.rng.new(2)
    for _ = 1, 50 do assert.is_true(spaces.contains(s, spaces.sample(s, r))) end
  end)

  it("takes discrete and 1-D box parts only", function()
    expect_error(function() spaces.hybrid({spaces.discrete(2), spaces.box({2, 2}, 0, 1)}) end,
                 "parts[2] must be a 1-D box")
    expect_error(function() spaces.hybrid({spaces.multi_binary(2)}) end,
                 "parts[1] must be a discrete or a box space")
    expect_error(function() spaces.hybrid({}) end, "non-empty list")
    expect_error(function() spaces.hybrid({{type = "discrete", n = 0}}) end, "parts[1] (discrete) needs n")
  end)
end)

describe("dict", function()
  local s = spaces.dict({pos = spaces.box(2, -5, 5), hp = spaces.box(1, 0, 10),
                         tiles = spaces.box({2, 2, 2}, 0, 1)})

  it("flattens its parts in sorted name order, as Gymnasium orders a Dict", function()
    assert.equal(11, spaces.flat_size(s))
    assert.same({{name = "hp", offset = 0, size = 1}, {name = "pos", offset = 1, size = 2},
                 {name = "tiles", offset = 3, size = 8}}, spaces.layout(s))
    local x = {pos = {1, 2}, hp = 7, tiles = {0, 1, 0, 1, 1, 0, 1, 0}}
    assert.is_true(spaces.contains(s, x))  -- a one-number part may be a plain number
    assert.same({7, 1, 2, 0, 1, 0, 1, 1, 0, 1, 0}, spaces.flatten(s, x))
    x.hp = {7}
    assert.same({7, 1, 2, 0, 1, 0, 1, 1, 0, 1, 0}, spaces.flatten(s, x))
    x.hp = {11}
    assert.is_false(spaces.contains(s, x))  -- above the part's high
    -- into a caller's table, longer than needed: the rest is cleared
    local out = {}
    for i = 1, 20 do out[i] = -1 end
    assert.equal(out, spaces.flatten(s, x, out))
    assert.equal(11, #out)
    assert.equal("Dict('hp': Box(0, 10, (1,)), 'pos': Box(-5, 5, (2,)), 'tiles': Box(0, 1, (2, 2, 2)))",
                 spaces.describe(s))
  end)

  it("names the part that is wrong", function()
    expect_error(function() spaces.flatten(s, {pos = {1}, hp = {1}, tiles = {0, 0, 0, 0, 0, 0, 0, 0}}) end,
                 "part 'pos' must be 2 numbers, got 1 numbers")
    expect_error(function() spaces.flatten(s, {pos = {1, 2}, tiles = {}}) end, "part 'hp' must be 1 numbers, got nil")
    assert.is_false(spaces.contains(s, {pos = {1, 2}, hp = {1}, tiles = {0, 0, 0, 0, 0, 0, 0, 0}, extra = {1}}))
    expect_error(function() spaces.dict({a = spaces.discrete(3)}) end, "part 'a' must be a box")
    expect_error(function() spaces.dict({}) end, "at least one part")
    expect_error(function() spaces.dict({[1] = spaces.box(1, 0, 1)}) end, "names must be strings")
  end)

  it("samples an element of each part", function()
    local r = envs.rng.new(6)
    for _ = 1, 20 do assert.is_true(spaces.contains(s, spaces.sample(s, r))) end
  end)
end)

describe("grids", function()
  it("are boxes of shape {C, H, W}, flat in C-major order", function()
    local g = spaces.box({4, 10, 10}, 0, 1)
    assert.equal(400, spaces.flat_size(g))
    assert.equal("Box(0, 1, (4, 10, 10))", spaces.describe(g))
    assert.is_nil(spaces.mask_size(g))
  end)

  it("list every type in the message for an unknown one", function()
    local ok, err = spaces.validate({type = "tuple"})
    assert.is_false(ok)
    assert.is_truthy(err:find('"multi_discrete", "multi_binary", "hybrid" or "dict", got tuple', 1, true))
  end)
end)
