#!/bin/sh
# The embedding examples (examples/embed): embed_lua — a C program with Lua
# 5.4 and moonrl inside — trains CartPole from the env script; infer — plain
# C, no Lua — loads policies of every action type (discrete, box,
# multi_discrete, multi_binary, hybrid, a conv body) saved from Lua and must
# pick the same greedy actions as policy:act(obs, true[, mask]) does in Lua,
# masks included, and must refuse bad lines and damaged files cleanly.
# prove gives $BUILD; the binaries are part of `make all` (built here when
# missing, with the sanitizer flags if $BUILD is an ASan build).
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
export BUILD
if [ ! -x "$BUILD/examples/embed_lua" ] || [ ! -x "$BUILD/examples/infer" ]; then
  san=""
  if ldd "$BUILD/libmoonrl.so" 2>/dev/null | grep -q libasan; then san="SAN=1 OPT=-O1"; fi
  # shellcheck disable=SC2086
  make -s BUILD="$BUILD" $san "$BUILD/examples/embed_lua" "$BUILD/examples/infer" >&2 || {
    echo "1..0 # SKIP cannot build the embedding examples"; exit 0; }
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# infer's cases come from Lua 5.4 and, when luajit is here and the build is
# not an ASan one (luajit is not instrumented), from LuaJIT too
KINDS="discrete box multi_discrete multi_binary hybrid conv"
vms="lua54"
if command -v luajit >/dev/null 2>&1 && ! ldd "$BUILD/libmoonrl.so" 2>/dev/null | grep -q libasan; then
  vms="lua54 luajit"
fi
nkinds=$(echo "$KINDS" | wc -w)
nvms=$(echo "$vms" | wc -w)
echo "1..$((3 + nkinds * nvms + 8))"

# 1-2: training from C through the embedded Lua layer
out=$("$BUILD/examples/embed_lua" envs/CartPole-v1.lua 8192 1 2>"$tmp/err")
rc=$?
echo "$out" | sed 's/^/# /'
first=$(echo "$out" | sed -n 's/.*first_mean=\([0-9.]*\).*/\1/p')
last=$(echo "$out" | sed -n 's/.*mean_return=\([0-9.]*\).*/\1/p')
if [ $rc = 0 ] && [ -n "$first" ] && [ -n "$last" ]; then
  echo "ok 1 - embed_lua trains CartPole-v1 from the env script (exit 0)"
else
  sed 's/^/# /' "$tmp/err"
  echo "not ok 1 - embed_lua trains CartPole-v1 from the env script (exit $rc)"
fi
if [ -n "$first" ] && [ -n "$last" ] && awk -v a="$first" -v b="$last" 'BEGIN { exit !(b > a + 20 && b > 60) }'; then
  echo "ok 2 - the return improved: first update's mean $first, last $last"
else
  echo "not ok 2 - the return improved: first update's mean '$first', last '$last'"
fi

# 3: a broken env script is an error message from the host, not a crash
"$BUILD/examples/embed_lua" tests/lua/fixtures/bad_syntax.lua 1000 1 >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc = 1 ] && grep -q "^embed_lua: " "$tmp/err"; then
  echo "ok 3 - embed_lua reports a broken env script and exits 1"
else
  sed 's/^/# /' "$tmp/err"
  echo "not ok 3 - embed_lua reports a broken env script and exits 1 (exit $rc)"
fi

# infer: policies of every action type saved from Lua (tests/lua/fixtures/
# infer_cases.lua: observations, masks, and Lua's greedy actions)

"$BUILD/moonrl" tests/lua/fixtures/infer_cases.lua "$tmp" 2>"$tmp/err" || sed 's/^/# /' "$tmp/err"
case $vms in *luajit*)
  luajit bindings/luajit/run.lua tests/lua/fixtures/infer_cases.lua "$tmp" lj_ 2>"$tmp/err" ||
    sed 's/^/# /' "$tmp/err" ;;
esac
n=4
for vm in $vms; do
  pre=""
  [ "$vm" = luajit ] && pre="lj_"
  for kind in $KINDS; do
    f="$tmp/$pre$kind"
    "$BUILD/examples/infer" "$f.safetensors" <"$f.obs" >"$f.got" 2>"$tmp/err"
    rc=$?
    distinct=$(sort -u "$f.got" | wc -l)
    masks=""
    grep -q '|' "$f.obs" 2>/dev/null && masks=", $(cat "$f.info")"
    if [ $rc = 0 ] && [ -s "$f.want" ] && cmp -s "$f.want" "$f.got"; then
      echo "ok $n - infer (plain C) acts as policy:act(obs, true[, mask]) on 60 states, $kind policy saved from $vm ($distinct distinct actions$masks)"
    else
      sed 's/^/# /' "$tmp/err"
      diff "$f.want" "$f.got" | head -5 | sed 's/^/# /'
      echo "not ok $n - infer (plain C) acts as policy:act(obs, true[, mask]), $kind policy saved from $vm (exit $rc)"
    fi
    n=$((n + 1))
  done
done

# Bad input: a clear message naming the line or the file, exit 2 (input) or
# 1 (file), the lines before the bad one answered, no crash.
# refuses NAME POLICY WANT_RC PATTERN INPUT [ANSWERS]: infer POLICY on INPUT
# (stdin) exits WANT_RC with PATTERN, after ANSWERS (0) good lines' actions
refuses() {
  name=$1 policy=$2 want=$3 pattern=$4
  printf '%s' "$5" | "$BUILD/examples/infer" "$tmp/$policy.safetensors" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc = "$want" ] && grep -q "^infer: $pattern" "$tmp/err" &&
     [ "$(wc -l <"$tmp/out" | tr -d " ")" = "${6:-0}" ] && ! grep -q "AddressSanitizer\|runtime error" "$tmp/err"; then
    echo "ok $n - infer refuses $name ($(head -1 "$tmp/err"))"
  else
    sed 's/^/# /' "$tmp/err"
    echo "not ok $n - infer refuses $name (exit $rc)"
  fi
  n=$((n + 1))
}
obs4=$(head -1 "$tmp/discrete.obs" | cut -d'|' -f1)
obs5=$(head -1 "$tmp/multi_discrete.obs" | cut -d'|' -f1)
obs3=$(head -1 "$tmp/box.obs")
refuses "a mask of the wrong length, after a good line (answered)" discrete 2 \
  "line 2: mask: 5 numbers 0/1 expected (one per action), got 3" \
  "$obs4
$obs4 | 1 0 1
$obs4
" 1
refuses "a mask that is not 0/1" discrete 2 "line 1: mask: entry 2 is 0.5, not 0 or 1" \
  "$obs4 | 1 0.5 1 1 1
"
refuses "a fully masked component" multi_discrete 2 "line 2: .*every action of part 2 (entries 4 to 7)" \
  "
$obs5 | 1 1 0 0 0 0 0 1 1
"
refuses "a mask for a policy that takes none" box 2 "line 1: this policy takes no mask" \
  "$obs3 | 1 1
"
refuses "too few observation numbers" multi_binary 2 "line 1: 4 observation numbers expected, got 2" \
  "0.5 0.25
"
refuses "a file with an unknown action type" bad_type 1 ".*bad_type.safetensors: unknown action type \"teleport\"" \
  "$obs4
"
refuses "a file whose tensors disagree with its architecture" bad_shape 1 \
  ".*bad_shape.safetensors: tensor policy.2.weight does not have the shape \[31\]\[32\]" "$obs4
"
head -c 200 "$tmp/discrete.safetensors" >"$tmp/cut.safetensors"
refuses "a truncated policy file" cut 1 ".*cut.safetensors" "$obs4
"
