-- tests/lua/helper.lua — shared by the specs: puts the repository's scripts/
-- and the built C module on the search paths, from this file's location, so
-- `busted --lua=lua5.4 tests/lua` and `build/moonrl /usr/bin/busted tests/lua`
-- both work from any directory.  $BUILD (default "build") picks the build
-- folder, as the Makefile does.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local root = here .. "../../"
local build = os.getenv("BUILD") or "build"
if build:sub(1, 1) ~= "/" then build = root .. build end

local function prepend(path, entries)
  if path:find(entries, 1, true) then return path end
  return entries .. ";" .. path
end

package.path = prepend(package.path, root .. "scripts/?.lua;" .. root .. "scripts/?/init.lua")
if rawget(_G, "jit") then
  -- LuaJIT cannot load the Lua 5.4 module; its moonrl.core is the FFI binding
  package.path = prepend(package.path, root .. "bindings/luajit/?.lua;" ..
                                       root .. "bindings/luajit/?/init.lua")
else
  package.cpath = prepend(package.cpath, build .. "/lua/?.so")
end

local helper = {root = root, build = build}

-- Calls fn and returns its error message; fails the test when fn succeeds.
function helper.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got none")
  return tostring(err)
end

-- Asserts that fn raises and that the message contains every given plain
-- substring.
function helper.raises(fn, ...)
  local msg = helper.error_of(fn)
  for i = 1, select("#", ...) do
    local want = select(i, ...)
    assert(msg:find(want, 1, true),
           ("error message %q does not contain %q"):format(msg, want))
  end
  return msg
end

-- Asserts |a − b| ≤ tol (default 1e-12), printing both in full.
function helper.near(a, b, tol)
  assert(math.abs(a - b) <= (tol or 1e-12), ("expected %.17g, got %.17g"):format(b, a))
end

-- Asserts two arrays hold the same values.
function helper.same_array(a, b)
  assert(#a == #b, ("expected %d elements, got %d"):format(#b, #a))
  for i = 1, #b do assert(a[i] == b[i], ("element %d: expected %s, got %s"):format(i, tostring(b[i]), tostring(a[i]))) end
end

function helper.close(a, b, tol)
  return math.abs(a - b) <= (tol or 1e-5) * math.max(1, math.abs(b))
end

return helper
