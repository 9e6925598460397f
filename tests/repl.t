#!/bin/sh
# tests/repl.t — the `moonrl` REPL driven through a pseudo-terminal (tmux):
# type, complete, interrupt, and read the screen.  TAP on stdout.
#
# Every check polls `tmux capture-pane` until the expected text shows up
# one more time than it did before the keys were sent, with a timeout of
# $REPL_TIMEOUT seconds (20; ASan builds start slowly); the only sleeps
# give a chunk time to get going before it is interrupted.  The
# tmux server has its own socket (-L), so nothing touches a user's tmux.
# Without tmux the tty part is skipped; the piped-input checks still run.

BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
HOST=$BUILD/moonrl
TIMEOUT=${REPL_TIMEOUT:-20}

if [ ! -x "$HOST" ]; then
  echo "1..0 # SKIP $HOST is not built"
  exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/moonrl-repl.XXXXXX") || exit 1
sock="moonrl-repl-test-$$"
T() { tmux -L "$sock" -f /dev/null "$@"; }
cleanup() {
  if command -v tmux >/dev/null 2>&1; then T kill-server >/dev/null 2>&1; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
  n=$((n + 1)); failed=$((failed + 1))
  echo "not ok $n - $1"
  [ -n "$2" ] && printf '%s\n' "$2" | sed 's/^/#   /'
}

# ------------------------------------------------------------ piped input
# Not a terminal: no prompts, no banner, values still print.

out=$(printf '1+1\nfunction f()\n  return 5\nend\nf()\n= "a" .. "b"\nmath.max(1,\n  7, 3)\n' |
      "$HOST" -i 2>&1)
want=$(printf '2\n5\nab\n7')
if [ "$out" = "$want" ]; then ok "piped -i: values print (multi-line calls too), no prompts"
else notok "piped -i: values print (multi-line calls too), no prompts" "got: $out"; fi

out=$(printf 'print(type(rl), rl.version)\n' | "$HOST" 2>&1)
if [ "$out" = "$(printf 'table\t0.1.0')" ]; then ok "piped without -i: a script, with rl bound"
else notok "piped without -i: a script, with rl bound" "got: $out"; fi

out=$(printf '%s\n' \
  't = {1, 2, {x = 1}}; t.self = t; return t' \
  '{policy_loss = -0.0123, value_loss = 12.5, stopped_early = false}' \
  'rl.policy{obs = 3, action = rl.box(1, -2, 2), hidden = {32}}' \
  'rl.value{obs = 4}' \
  'rl.tensor{{1, 2, 3}, {4, 5, 6}}' \
  '1/3, 100000, 2^60' | "$HOST" -i 2>&1)
want=$(printf '%s\n' \
  '{1, 2, {x = 1}, self = <cycle>}' \
  'policy_loss    -0.0123' \
  'stopped_early  false' \
  'value_loss     12.5' \
  'moonrl.Policy obs 3 → tanh 32 → box(1, [-2, 2]), 162 params' \
  'moonrl.Net 4 → tanh 64 → tanh 64 → 1, 4545 params' \
  'moonrl.Tensor [2][3] {1, 2, 3, 4, 5, 6}' \
  '0.333333	100000	1.15292e+18')
# the cycle marker carries an address: compare without it
got=$(printf '%s\n' "$out" | sed 's/<cycle: table: 0x[0-9a-f]*>/<cycle>/')
if [ "$got" = "$want" ]; then ok "pretty printer: cycle, stats, policy, net, tensor, numbers"
else notok "pretty printer: cycle, stats, policy, net, tensor, numbers" "got:
$got"; fi

out=$(printf '%s\n' 'help(rl.policy)' 'help()' 'help(nosuch)' 'help("nosuch")' \
  'help("Policy:act")' | "$HOST" -i 2>&1)
case $out in
  *"rl.policy{obs="*"Functions and modules:"*"no help for nil"*"no help for 'nosuch'"*"p:act(obs, [deterministic])"*)
    ok "help texts: a function, the topics, unknown things, a method" ;;
  *) notok "help texts: a function, the topics, unknown things, a method" "$out" ;;
esac

out=$(printf '%s\n' 'help(rl.multi_discrete)' 'help(rl.hybrid)' 'help("masks")' \
  'rl.policy{obs = 3, action = rl.multi_discrete{3, 2}}' | "$HOST" -i 2>&1)
