#!/usr/bin/env bash
# Multi-node data parallel tested for real (issue 24): two "nodes" as Linux network namespaces
# joined by two veth pairs, private test addresses inside the namespaces only (10.213.0.0/24 and
# 10.213.1.0/24; nothing is routed anywhere else), `torchrun --nnodes 2 --nproc-per-node 1
# --no-python grpo train` in each (static rendezvous; the kill-mid-save case uses c10d), over
# Gloo. Then the faults a cluster shows; docs/distributed.md has the measured outcomes.
#
# Usage: multinode.sh GRPO_BIN TORCHRUN PYTHON [CASE...]   (no CASE: all of them)
# Exit 0 all passed, 1 a failure, 77 skipped (namespaces cannot be created: not root, no iproute2,
# no CAP_NET_ADMIN), which CTest reports as skipped (SKIP_RETURN_CODE).
# Every exit path tears down: the namespaces' processes are SIGKILLed (by pid, from `ip netns
# pids`), the namespaces deleted, and the test then checks that none is left.
set -u
BIN_SRC=$(readlink -f "$1"); TORCHRUN=$2; PY=$3; shift 3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CFG=$HERE/../e2e_dist/dist-parity.yaml
TAG=gmn$$                       # unique per run: namespaces gmn<pid>-0/1, veths gmn<pid>a/b
NS0=$TAG-0 NS1=$TAG-1
IP0=10.213.0.1 IP1=10.213.0.2
TMP=$(mktemp -d /tmp/grpo_e2e_multinode.XXXXXX)
FAILED=0
# A copy of the binary: a rebuild in the shared build directory must not pull it away mid-run.
cp "$BIN_SRC" "$TMP/grpo" && BIN=$TMP/grpo || { echo "FAIL: cannot copy $BIN_SRC"; exit 1; }
T_START=$(date +%s.%N)

log() { echo "[multinode $(date -u +%T)] $*"; }
fail() { echo "FAIL: $*"; FAILED=1; }
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

kill_ns_procs() {  # every process inside our namespaces (we started them all), by pid
  local ns pids
  for ns in "$NS0" "$NS1"; do
    ns_exists "$ns" || continue
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  done
  return 0
}

