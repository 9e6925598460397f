-- tests/lua/golden_spec.lua — the JSON module and the golden runner's check
-- rule (../shared/golden/README.md): what passes, what fails, and how the
-- runner reports it.

local H = dofile((debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "helper.lua")
local json = require "moonrl.json"
local golden = require "moonrl.golden"
local raises = H.raises

describe("moonrl.json", function()
  it("decodes numbers, including exponents and negative zero", function()
    local v = json.decode("[0, -12, 3.25, 1e3, -2.5E-2, 6.02e+23, -0.0]")
    assert.same({0, -12, 3.25, 1000, -0.025, 6.02e23, 0}, v)
    if math.type then
      assert.equal("integer", math.type(v[2]))
      assert.equal("float", math.type(v[3]))
      assert.equal("float", math.type(json.decode("1.0")))
    end
  end)

  it("decodes strings with escapes and \\u to UTF-8", function()
    assert.equal('a"b\\c/d\b\f\n\r\t', json.decode([["a\"b\\c\/d\b\f\n\r\t"]]))
    assert.equal("é", json.decode([["\u00e9"]]))
    assert.equal("€", json.decode([["\u20AC"]]))
    assert.equal("\240\159\152\128", json.decode([["\ud83d\ude00"]])) -- U+1F600
    assert.equal("A", json.decode([["\u0041"]]))
  end)

  it("decodes objects, arrays, literals and null", function()
    local v = json.decode(' {"a": [true, false, null, {}], "b": {"c": "d"}, "e": []} ')
    assert.is_true(v.a[1])
    assert.is_false(v.a[2])
    assert.equal(json.null, v.a[3])
    assert.same({}, v.a[4])
    assert.equal("d", v.b.c)
    assert.same({}, v.e)
  end)

  it("reports errors with their position", function()
    raises(function() json.decode('{"a": 1,\n "b": }') end, "line 2, column 7")
    raises(function() json.decode("[1, 2") end, "unexpected end of input")
    raises(function() json.decode("[01]") end, "leading zero")
    raises(function() json.decode("[1.]") end, "digit expected")
    raises(function() json.decode('"abc') end, "unterminated string")
    raises(function() json.decode('"\\x"') end, "bad escape")
    raises(function() json.decode('"\\ud83d"') end, "surrogate")
    raises(function() json.decode("[1] x") end, "trailing character")
    raises(function() json.decode("tru") end, "unexpected character")
    raises(function() json.decode("{1: 2}") end, "string key expected")
    local v, err = json.try_decode("[")
    assert.is_nil(v)
    assert.matches("json:", err)
  end)

  it("encodes and reads back", function()
    local t = {name = "x\n\"y\"", list = {1, 2.5, -3e-7, true, false}, nested = {a = {}}}
    local back = json.decode(json.encode(t))
    assert.same(t.list, back.list)
    assert.equal(t.name, back.name)
    assert.equal('{"a":1,"b":[1,2]}', json.encode({b = {1, 2}, a = 1}))
    assert.equal("[]", json.encode(json.array()))
    assert.equal("0.1", json.encode(0.1))
    raises(function() json.encode(0 / 0) end, "cannot encode")
    local cyc = {}
    cyc.self = cyc
    raises(function() json.encode(cyc) end, "cycle")
  end)
end)

describe("moonrl.golden", function()
  local tol = {rtol = 1e-3, atol = 1e-6}

  it("passes within atol*sqrt(n) + rtol*|exp| and fails beyond", function()
    assert.is_nil(golden.compare("x", {1.0005, 2}, {1, 2}, tol))
    assert.is_nil(golden.compare("x", 3.0029, 3, tol)) -- allowed 1e-6 + 3e-3
    local why = golden.compare("x", {1.01, 2}, {1, 2}, tol)
    assert.matches("^x: |got%-exp| = ", why)
    assert.matches("allowed", why)
    assert.matches("x: 1 values, expected 2", golden.compare("x", {1}, {1, 2}, tol))
    assert.matches("no value computed", golden.compare("x", nil, {1}, tol))
    assert.matches("x%[1%]: got nan", golden.compare("x", {0 / 0}, {1}, tol))
  end)

  it("compares nested rows and booleans exactly", function()
    assert.is_nil(golden.compare("obs", {{1, 2}, {3, 4}}, {{1, 2}, {3, 4}}, tol))
    assert.is_nil(golden.compare("t", {true, false}, {true, false}, tol))
    assert.matches("expected exactly", golden.compare("t", {true, true}, {true, false}, tol))
    assert.matches("expected exactly", golden.compare("accepted_j", 1, 0, tol))
    if math.type then -- integer literal vs integer result: exact
      assert.matches("expected exactly", golden.compare("n", {3}, {2}, {rtol = 1, atol = 1}))
    end
  end)

  it("fails cases of unknown kinds and unknown options, never skips", function()
    assert.matches("unknown kind", golden.check({kind = "nope", expect = {}}))
    local why = golden.check({kind = "returns", rewards = {1, 2}, expect = {reward_to_go = {1, 2}}})
    assert.matches("missing input 'gamma'", why)
    why = golden.check({kind = "policy_eval", params = {}, obs = {{1}}, actions = {0},
                        policy = {obs_dim = 1, hidden = {}, activation = "swish",
                                  action = {type = "categorical", n = 2}},
                        expect = {logp = {0}}})
    assert.matches("activation", why)
    why = golden.check({kind = "policy_eval", policy = {obs_dim = 1, hidden = {},
                        activation = "tanh", action = {type = "beta", n = 2}}, expect = {}})
    assert.matches("unknown action type", why)
  end)

  it("checks a hand-made case end to end", function()
    local case = {kind = "returns", rewards = {1, 2, 3}, gamma = 0.5, tol = tol,
                  expect = {discounted_return = 2.75, reward_to_go = {2.75, 3.5, 3}}}
    assert.is_nil(golden.check(case))
    case.expect.reward_to_go[2] = 3.6
    assert.matches("reward_to_go", golden.check(case))
  end)

  it("prints a TAP plan first and a summary last", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(json.encode({format = "moonrl-golden-1", cases = {
      {name = "good", kind = "returns", rewards = {1}, gamma = 0.9,
       expect = {discounted_return = 1, reward_to_go = {1}}},
      {name = "bad", kind = "mystery", expect = {x = 1}},
      {name = "gae-left-out", kind = "gae", expect = {}},
    }}))
    f:close()
    local lines = {}
    local out = {write = function(_, s) lines[#lines + 1] = s end, flush = function() end}
    local status = golden.main({"--kinds", "returns,mystery", path}, out)
    os.remove(path)
    local text = table.concat(lines)
    assert.equal(1, status)
    assert.matches("^1%.%.2\n", text)
    assert.matches("\nok 1 %- good\n", text)
    assert.matches("\nnot ok 2 %- bad: unknown kind 'mystery'\n", text)
    assert.matches("\n1 passed, 1 failed\n$", text)
  end)

  -- Runs golden.main over files holding docs; returns status, output.
  local function run_docs(docs, args)
    local paths, all = {}, {}
    for i, d in ipairs(docs) do
      paths[i] = os.tmpname()
      local f = assert(io.open(paths[i], "w"))
      f:write(json.encode(d))
      f:close()
    end
    for _, a in ipairs(args or {}) do all[#all + 1] = a end
    for _, p in ipairs(paths) do all[#all + 1] = p end
    local lines = {}
    local out = {write = function(_, s) lines[#lines + 1] = s end, flush = function() end}
    local status = golden.main(all, out)
    for _, p in ipairs(paths) do os.remove(p) end
    return status, table.concat(lines)
  end

  it("reads golden-1 and golden-2 files, mixed, and refuses other formats", function()
    local ret = {name = "r", kind = "returns", rewards = {1}, gamma = 0.9,
                 expect = {discounted_return = 1, reward_to_go = {1}}}
    local status, text = run_docs({{format = "moonrl-golden-1", cases = {ret}},
                                   {format = "moonrl-golden-2", cases = {ret}}})
    assert.equal(0, status)
    assert.matches("\n2 passed, 0 failed\n$", text)
    status, text = run_docs({{format = "moonrl-golden-3", cases = {ret}}})
    assert.equal(1, status)
    assert.matches("not a moonrl%-golden%-1 or moonrl%-golden%-2 file", text)
  end)

  it("running_norm and reward_norm by hand (SB3 VecNormalize)", function()
    -- one batch {1, 3}: mean 2, var 1, n 2, from mean 0, var 1, count 1e-4
    local tot = 2.0001
    local m, v = 4 / tot, (1e-4 + 2 + 4 * 1e-4 * 2 / tot) / tot
    local case = {kind = "running_norm", batches = {{{1}, {3}}}, obs = {{5}, {1e6}},
                  clip_obs = 10, epsilon = 1e-8, tol = tol,
                  expect = {mean = {m}, var = {v}, count = tot,
                            normalized = {{(5 - m) / math.sqrt(v + 1e-8)}, {10}}}}
    assert.is_nil(golden.check(case))
    case.expect.var[1] = v * 1.01
    assert.matches("var", golden.check(case))
    -- rewards {1, 3}, env 2 done: ret {1, 3} merged, then ret[2] = 0
    local rcase = {kind = "reward_norm", rewards = {{1, 3}, {2, 4}},
                   dones = {{false, true}, {false, false}}, gamma = 0.5,
                   clip_reward = 10, epsilon = 1e-8, tol = tol, expect = {}}
    local delta = 3.25 - m
    local v2 = (v * tot + 0.5625 * 2 + delta * delta * tot * 2 / (tot + 2)) / (tot + 2)
    rcase.expect = {normalized = {{1 / math.sqrt(v + 1e-8), 3 / math.sqrt(v + 1e-8)},
                                  {2 / math.sqrt(v2 + 1e-8), 4 / math.sqrt(v2 + 1e-8)}},
                    ret_mean = m + delta * 2 / (tot + 2), ret_var = v2, ret_count = tot + 2}
    assert.is_nil(golden.check(rcase))
    rcase.gamma = 0.9
    assert.is_not_nil(golden.check(rcase))
  end)
end)