case $out in
  *"one after another"*"Discrete and continuous parts"*"Invalid-action masks"*"multi_discrete{3, 2}, 4741 params"*)
    ok "help texts and printing of the composite action spaces and masks" ;;
  *) notok "help texts and printing of the composite action spaces and masks" "$out" ;;
esac

# ---------------------------------------------------------------- the tty

if ! command -v tmux >/dev/null 2>&1; then
  echo "1..$n # SKIP no tmux for the terminal tests"
  exit $((failed > 0))
fi

screen() { T capture-pane -p -J -S - -t "$S" 2>/dev/null; }
# count MODE PATTERN: lines of the screen matching (MODE: -x whole line,
# -F substring, -E regex)
count() {
  if [ "$1" = -x ]; then screen | grep -c -x -F -- "$2"
  else screen | grep -c "$1" -- "$2"; fi
}
typ() { T send-keys -t "$S" -l -- "$1"; }
key() { T send-keys -t "$S" "$@"; }

# expect DESC MODE PATTERN ACTION...: runs the action (a shell command),
# then waits for one more matching line than before it (`fresh` as the
# action: waits for the first one in a new session).
expect() {
  desc=$1 mode=$2 pat=$3
  shift 3
  before=0
  [ "$1" = fresh ] || before=$(count "$mode" "$pat")
  "$@"
  i=0
  while [ "$i" -lt $((TIMEOUT * 10)) ]; do
    if [ "$(count "$mode" "$pat")" -gt "$before" ]; then ok "$desc"; return 0; fi
    sleep 0.1
    i=$((i + 1))
  done
  notok "$desc" "screen:
$(screen | grep -v '^ *$' | tail -n 15)"
  return 1
}
line() { typ "$1"; key Enter; }
# until_more MODE PATTERN N: waits (quietly) for more than N matching
# lines.  Needed before a Ctrl-C: the tty flushes the input that readline
# has not read yet, and a chunk must have started to be interrupted.
until_more() {
  i=0
  while [ "$i" -lt $((TIMEOUT * 10)) ] && [ "$(count "$1" "$2")" -le "$3" ]; do
    sleep 0.1
    i=$((i + 1))
  done
}
# run_then_interrupt LINE SECONDS: enters LINE, waits until it shows and
# SECONDS more, then presses Ctrl-C.
run_then_interrupt() {
  b=$(count -x "moonrl> $1")
  line "$1"
  until_more -x "moonrl> $1" "$b"
  sleep "$2"
  key C-c
}

fresh() { :; }
at_prompt() { until_more -E "^moonrl> ?$" 0; }
# ctrl_c: presses Ctrl-C and waits for the fresh prompt, so that what is
# typed next is not read before the interrupt.
ctrl_c() {
  p=$(count -E "^moonrl> ?$")
  key C-c
  until_more -E "^moonrl> ?$" "$p"
}
dropline() {
  b=$(count -x "moonrl> error('dropped')")
  typ "error('dropped')"
  until_more -x "moonrl> error('dropped')" "$b"
  ctrl_c
}
dropchunk() {
  b=$(count -E "^     >> ?$")
  line "for i = 1, 3 do"
  until_more -E "^     >> ?$" "$b"
  ctrl_c
  line "4+4"
}

# start ENV...: a new session running moonrl with that environment; the
# pane stays after moonrl exits, to show its status.  Sessions are never
# killed one by one (the server would exit with the last and race the next
# new-session); cleanup kills the server.
k=0
start() {
  k=$((k + 1))
  S=repl$k
  cmd="env -u MOONRL_HISTORY $* '$HOST'; echo \"[moonrl exited \$?]\"; sleep 600"
  T new-session -d -s "$S" -x 160 -y 50 "$cmd"
  T set-option -t "$S" history-limit 20000 >/dev/null
}

mkdir -p "$tmp/home"
start HOME="$tmp/home"
expect "banner names the version and binding" -F "moonrl 0.1.0 (lua54 binding" fresh
expect "an expression prints its value" -x "2" line "1+1"
expect "'= expr' works too" -x "6" line "= 2*3"
expect "a multi-line chunk continues at the >> prompt" -E "^     >> ?$" line "function twice(x)"
line "  return 2 * x"
line "end"
expect "the function it defined works" -x "42" line "twice(21)"

expect "rl.pol<Tab> completes to rl.policy" -x "moonrl> p = rl.policy" \
  eval 'typ "p = rl.pol"; key Tab'
expect "the completed call runs" -E "^moonrl> ?$" \
  eval 'typ "{obs = 4, action = rl.discrete(2), seed = 1}"; key Enter'