teardown() {
  kill_ns_procs
  sleep 0.2
  local ns
  for ns in "$NS0" "$NS1"; do ns_exists "$ns" && ip netns del "$ns" 2>/dev/null; done
  ip link del "${TAG}a" 2>/dev/null; ip link del "${TAG}c" 2>/dev/null
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap 'teardown' EXIT
trap 'exit 130' INT TERM

# Leftovers after a case: no process in the namespaces, none mentioning this run's directory.
check_no_leftovers() {
  local what=$1 ns p left=""
  for ns in "$NS0" "$NS1"; do
    ns_exists "$ns" && [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && left+=" in $ns: $(ip netns pids "$ns" | tr '\n' ' ')"
  done
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- "$TMP" && left+=" pid ${p#/proc/}"
  done
  if [ -n "$left" ]; then fail "$what: processes left behind:$left"; kill_ns_procs; fi
}

# --- the two nodes -------------------------------------------------------------------------------
make_nodes() {
  ip netns add "$NS0" && ip netns add "$NS1" || return 1
  ip link add "${TAG}a" type veth peer name "${TAG}b" || return 1
  ip link set "${TAG}a" netns "$NS0" && ip link set "${TAG}b" netns "$NS1" || return 1
  ip -n "$NS0" addr add $IP0/24 dev "${TAG}a" && ip -n "$NS1" addr add $IP1/24 dev "${TAG}b" || return 1
  local ns; for ns in "$NS0" "$NS1"; do ip -n "$ns" link set lo up || return 1; done
  ip -n "$NS0" link set "${TAG}a" up && ip -n "$NS1" link set "${TAG}b" up || return 1
  # A second link (10.213.1.0/24) for interface selection: rendezvous on the first, Gloo on this.
  ip link add "${TAG}c" type veth peer name "${TAG}d" || return 1
  ip link set "${TAG}c" netns "$NS0" && ip link set "${TAG}d" netns "$NS1" || return 1
  ip -n "$NS0" addr add 10.213.1.1/24 dev "${TAG}c" && ip -n "$NS1" addr add 10.213.1.2/24 dev "${TAG}d" || return 1
  ip -n "$NS0" link set "${TAG}c" up && ip -n "$NS1" link set "${TAG}d" up || return 1
}
rx_bytes() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_bytes"; }

if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
  echo "SKIP: multi-node namespace tests need root and iproute2 (ip); uid=$(id -u)"; trap - EXIT; rm -rf "$TMP"; exit 77
fi
if ! make_nodes 2>"$TMP/ns.err"; then
  echo "SKIP: cannot create network namespaces / veth pairs here: $(cat "$TMP/ns.err")"; exit 77
fi

# --- running grpo on a node ----------------------------------------------------------------------
PORT=29611
LOGTAG=""  # suffix of the log names (a resumed run keeps the interrupted one's logs)
# The rendezvous: RDZV_MODE c10d (torchrun's dynamic rendezvous, hosted by node 0's agent) or
# static (--node-rank, --master-addr, --master-port).
rdzv_args() {
  local ep=${RDZV:-$IP0:$PORT}
  if [ "${RDZV_MODE:-c10d}" = static ]; then
    echo "--node-rank $1 --master-addr ${ep%:*} --master-port ${ep#*:} --rdzv-conf timeout=${JOIN_TIMEOUT:-60}${RDZV_CONF:-}"
  else
    echo "--rdzv-backend c10d --rdzv-endpoint $ep --rdzv-conf is_host=$2,join_timeout=${JOIN_TIMEOUT:-60}${RDZV_CONF:-}"
  fi
}
# start_node N OUT EXTRA_TORCHRUN... -- GRPO_ARGS...: torchrun in namespace N (background, its pid in PID), logs in $OUT.node$N.*
# --local-addr: the address the other node reaches this one at (torchrun's default is the host
# name, which every namespace shares and which resolves to no address of the veth).
start_node() {
  local n=$1 out=$2; shift 2
  local ns=$NS0 ifn=${IFN0:-${TAG}a} host=1 addr=$IP0; [ "$n" = 1 ] && { ns=$NS1; ifn=${IFN1:-${TAG}b}; host=0; addr=$IP1; }
  local tr_args=() ; while [ "$1" != "--" ]; do tr_args+=("$1"); shift; done; shift
  ip netns exec "$ns" env GLOO_SOCKET_IFNAME="$ifn" OMP_NUM_THREADS=1 \
    "$TORCHRUN" --nnodes 2 --nproc-per-node 1 $(rdzv_args "$n" "$host") \
    --local-addr "$addr" --max-restarts 0 "${tr_args[@]}" --no-python "$BIN" train "$CFG" trainer.output_dir="$out" "$@" \
    >"$out.node$n$LOGTAG.out" 2>"$out.node$n$LOGTAG.err" &
  PID=$!
}

# wait_exit PID BOUND_S [T0]: waits for PID to exit, at most BOUND_S seconds after T0 (default
# now); sets W_RC (exit status, or "timeout") and W_S (seconds since T0).
wait_exit() {
  local pid=$1 bound=$2 t0=${3:-$(now)}
  while kill -0 "$pid" 2>/dev/null; do
    W_S=$(elapsed "$t0")
    if (( $(echo "$W_S > $bound" | bc) )); then W_RC=timeout; return; fi
    sleep 0.1
  done
  wait "$pid"; W_RC=$?; W_S=$(elapsed "$t0")
}
# wait_for PATH BOUND_S: until PATH exists (glob allowed); 1 when it did not in time.
wait_for() {
  local t0; t0=$(now)
  until compgen -G "$1" >/dev/null; do
    (( $(echo "$(elapsed "$t0") > $2" | bc) )) && return 1
    sleep 0.05
  done
}
assert_grep() {  # assert_grep WHAT PATTERN FILE...
  local what=$1 pat=$2; shift 2
  grep -qE -- "$pat" "$@" || fail "$what: no line matching '$pat' in $*: $(tail -c 1500 "$@" 2>/dev/null)"
}
compare() {  # compare WHAT A B MODE
  local r; r=$("$PY" "$HERE/compare_runs.py" "$2" "$3" "$4" 2>&1) || fail "$1: $r"
  log "$1: $r"
}

# The shared settings: tests/e2e_dist/dist-parity.yaml's pipeline (SFT 3 steps, GRPO, 4 prompts x
# 4 completions per step) split over 2 ranks, timeouts small enough for a CI job.
TIMEOUT_S=20
NEVER_MARGIN=20  # torchrun start-up (~5 s on the loaded 2-core machine) and its store poll
WRONG_MARGIN=35  # torchrun's client connects up to 3 times before it gives up (measured ~38 s for 20)
OWN_TIMEOUT_S=10  # the rendezvous faults: torchrun's rendezvous timeout, and grpo's own (distributed.timeout_s)
OWN_MARGIN=15    # grpo's start-up before the rendezvous (config, tokenizer, data: ~2-5 s loaded)
RDZV_MODE=${RDZV_MODE:-static}
COMMON=(trainer.per_device_train_batch_size=4 stages.1.max_steps=8 distributed.timeout_s=$TIMEOUT_S)
inputs() { echo "tokenizer.path=$TMP/ref/tokenizer.model data.train_file=$TMP/ref/data/train.jsonl data.eval_file=$TMP/ref/data/eval.jsonl"; }
start_pair() {  # start_pair OUT [GRPO_ARGS...]: both nodes (a fresh rendezvous port); pids P0 P1
  local out=$1; shift
  PORT=$((PORT + 1)); T_PAIR=$(now)
  start_node 0 "$out" -- "${COMMON[@]}" $(inputs) "$@"; P0=$PID
  start_node 1 "$out" -- "${COMMON[@]}" $(inputs) "$@"; P1=$PID
}
wait_pair() {  # wait_pair BOUND_S [T0]: sets RC0 RC1 S0 S1 (seconds since T0, default the start)
  local t0=${2:-$T_PAIR}
  wait_exit "$P0" "$1" "$t0"; RC0=$W_RC S0=$W_S
  wait_exit "$P1" "$1" "$t0"; RC1=$W_RC S1=$W_S
}
run_pair() {  # run_pair OUT BOUND_S [GRPO_ARGS...]: both nodes, waits; sets RC0 RC1 S0 S1
  local out=$1 bound=$2; shift 2
  start_pair "$out" "$@"
  wait_pair "$bound"
}

case_parity() {
  # The reference: 1 node, 2 processes (torchrun on node 0's loopback), the same config and seeds.
  local t0; t0=$(now)
  ip netns exec "$NS0" env OMP_NUM_THREADS=1 "$TORCHRUN" --nnodes 1 --nproc-per-node 2 --master-addr 127.0.0.1 \
    --master-port 29612 --no-python "$BIN" train "$CFG" trainer.output_dir="$TMP/ref" \
    tokenizer.path="$TMP/ref/tokenizer.model" "${COMMON[@]}" >"$TMP/ref.out" 2>"$TMP/ref.err"
  local rc=$?
  log "parity: 1-node 2-process reference rc=$rc in $(elapsed "$t0") s"
  [ $rc = 0 ] || { fail "parity: the 1-node reference failed: $(tail -n 5 "$TMP/ref.err")"; return; }
  # Interface selection at the same time: the rendezvous goes over the first link (10.213.0.x),
  # GLOO_SOCKET_IFNAME names the second, so the gradients must cross the second.
  local b0 d0; b0=$(rx_bytes "$NS1" "${TAG}b"); d0=$(rx_bytes "$NS1" "${TAG}d")
  IFN0=${TAG}c IFN1=${TAG}d run_pair "$TMP/two" 120
  local b=$(( $(rx_bytes "$NS1" "${TAG}b") - b0 )) d=$(( $(rx_bytes "$NS1" "${TAG}d") - d0 ))
  log "parity: 2-node run rc=$RC0/$RC1 in $S0/$S1 s; node 1 received $b bytes on the rendezvous link, $d on GLOO_SOCKET_IFNAME's"
  # The rendezvous link carries the TCPStore and torchrun's heartbeats (~0.2 MB measured); had Gloo
  # used it, it would also carry the ~1.4 MB of broadcast and gradients that the second link does.
  (( d > 1000000 && b * 3 < d )) || fail "ifname: Gloo traffic not on GLOO_SOCKET_IFNAME=${TAG}d ($d bytes there, $b on ${TAG}b)"
  [ "$RC0" = 0 ] && [ "$RC1" = 0 ] || { fail "parity: 2-node run rc $RC0/$RC1: $(tail -n 5 "$TMP/two.node0.err" "$TMP/two.node1.err")"; return; }
  # The ranks really were on two hosts: rank 1 talked Gloo from node 1's address.
  assert_grep "parity" "rank 1/2 .*store $IP0:" "$TMP/two.node1.err"
  compare "parity (2 nodes vs 1 node x 2 processes, the bound of docs/distributed.md)" "$TMP/ref" "$TMP/two" bound
}


# start_env_rank N OUT MASTER_ADDR MASTER_PORT GRPO_ARGS...: grpo train as rank N of 2 in namespace
# N, started by its environment variables alone (as srun or a hand-written script does: no
# torchrun, grpo's own TCPStore rendezvous); background, its pid in PID, logs in $OUT.node$N.*
start_env_rank() {
  local n=$1 out=$2 addr=$3 port=$4; shift 4
  local ns=$NS0 ifn=${TAG}a; [ "$n" = 1 ] && { ns=$NS1; ifn=${TAG}b; }
  ip netns exec "$ns" env GLOO_SOCKET_IFNAME="$ifn" OMP_NUM_THREADS=1 RANK=$n LOCAL_RANK=0 WORLD_SIZE=2 \
    LOCAL_WORLD_SIZE=1 MASTER_ADDR="$addr" MASTER_PORT="$port" \
    "$BIN" train "$CFG" trainer.output_dir="$out" "$@" >"$out.node$n.out" 2>"$out.node$n.err" &
  PID=$!
}

case_never() {
  # Four faults at once, two per namespace, all waiting in parallel. Under torchrun: node 0 waits
  # for a node 1 that never starts; node 1 alone is given a wrong rendezvous address (10.213.0.9:
  # on the veth's subnet, nobody there). The same two with grpo's own rendezvous (environment
  # variables, no torchrun) and distributed.timeout_s=$OWN_TIMEOUT_S: rank 0 alone on node 0, rank 1
  # alone on node 1 pointed at 10.213.0.9. torchrun's rendezvous timeout is $OWN_TIMEOUT_S s too.
  PORT=$((PORT + 1)); T_PAIR=$(now)
  local own=$((PORT + 100)) own_args=("${COMMON[@]}" distributed.timeout_s=$OWN_TIMEOUT_S $(inputs))
  start_env_rank 0 "$TMP/ownnever" "$IP0" $own "${own_args[@]}"; local Q0=$PID
  start_env_rank 1 "$TMP/ownwrong" 10.213.0.9 $own "${own_args[@]}"; local Q1=$PID
  JOIN_TIMEOUT=$OWN_TIMEOUT_S start_node 0 "$TMP/never" -- "${COMMON[@]}" $(inputs); P0=$PID
  JOIN_TIMEOUT=$OWN_TIMEOUT_S RDZV=10.213.0.9:$PORT start_node 1 "$TMP/wrong" -- "${COMMON[@]}" $(inputs); P1=$PID
  wait_exit "$Q0" $((OWN_TIMEOUT_S + OWN_MARGIN)) "$T_PAIR"
  log "never (own rendezvous): rank 0 alone rc=$W_RC after $W_S s (distributed.timeout_s $OWN_TIMEOUT_S)"
  [ "$W_RC" != timeout ] && [ "$W_RC" != 0 ] || fail "never (own rendezvous): rank 0 rc $W_RC after $W_S s"
  (( $(echo "$W_S >= $OWN_TIMEOUT_S" | bc) )) || fail "never (own rendezvous): rank 0 gave up after $W_S s, before the timeout"
  assert_grep "never (own rendezvous)" "rendezvous at $IP0:$own \\(MASTER_ADDR:MASTER_PORT\\) failed within distributed.timeout_s=$OWN_TIMEOUT_S s: 1 of 2 ranks arrived \\(rank 0 on [^ ]+ $IP0 \\([^)]*\\)\\); missing: rank 1 \\(node 1\\)" "$TMP/ownnever.node0.err"
  wait_exit "$Q1" $((OWN_TIMEOUT_S + OWN_MARGIN)) "$T_PAIR"
  log "wrong address (own rendezvous): rank 1 rc=$W_RC after $W_S s"
  [ "$W_RC" != timeout ] && [ "$W_RC" != 0 ] || fail "wrong address (own rendezvous): rank 1 rc $W_RC after $W_S s"
  assert_grep "wrong address (own rendezvous)" "rank 1 of 2: cannot reach the rendezvous store at 10.213.0.9:$own \\(MASTER_ADDR:MASTER_PORT\\) within distributed.timeout_s=$OWN_TIMEOUT_S s" "$TMP/ownwrong.node1.err"
  grep -h "grpo: error" "$TMP/ownnever.node0.err" "$TMP/ownwrong.node1.err" | sed 's/^/    /'
  wait_exit "$P0" $((OWN_TIMEOUT_S + NEVER_MARGIN)) "$T_PAIR"
  log "never: node 0 alone rc=$W_RC after $W_S s (rendezvous timeout $OWN_TIMEOUT_S s)"
  [ "$W_RC" != timeout ] && [ "$W_RC" != 0 ] || fail "never: node 0 rc $W_RC after $W_S s"
  assert_grep "never" "Timed out after [0-9]+ seconds waiting for clients. 1/2 clients joined" "$TMP/never.node0.err"
  wait_exit "$P1" $((OWN_TIMEOUT_S + WRONG_MARGIN)) "$T_PAIR"
  log "wrong address: node 1 rc=$W_RC after $W_S s"
  [ "$W_RC" != timeout ] && [ "$W_RC" != 0 ] || fail "wrong address: node 1 rc $W_RC after $W_S s"
  assert_grep "wrong address" "10.213.0.9.*$PORT|10.213.0.9, $PORT" "$TMP/wrong.node1.err"
  grep -hE "DistStoreError|DistNetworkError|RendezvousTimeoutError|grpo: error" "$TMP/never.node0.err" "$TMP/wrong.node1.err" | sed 's/^/    /'
}

case_linkcut() {
  # The veth of node 1 goes down after GRPO checkpoint 2 (of 8): no FIN, no RST, the peers just
  # stop hearing each other. Every rank must exit within timeout_s + margin.
  local ck=$TMP/cut/stage-2-grpo/checkpoints/checkpoint-00000002 t_cut
  start_pair "$TMP/cut"
  wait_for "$ck" 90 || { fail "linkcut: no checkpoint 2 in 90 s: $(tail -n 5 "$TMP/cut.node0.err")"; return; }
  ip -n "$NS1" link set "${TAG}b" down; t_cut=$(now)
  wait_pair $((TIMEOUT_S + ${CUT_MARGIN:-40})) "$t_cut"
  log "linkcut: rc=$RC0/$RC1, exited $S0/$S1 s after the cut (timeout_s $TIMEOUT_S)"
  [ "$RC0" != timeout ] && [ "$RC0" != 0 ] || fail "linkcut: node 0 rc $RC0 after $S0 s"
  [ "$RC1" != timeout ] && [ "$RC1" != 0 ] || fail "linkcut: node 1 rc $RC1 after $S1 s"
  for n in 0 1; do grep "grpo: error" "$TMP/cut.node$n.err" | tail -n 2 | sed "s/^/    node $n: /"; done
  # Each rank's error names the ranks and their hosts (the peer's address included).
  assert_grep "linkcut node 0" "grpo: error: .*failed on rank 0 of 2 .*rank 1 on [^ ]+ $IP1 " "$TMP/cut.node0.err"
  assert_grep "linkcut node 1" "grpo: error: .*failed on rank 1 of 2 .*rank 0 on [^ ]+ $IP0 " "$TMP/cut.node1.err"
  check_no_leftovers "linkcut (before resume)"
  ip -n "$NS1" link set "${TAG}b" up
  [ -f "$TMP/cut/stage-2-grpo/stage.json" ] && { fail "linkcut: the stage finished before the cut"; return; }
  # The resume doubles as the late-start case: node 1 joins 6 s after node 0.
  PORT=$((PORT + 1)); T_PAIR=$(now)
  LOGTAG=.resume start_node 0 "$TMP/cut" -- "${COMMON[@]}" $(inputs) --resume auto; P0=$PID
  sleep 6
  kill -0 "$P0" 2>/dev/null || fail "late start: node 0 gave up before node 1 started: $(tail -n 5 "$TMP/cut.node0.resume.err")"
  LOGTAG=.resume start_node 1 "$TMP/cut" -- "${COMMON[@]}" $(inputs) --resume auto; P1=$PID
  wait_pair 150
  log "linkcut: resume (node 1 started 6 s late) rc=$RC0/$RC1 in $S0/$S1 s"
  [ "$RC0" = 0 ] && [ "$RC1" = 0 ] || { fail "linkcut: resume rc $RC0/$RC1: $(tail -n 5 "$TMP/cut.node0.resume.err")"; return; }
  assert_grep "linkcut resume" "resumed from $TMP/cut/stage-2-grpo/checkpoints/checkpoint-" "$TMP/cut.node0.resume.err"
  compare "linkcut + resume (against the 2-node run)" "$TMP/two" "$TMP/cut" exact
}

case_killsave() {
  # Node 0 (rank 0 writes the checkpoints; its agent hosts the c10d rendezvous) is SIGKILLed while
  # a GRPO checkpoint is being written (its .tmp- directory exists, the rename has not happened).
  # Node 1 must exit at once; --resume auto on both continues from the last complete checkpoint.
  local cks=$TMP/save/stage-2-grpo/checkpoints tmpdir="" t_kill n=0
  RDZV_MODE=c10d start_pair "$TMP/save"
  wait_for "$cks/checkpoint-00000002" 90 || { fail "killsave: no checkpoint 2 in 90 s: $(tail -n 5 "$TMP/save.node0.err")"; return; }
  until tmpdir=$(compgen -G "$cks/.tmp-checkpoint-*"); do
    n=$((n + 1)); [ $((n % 1000)) = 0 ] && ! kill -0 "$P0" 2>/dev/null && break
  done
  kill -9 $(ip netns pids "$NS0"); t_kill=$(now)
  [ -n "$tmpdir" ] && [ -d "$tmpdir" ] || { fail "killsave: the kill missed the save ($tmpdir)"; return; }
  local partial=${tmpdir##*/.tmp-}; partial=${partial%-*}
  wait_exit "$P1" $((TIMEOUT_S + 10)) "$t_kill"
  log "killsave: node 0 killed while writing $partial; node 1 rc=$W_RC after $W_S s"
  [ "$W_RC" != timeout ] && [ "$W_RC" != 0 ] || fail "killsave: node 1 rc $W_RC after $W_S s"
  grep -h "grpo: error" "$TMP/save.node1.err" | tail -n 1 | sed 's/^/    node 1: /'
  assert_grep "killsave node 1" "grpo: error: .*failed on rank 1 of 2 .*rank 0 on [^ ]+ $IP0 " "$TMP/save.node1.err"
  wait_exit "$P0" 5; check_no_leftovers "killsave (before resume)"
  [ -f "$TMP/save/stage-2-grpo/stage.json" ] && { fail "killsave: the stage finished before the kill"; return; }
  local last; last=$(ls "$cks" | grep '^checkpoint-' | sort | tail -n 1)
  [ "$last" \< "$partial" ] || fail "killsave: $partial is complete after the kill"
  RDZV_MODE=c10d LOGTAG=.resume run_pair "$TMP/save" 150 --resume auto
  log "killsave: resume rc=$RC0/$RC1 in $S0/$S1 s"
  [ "$RC0" = 0 ] && [ "$RC1" = 0 ] || { fail "killsave: resume rc $RC0/$RC1: $(tail -n 5 "$TMP/save.node0.resume.err")"; return; }
  assert_grep "killsave resume" "resumed from $cks/$last" "$TMP/save.node0.resume.err"
  compare "killsave + resume (against the 2-node run)" "$TMP/two" "$TMP/save" exact
}

CASES=${*:-parity never linkcut killsave}
for c in $CASES; do
  t0=$(now); log "case $c"
  "case_$c"
  check_no_leftovers "$c"
  log "case $c done in $(elapsed "$t0") s"
done
teardown; trap - EXIT
for ns in "$NS0" "$NS1"; do ns_exists "$ns" && fail "namespace $ns left behind"; done
ip link show "${TAG}a" >/dev/null 2>&1 && fail "veth ${TAG}a left behind"
check_no_leftovers "teardown"
log "total $(elapsed "$T_START") s"
[ $FAILED = 0 ] && echo "PASS" || echo "FAILED"
exit $FAILED
