#!/usr/bin/env bash
# Multi-node data parallel tested for real (issue 24): two "nodes" as Linux network namespaces
# joined by a veth pair, private test addresses inside the namespaces only (10.213.0.0/24; nothing
# is routed anywhere else), `torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d
# --no-python grpo train` in each, over Gloo. Then the faults a cluster shows.
#
# Usage: multinode.sh GRPO_BIN TORCHRUN PYTHON [CASE...]   (no CASE: all of them)
# Exit 0 all passed, 1 a failure, 77 skipped (namespaces cannot be created: not root, no iproute2,
# no CAP_NET_ADMIN), which CTest reports as skipped (SKIP_RETURN_CODE).
# Every exit path tears down: the namespaces' processes are SIGKILLed (by pid, from `ip netns
# pids`), the namespaces deleted, and the test then checks that none is left.
set -u
BIN=$(readlink -f "$1"); TORCHRUN=$2; PY=$3; shift 3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CFG=$HERE/../e2e_dist/dist-parity.yaml
TAG=gmn$$                       # unique per run: namespaces gmn<pid>-0/1, veths gmn<pid>a/b
NS0=$TAG-0 NS1=$TAG-1
IP0=10.213.0.1 IP1=10.213.0.2
TMP=$(mktemp -d /tmp/grpo_e2e_multinode.XXXXXX)
FAILED=0
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
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "$TMP" && left+=" pid ${p#/proc/}"
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
}

if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
  echo "SKIP: multi-node namespace tests need root and iproute2 (ip); uid=$(id -u)"; trap - EXIT; rm -rf "$TMP"; exit 77
fi
if ! make_nodes 2>"$TMP/ns.err"; then
  echo "SKIP: cannot create network namespaces / veth pairs here: $(cat "$TMP/ns.err")"; exit 77
fi

# --- running grpo on a node ----------------------------------------------------------------------
PORT=29611
# start_node N OUT EXTRA_TORCHRUN... -- GRPO_ARGS...: torchrun in namespace N (background, its pid in PID), logs in $OUT.node$N.*
# --local-addr: the address the other node reaches this one at (torchrun's default is the host
# name, which every namespace shares and which resolves to no address of the veth).
start_node() {
  local n=$1 out=$2; shift 2
  local ns=$NS0 ifn=${TAG}a host=1 addr=$IP0; [ "$n" = 1 ] && { ns=$NS1; ifn=${TAG}b; host=0; addr=$IP1; }
  local tr_args=() ; while [ "$1" != "--" ]; do tr_args+=("$1"); shift; done; shift
  ip netns exec "$ns" env GLOO_SOCKET_IFNAME="${IFN_OVERRIDE:-$ifn}" OMP_NUM_THREADS=1 \
    "$TORCHRUN" --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d \
    --rdzv-endpoint "${RDZV:-$IP0:$PORT}" --rdzv-conf "is_host=$host,join_timeout=${JOIN_TIMEOUT:-60}" \
    --local-addr "$addr" --max-restarts 0 "${tr_args[@]}" --no-python "$BIN" train "$CFG" trainer.output_dir="$out" "$@" \
    >"$out.node$n.out" 2>"$out.node$n.err" &
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
COMMON=(trainer.per_device_train_batch_size=4 stages.1.max_steps=8 distributed.timeout_s=$TIMEOUT_S)
inputs() { echo "tokenizer.path=$TMP/ref/tokenizer.model data.train_file=$TMP/ref/data/train.jsonl data.eval_file=$TMP/ref/data/eval.jsonl"; }
run_pair() {  # run_pair OUT BOUND_S [GRPO_ARGS...]: both nodes, waits; sets RC0 RC1 S0 S1
  local out=$1 bound=$2; shift 2
  local p0 p1 t0; t0=$(now)
  start_node 0 "$out" -- "${COMMON[@]}" $(inputs) "$@"; p0=$PID
  start_node 1 "$out" -- "${COMMON[@]}" $(inputs) "$@"; p1=$PID
  wait_exit "$p0" "$bound" "$t0"; RC0=$W_RC S0=$W_S
  wait_exit "$p1" "$bound" "$t0"; RC1=$W_RC S1=$W_S
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
  run_pair "$TMP/two" 120
  log "parity: 2-node run rc=$RC0/$RC1 in $S0/$S1 s"
  [ "$RC0" = 0 ] && [ "$RC1" = 0 ] || { fail "parity: 2-node run rc $RC0/$RC1: $(tail -n 5 "$TMP/two.node0.err" "$TMP/two.node1.err")"; return; }
  # The ranks really were on two hosts: rank 1 talked Gloo from node 1's address.
  assert_grep "parity" "rank 1/2 .*store $IP0:" "$TMP/two.node1.err"
  compare "parity (2 nodes vs 1 node x 2 processes, the bound of docs/distributed.md)" "$TMP/ref" "$TMP/two" bound
}

CASES=${*:-parity}
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