expect "a policy pretty-prints with its architecture" -x \
  "moonrl.Policy obs 4 → tanh 64 → tanh 64 → discrete(2), 4610 params" line "p"
expect "p:ac<Tab> completes the common prefix p:act" -x "moonrl> p:act" \
  eval 'typ "p:ac"; key Tab'
expect "a second <Tab> lists the methods" -F "p:action_width" key Tab Tab
key C-u
expect "rl.wrap.sh<Tab> completes a lazily loaded module's field" -x \
  "moonrl> rl.wrap.shape_reward" eval 'typ "rl.wrap.sh"; key Tab'
key C-u
expect "help(rl.policy) shows its text" -F "A stochastic policy: an MLP" line "help(rl.policy)"

expect "Ctrl-C stops an endless loop with 'interrupted!'" -F "interrupted!" \
  run_then_interrupt "while true do end" 0.3
expect "the REPL keeps working after the interrupt" -x "4" line "2+2"
expect "Ctrl-C at the prompt drops the typed line" -x "moonrl> error('dropped')^C" dropline
expect "... and the next line runs" -x "7" line "3+4"
if [ "$(count -F 'stdin:1: dropped')" -gt 0 ]; then
  notok "the dropped line did not run" "$(screen | tail -n 8)"
else ok "the dropped line did not run"; fi
expect "Ctrl-C at >> drops the unfinished chunk" -x "8" dropchunk

# A long learn interrupted: the policy survives and still acts.
if printf 'return rl.ppo ~= nil\n' | "$HOST" -i 2>/dev/null | grep -qx true; then
  line 'agent = rl.ppo{env = "CartPole-v1", env_opts = {num_envs = 2}, n_steps = 64, seed = 1}'
  expect "Ctrl-C interrupts agent:learn" -F "interrupted!" \
    run_then_interrupt "agent:learn(1e9)" 1
  expect "the trainer's policy is usable afterwards" -E "^[01][[:space:]]+-?[0-9.e+-]+$" \
    line "agent.policy:act{0, 0, 0, 0}"
else
  n=$((n + 1)); echo "ok $n # SKIP rl.ppo is not available"
  n=$((n + 1)); echo "ok $n # SKIP rl.ppo is not available"
fi

line "hist_check = 40 + 2"
expect "Ctrl-D exits with status 0" -x "[moonrl exited 0]" key C-d
if [ -f "$tmp/home/.moonrl_history" ] && grep -qx "hist_check = 40 + 2" "$tmp/home/.moonrl_history"
then ok "history written to ~/.moonrl_history"
else notok "history written to ~/.moonrl_history"; fi

start HOME="$tmp/home"
expect "Up recalls the last line of the previous session" -x \
  "moonrl> hist_check = 40 + 2" eval 'at_prompt; key Up'
key Enter
expect "... and it runs" -x "42" line "hist_check"
expect "a multi-line chunk comes back as one entry (Ctrl-R)" -x "  return 2 * x" \
  eval 'key C-r; typ "function twice"'
key Enter
expect "... and runs as one" -x "8" line "twice(4)"
expect "second session exits with status 0" -x "[moonrl exited 0]" eval 'key C-u; key C-d'

# The history is bounded: 1200 old entries come back as the last 1000.
i=1
while [ "$i" -le 1200 ]; do printf '#%d\nold_%d = 1\n' $((1700000000 + i)) "$i"; i=$((i + 1)); done \
  > "$tmp/bounded"
start HOME="$tmp/home" MOONRL_HISTORY="$tmp/bounded"
expect "MOONRL_HISTORY is read" -x "moonrl> old_1200 = 1" eval 'at_prompt; key Up'
expect "bounded history session exits 0" -x "[moonrl exited 0]" eval 'key C-u; key C-d'
entries=$(grep -c '^old_' "$tmp/bounded")
if [ "$entries" = 1000 ] && grep -qx 'old_201 = 1' "$tmp/bounded" && ! grep -qx 'old_200 = 1' "$tmp/bounded"
then ok "history keeps the last 1000 entries"
else notok "history keeps the last 1000 entries" "$entries entries"; fi

start -u HOME
expect "without HOME: still a REPL" -x "2" line "1+1"
expect "without HOME: exits 0" -x "[moonrl exited 0]" key C-d
start HOME=/nonexistent/moonrl-home
expect "unwritable HOME: still a REPL" -x "2" line "1+1"
expect "unwritable HOME: exits 0" -x "[moonrl exited 0]" key C-d

echo "1..$n"
exit $((failed > 0))
