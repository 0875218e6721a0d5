#!/usr/bin/env bash
# The GPU acceptance run (issue 15, docs/gpu.md): every GPU claim of the project checked by one
# script, prepared on a CPU machine and fired on a GPU machine in one command.
#
#   scripts/device_check.sh --prepare       HERE: copies the built binaries (CUDA kernels for sm_80
#                                           and sm_90a inside), stripped, and the Debian shared
#                                           libraries they need into .device/ (ignored; it travels
#                                           with the working tree), and prints the size that travels
#   OUT=dir scripts/device_check.sh         THERE (a GPU machine with python3 + torch, transformers):
#                                           steps 1-6 below, each under its own time limit; report in
#                                           $OUT/gpu_report.md, logs in $OUT/logs.tar.gz
#   scripts/device_check.sh --cpu-dry-run   HERE and in CI (ctest device_check_cpu_dry_run): the same
#                                           steps on this CPU with tiny shapes; CUDA-only parts skip
#                                           with a message; prints each step's time and the estimate
#                                           for the GPU machine
#
# Steps: 1 kernel tests + kernel benchmark; 2 model parity with transformers (float32, bf16);
# 3 grpo train configs/ci-smoke.yaml on the device with trainer.bf16=true, plain and
# kernels.fused_ops=true, then a run stopped by SIGTERM and resumed with --resume auto; 4 NCCL
# (a group of one, and the pipeline with distributed.backend=nccl under grpo launch); 5 throughput
# (rollout vs transformers generate(), GRPO step phases plain/fused/fp8 with peak GPU memory);
# 6 the report.
#
# Environment: OUT (report folder; default .device/report), GRPO_DEVICE_DIR (the prepared folder;
# default .device), GRPO_BUILD_DIR (where --prepare takes the binaries; default build),
# GRPO_DEVICE_PYTHON (python with torch + transformers; default python3 on the GPU machine, the
# tooling venv's on a dry run), GRPO_DEVICE_BUDGET_S (whole run; default 540 on a GPU, 600 dry),
# GRPO_DEVICE_WORK (scratch; default a fresh folder under /tmp, removed at the end).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV="${GRPO_DEVICE_DIR:-$ROOT/.device}"
MODE=gpu
case "${1:-}" in
  --prepare) MODE=prepare ;;
  --cpu-dry-run) MODE=dry ;;
  "") ;;
  -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--prepare | --cpu-dry-run]" >&2; exit 2 ;;
esac

# What travels: build-tree path -> name in $DEV/bin, and the ninja target that makes it.
BINARIES=(
  "bin/grpo:grpo:grpo_exe"
  "bin/grpo-sandbox-init:grpo-sandbox-init:grpo_sandbox_init"  # found beside grpo
  "bin/bench_kernels_bench:bench_kernels_bench:bench_kernels_bench"
  "bin/bench_grpo_step_bench:bench_grpo_step_bench:bench_grpo_step_bench"
  "tests/test_kernels:test_kernels:test_kernels"
  "tests/dist_worker:dist_worker:dist_worker"
  "tests/test_train:test_train:test_train"  # its CUDA tests (bf16 autocast, step metrics on the device)
  "tests/test_model:test_model:test_model"  # its CUDA tests (grouped MoE without host sync, FP8 linears applied)
)
# Shared libraries that the GPU machine provides itself (system C/C++ runtime; LibTorch, CUDA, NCCL
# and cuDNN from its torch wheel): never carried.
SKIP_LIBS='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libutil\.so|libstdc\+\+|libgcc_s|libgomp|libtorch|libc10|libcaffe2|libshm|libcuda|libcudart|libcublas|libcudnn|libcufft|libcufile|libcurand|libcusolver|libcusparse|libcupti|libnccl|libnvJitLink|libnvrtc|libnvToolsExt|libnvshmem|libnvperf)'
LIMIT_BYTES=$((64 * 1024 * 1024))

# ---------------------------------------------------------------------------------------------
# --prepare
# ---------------------------------------------------------------------------------------------
travel_bytes() {  # tracked + untracked-not-ignored files of the tree, plus the carried folder
  local tree carried
  tree=$(cd "$ROOT" && git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
  carried=$(du -sb "$DEV" 2>/dev/null | cut -f1)
  echo "$tree ${carried:-0}"
}

prepare() {
  local build="${GRPO_BUILD_DIR:-$ROOT/build}" missing=() spec src name target
  for spec in "${BINARIES[@]}"; do
    IFS=: read -r src name target <<<"$spec"
    [ -x "$build/$src" ] || missing+=("$target")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "[prepare] not built in $build: ${missing[*]}" >&2
    echo "[prepare] build them first, e.g. ninja -C $build ${missing[*]} (configured with GRPO_CUDA=ON and nvcc)" >&2
    return 1
  fi
  if ! grep -q "^GRPO_CUDA:BOOL=ON" "$build/CMakeCache.txt" 2>/dev/null || [ ! -f "$build/kernels/libgrpo_kernels_cuda.a" ]; then
    echo "[prepare] $build has no CUDA kernels (GRPO_CUDA off or nvcc missing): a GPU run would test the CPU paths only" >&2
    # The CI dry run on a machine without nvcc still checks the script (GRPO_DEVICE_REQUIRE_CUDA_BUILD=0).
    [ "${GRPO_DEVICE_REQUIRE_CUDA_BUILD:-1}" = 0 ] || return 1
  fi
  rm -rf "$DEV/bin" "$DEV/lib" "$DEV/debs" "$DEV/prefix" "$DEV/build" "$DEV/logs" "$DEV/report" "$DEV/MANIFEST"
  mkdir -p "$DEV/bin" "$DEV/lib"
  local libs=() b
  for spec in "${BINARIES[@]}"; do
    IFS=: read -r src name target <<<"$spec"
    cp "$build/$src" "$DEV/bin/$name"
    strip --strip-unneeded "$DEV/bin/$name"
    # RUNPATH (not RPATH): LD_LIBRARY_PATH set by the run wins over this machine's venv paths.
    if readelf -d "$DEV/bin/$name" | grep -q '(RPATH)'; then
      "${PREP_PY:-python3}" "$ROOT/scripts/elf_runpath.py" "$DEV/bin/$name" || return 1
    fi
    # Libraries the binary needs from this machine's system (not LibTorch/CUDA, not libc/libstdc++).
    while read -r soname path; do
      libs+=("$soname:$path")
    done < <(LD_LIBRARY_PATH= ldd "$build/$src" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' \
               | grep -vE "$SKIP_LIBS" | grep -v -e site-packages -e /usr/local/cuda)
  done
  local seen=" " l
  for l in "${libs[@]}"; do
    IFS=: read -r name src <<<"$l"
    case "$seen" in *" $name "*) continue ;; esac
    seen+="$name "
    cp -L "$src" "$DEV/lib/$name"
    chmod u+w "$DEV/lib/$name"
    strip --strip-unneeded "$DEV/lib/$name"
  done
  {
    echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- src include kernels 2>/dev/null || echo ' (+ uncommitted changes in src/include/kernels)')"
    echo "prepared: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
    echo "build: $build ($(grep -E '^CMAKE_BUILD_TYPE' "$build/CMakeCache.txt" | cut -d= -f2); CUDA architectures 80;90a)"
    echo "nvcc: $( (command -v nvcc >/dev/null && nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>/dev/null | grep -o 'release [0-9.]*')"
    echo "glibc here: $(ldd --version | head -1 | grep -o '[0-9.]*$')"
    # The newest symbol versions the carried files use: the GPU machine's glibc and libstdc++ must have them.
    echo "needs: $(cd "$DEV" && for f in bin/* lib/*; do objdump -T "$f" 2>/dev/null | grep -oE '(GLIBC|GLIBCXX|CXXABI)_[0-9.]+'; done \
      | sort -uV | awk -F_ '{v[$1] = $0} END {print v["GLIBC"], v["GLIBCXX"], v["CXXABI"]}')"
    (cd "$DEV" && ls -l bin lib | awk 'NF > 5 {print "  " $NF " " $5}')
  } >"$DEV/MANIFEST"
  local tree carried
  read -r tree carried <<<"$(travel_bytes)"
  printf '[prepare] %d binaries (%s), %d libraries (%s) in %s\n' "$(ls "$DEV/bin" | wc -l)" \
    "$(du -sh "$DEV/bin" | cut -f1)" "$(ls "$DEV/lib" | wc -l)" "$(du -sh "$DEV/lib" | cut -f1)" "$DEV"
  awk -v t="$tree" -v c="$carried" 'BEGIN {printf "[prepare] travels: tree %.1f MiB + carried %.1f MiB = %.1f MiB (limit 64 MiB)\n", t / 1048576, c / 1048576, (t + c) / 1048576}' 
  if [ $((tree + carried)) -gt $LIMIT_BYTES ]; then
    echo "[prepare] over the 64 MiB limit" >&2
    return 1
  fi
  echo "[prepare] fire with: run(command='scripts/device_check.sh', carry=['${DEV#$ROOT/}'], timeout_s=600)"
}

if [ "$MODE" = prepare ]; then
  # The venv's python is there when set-up ran; plain python3 otherwise (elf_runpath.py needs no packages).
  if [ -f "$ROOT/scripts/lib/env.sh" ]; then source "$ROOT/scripts/lib/env.sh" 2>/dev/null || true; fi
  PREP_PY="${GRPO_VENV:+$GRPO_VENV/bin/python}"
  [ -x "${PREP_PY:-}" ] || PREP_PY=python3
  prepare
  exit $?
fi

# ---------------------------------------------------------------------------------------------
# The run (GPU machine, or --cpu-dry-run here)
# ---------------------------------------------------------------------------------------------
# Times in integer milliseconds (no bc on a bare machine).
now() { date +%s%3N; }
since() { echo $(( $(now) - $1 )); }          # ms since a now() value
secs() { printf '%d.%d' $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }  # ms -> "12.3"
T0=$(now)
REPORT_DIR="${OUT:-$DEV/report}"
mkdir -p "$REPORT_DIR"
WORK="${GRPO_DEVICE_WORK:-$(mktemp -d /tmp/grpo-device-check.XXXXXX)}"
[ -n "${GRPO_DEVICE_WORK:-}" ] || trap 'rm -rf "$WORK"' EXIT
LOGS="$WORK/logs"
mkdir -p "$LOGS"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
BIN="$WORK/bin"  # wrappers of $DEV/bin (setup_env)
if [ "$MODE" = dry ]; then
  DEVICE=cpu
  REPORT="$REPORT_DIR/cpu_dry_run_report.md"
  BUDGET="${GRPO_DEVICE_BUDGET_S:-600}"
  if [ -z "${GRPO_DEVICE_PYTHON:-}" ]; then source "$ROOT/scripts/lib/env.sh"; GRPO_DEVICE_PYTHON="$GRPO_VENV/bin/python"; fi
else
  DEVICE=cuda
  REPORT="$REPORT_DIR/gpu_report.md"
  BUDGET="${GRPO_DEVICE_BUDGET_S:-540}"
fi
PY="${GRPO_DEVICE_PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1
log() { printf '[device_check +%6ss] %s\n' "$(secs "$(since "$T0")")" "$*"; }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; log "step $1: $2: $3 ${4:+($4)}"; }
# RESULT<TAB>name<TAB>status<TAB>figure lines that a Python step printed -> records; 1 when none.
record_results() {
  local n=0 tag name status fig
  while IFS=$'\t' read -r tag name status fig; do
    record "$1" "$name" "$status" "$fig"; n=$((n + 1))
  done < <(grep '^RESULT' "$2")
  [ "$n" -gt 0 ]
}

# Commands inside a step run under the step's deadline (STEP_END, epoch ms): one hang cannot
# eat the whole budget.
t() {
  local left=$(( (STEP_END - $(now)) / 1000 ))
  [ "$left" -gt 0 ] || { echo "[device_check] step deadline passed before: $*"; return 124; }
  timeout -k 10 "$left" "$@"
}

# ---- environment: LibTorch, CUDA and NCCL from the machine's torch; Debian libraries from $DEV/lib.
# Only our binaries get that library path: each is started through a wrapper in $WORK/bin (exec, so
# the pid is the binary's), and Python keeps the plain environment.
setup_env() {
  [ -x "$DEV/bin/grpo" ] || { echo "no $DEV/bin/grpo: run 'scripts/device_check.sh --prepare' on the CPU machine first and carry ${DEV#$ROOT/}" >&2; return 2; }
  local torch_lib site nv libpath
  torch_lib=$("$PY" -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))') || {
    echo "$PY has no torch: set GRPO_DEVICE_PYTHON" >&2; return 2; }
  site=$(dirname "$(dirname "$torch_lib")")
  nv=$(ls -d "$site"/nvidia/*/lib 2>/dev/null | tr '\n' ':')
  libpath="$DEV/lib:$torch_lib:${nv}${LD_LIBRARY_PATH:-}"
  echo "library path of the binaries: $libpath"
  export GRPO_SANDBOX_INIT="$DEV/bin/grpo-sandbox-init"
  mkdir -p "$BIN"
  local b bad=0
  for b in "$DEV"/bin/*; do
    if LD_LIBRARY_PATH="$libpath" ldd "$b" 2>&1 | grep -qE "not found"; then
      echo "$(basename "$b") does not load here:"; LD_LIBRARY_PATH="$libpath" ldd "$b" 2>&1 | grep -E "not found"; bad=1
    fi
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$libpath" "$b" >"$BIN/$(basename "$b")"
    chmod +x "$BIN/$(basename "$b")"
  done
  return $bad
}

# ---- steps --------------------------------------------------------------------------------------
step1_kernels() {
  local rc log="$LOGS/1-test_kernels.log"
  t "$BIN/test_kernels" --gtest_color=no >"$log" 2>&1; rc=$?
  local ok sk fail
  ok=$(grep -cE '^\[ +OK +\] ' "$log"); sk=$(grep -cE '^\[ +SKIPPED +\] ' "$log"); fail=$(grep -cE '^\[ +FAILED +\] [A-Za-z0-9_/.]+ \(' "$log")
  local fig="$ok passed, $sk skipped, $fail failed"
  [ "$DEVICE" = cpu ] && fig+=" (CUDA tests skip on CPU; CPU references run)"
  if [ "$rc" -eq 0 ]; then record 1 "kernel tests (test_kernels)" PASS "$fig"; else record 1 "kernel tests (test_kernels)" FAIL "$fig, exit $rc"; fi
  grep -E '^\[ +FAILED +\] ' "$log" | head -20
  t "$BIN/bench_kernels_bench" >"$LOGS/1-bench_kernels.log" 2>&1; rc=$?
  if [ "$DEVICE" = cpu ]; then
    if [ "$rc" -eq 0 ]; then record 1 "kernel benchmark" SKIP "CUDA only: the benchmark ran and exited 0 without a device"
    else record 1 "kernel benchmark" FAIL "exit $rc without a device"; fi
  elif [ "$rc" -eq 0 ]; then
    record 1 "kernel benchmark" PASS "table in the report's appendix"
  else
    record 1 "kernel benchmark" FAIL "exit $rc"
  fi
  cat "$LOGS/1-bench_kernels.log" | tail -40
  # The CUDA tests outside kernels/: bf16 autocast log-probs vs float32, step metrics fetched from the
  # device in one copy. (Distributed.NcclGroupOfOneOnAGpu is step 4's self-test.)
  log="$LOGS/1-test_train_cuda.log"
  t "$BIN/test_train" --gtest_color=no --gtest_filter='Bf16Autocast.*:StepMetrics.FetchIsOneCopyAndNoItemPerValue' >"$log" 2>&1; rc=$?
  ok=$(grep -cE '^\[ +OK +\] ' "$log"); sk=$(grep -cE '^\[ +SKIPPED +\] ' "$log")
  fail=$(grep -cE '^\[ +FAILED +\] [A-Za-z0-9_/.]+ \(' "$log")
  fig="$ok passed, $sk skipped, $fail failed"
  [ "$DEVICE" = cpu ] && fig+=" (the CUDA one skips on CPU)"
  if [ "$rc" -eq 0 ] && [ "$ok" -gt 0 ]; then record 1 "CUDA tests of test_train (bf16 autocast, step metrics)" PASS "$fig"
  else record 1 "CUDA tests of test_train (bf16 autocast, step metrics)" FAIL "$fig, exit $rc"; fi
  grep -E '^\[ +FAILED +\] ' "$log" | head -10
  # The CUDA tests of the applied model (issue 14): grouped MoE equal to the loop and free of host
  # synchronisation (sync debug mode = error), kernels.fp8 dispatching every decoder linear to
  # grpo::fp8_linear on sm_90 (refused before it), with their CPU halves.
  log="$LOGS/1-test_model_cuda.log"
  t "$BIN/test_model" --gtest_color=no --gtest_filter='MoeDispatch.*:MoeDispatchCuda.*:Fp8Apply.*:Fp8ApplyCuda.*' >"$log" 2>&1; rc=$?
  # Per-test lines end in "(N ms)"; gtest's closing summary repeats the names without it.
  ok=$(grep -cE '^\[ +OK +\] ' "$log"); sk=$(grep -cE '^\[ +SKIPPED +\] [A-Za-z0-9_/.]+ \(' "$log")
  fail=$(grep -cE '^\[ +FAILED +\] [A-Za-z0-9_/.]+ \(' "$log")
  fig="$ok passed, $sk skipped, $fail failed"
  [ "$DEVICE" = cpu ] && fig+=" (the CUDA ones skip on CPU)"
  [ "$sk" -gt 0 ] && fig+="; skipped: $(grep -E '^\[ +SKIPPED +\] [A-Za-z0-9_/.]+ \(' "$log" | awk '{print $4}' | tr '\n' ' ')"
  if [ "$rc" -eq 0 ] && [ "$ok" -gt 0 ]; then record 1 "CUDA tests of test_model (grouped MoE, FP8 applied)" PASS "$fig"
  else record 1 "CUDA tests of test_model (grouped MoE, FP8 applied)" FAIL "$fig, exit $rc"; fi
  grep -E '^\[ +FAILED +\] ' "$log" | head -10
}

step2_parity() {
  local dtypes=float32,bfloat16 shape=()
  if [ "$DEVICE" = cpu ]; then
    dtypes=float32
    shape=(--vocab 512 --hidden 64 --layers 2 --prompts 2 --prompt-len 8 --G 2 --new 8 --threads 2)
  fi
  local log="$LOGS/2-parity.log" rc
  t "$PY" "$ROOT/scripts/device_parity.py" --grpo "$BIN/grpo" --device "$DEVICE" --dtypes "$dtypes" \
    --work "$WORK/parity" "${shape[@]}" >"$log" 2>&1; rc=$?
  grep -v -e '^{' -e '^RESULT' "$log" | tail -20
  record_results 2 "$log" || record 2 "model parity vs transformers" FAIL "no result (exit $rc; see 2-parity.log)"
  # Exit 1 is a case over its bound (recorded above); anything else is a crash or the step's limit (124).
  [ "$rc" -le 1 ] || record 2 "model parity script" FAIL "exit $rc before every case ran (124: the step's time limit)"
  [ "$DEVICE" = cpu ] && record 2 "model parity vs transformers on cpu, bfloat16" SKIP "bf16 parity runs on CUDA only"
}

# The CI smoke config as it is (SFT 100 steps, GRPO 3; about 10 s on a CPU core), also on the dry run.
SMOKE_CFG="$ROOT/configs/ci-smoke.yaml"
REWARD_OVERRIDE=()
# The code reward needs the sandbox (user namespaces, seccomp). Where it cannot run, the format
# reward alone keeps the GRPO stage running, and the report says so.
probe_sandbox() {
  echo 'print("sandbox-ok", 6 * 7)' >"$WORK/probe.py"
  local out
  out=$(t "$BIN/grpo" sandbox run "$WORK/probe.py" 2>&1)
  echo "$out" >"$LOGS/3-sandbox-probe.log"
  if echo "$out" | grep -q 'sandbox-ok 42'; then
    SANDBOX_NOTE="code reward through the sandbox"
  else
    REWARD_OVERRIDE=("reward.functions=[{name: format, weight: 1.0}]")
    SANDBOX_NOTE="sandbox unusable here ($(echo "$out" | tail -1 | cut -c1-160)): format reward only"
  fi
}

smoke_check() {  # dir expected_grpo_steps -> prints a figure, returns 0 when the run is complete
  "$PY" - "$1" "$2" <<'EOF'
import json, math, os, sys
d, want = sys.argv[1], int(sys.argv[2])
def rows(p):
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []
sft, grpo = rows(os.path.join(d, "stage-1-sft", "metrics.jsonl")), rows(os.path.join(d, "stage-2-grpo", "metrics.jsonl"))
final = os.path.exists(os.path.join(d, "stage-2-grpo", "final", "model.safetensors"))
finite = all(isinstance(r.get("loss"), (int, float)) and math.isfinite(r["loss"]) for r in sft + grpo)
ok = final and finite and len(grpo) == want and len(sft) > 0
fig = "SFT loss %s -> %s over %d steps; GRPO %d/%d steps, reward %s, last loss %s" % (
    "%.3f" % sft[0]["loss"] if sft else "-", "%.3f" % sft[-1]["loss"] if sft else "-", len(sft), len(grpo), want,
    "%.3f" % grpo[-1].get("reward", float("nan")) if grpo else "-", "%.4g" % grpo[-1]["loss"] if grpo else "-")
print(fig + ("" if ok else " (incomplete: final weights %s, finite losses %s)" % (final, finite)))
sys.exit(0 if ok else 1)
EOF
}

step3_train() {
  probe_sandbox
  local grpo_steps=3
  local variant
  for variant in plain fused; do
    local d="$WORK/smoke-$variant" extra=() rc s0 fig
    [ "$variant" = fused ] && extra=(kernels.fused_ops=true)
    s0=$(now)
    t "$BIN/grpo" train "$SMOKE_CFG" trainer.output_dir="$d" tokenizer.path="$d/tokenizer.model" \
      model.device="$DEVICE" trainer.bf16=true "${REWARD_OVERRIDE[@]}" "${extra[@]}" \
      >"$LOGS/3-train-$variant.log" 2>&1; rc=$?
    local ck
    fig=$(smoke_check "$d" "$grpo_steps"); ck=$?
    if [ "$rc" -eq 0 ] && [ "$ck" -eq 0 ]; then
      record 3 "ci-smoke SFT+GRPO on $DEVICE, bf16, $variant" PASS "$fig; $(secs "$(since "$s0")") s; $SANDBOX_NOTE"
    else
      record 3 "ci-smoke SFT+GRPO on $DEVICE, bf16, $variant" FAIL "exit $rc; $fig"
      tail -5 "$LOGS/3-train-$variant.log"
    fi
  done
  # kernels.fused_ops: the first SFT step's loss (same weights, same batch, a forward before any
  # update, so CUDA's non-deterministic backward reductions cannot enter) equal to plain's to the last
  # digit means the switch changed nothing (its wiring into the model is another issue's).
  local lp lf
  lp=$(head -1 "$WORK/smoke-plain/stage-1-sft/metrics.jsonl" 2>/dev/null | grep -o '"loss":[^,}]*' | cut -d: -f2)
  lf=$(head -1 "$WORK/smoke-fused/stage-1-sft/metrics.jsonl" 2>/dev/null | grep -o '"loss":[^,}]*' | cut -d: -f2)
  if [ -z "$lp" ] || [ -z "$lf" ]; then
    FUSED_NOTE="fused vs plain: not compared (a run is missing)"
  elif [ "$lp" = "$lf" ]; then
    FUSED_NOTE="fused == plain: the same first SFT loss to the last digit ($lp): kernels.fused_ops is not wired into the model yet"
  else
    FUSED_NOTE="fused differs from plain: first SFT loss $lf vs $lp (kernels.fused_ops changes the computation)"
  fi
  log "$FUSED_NOTE"

  # Stopped by SIGTERM once a checkpoint after the first exists (the trainer saves and exits), then
  # --resume auto.
  local base="$WORK/smoke-plain" cut="$WORK/smoke-resume" steps=6
  local common=(trainer.output_dir="$cut" tokenizer.path="$base/tokenizer.model" data.train_file="$base/data/train.jsonl"
                data.eval_file="$base/data/eval.jsonl" task.name=none model.device="$DEVICE" trainer.bf16=true
                model.path="$base/stage-1-sft/final" "stages=[]" trainer.max_steps=$steps checkpoint.save_steps=1
                "${REWARD_OVERRIDE[@]}")
  if [ ! -f "$base/stage-1-sft/final/model.safetensors" ]; then
    record 3 "interrupted run resumed with --resume auto" FAIL "no SFT weights from the plain run to start from"
    return
  fi
  timeout -k 10 $(( (STEP_END - $(now)) / 1000 )) "$BIN/grpo" train "$SMOKE_CFG" "${common[@]}" >"$LOGS/3-resume-cut.log" 2>&1 &
  local pid=$!
  # Any complete checkpoint past the first (save_total_limit prunes old ones, so not checkpoint 2 itself).
  while ! ls -d "$cut"/checkpoints/checkpoint-*/COMPLETE 2>/dev/null | grep -qv checkpoint-00000001/ \
        && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
  done
  kill -TERM "$pid" 2>/dev/null  # timeout(1) forwards it to the trainer
  wait "$pid"; local cut_rc=$?
  local done_before
  done_before=$(wc -l <"$cut/metrics.jsonl" 2>/dev/null || echo 0)
  if [ -f "$cut/stage.json" ]; then
    local note="the run finished before SIGTERM landed"
  else
    local note="SIGTERM after step $done_before (exit $cut_rc)"
  fi
  local rc
  t "$BIN/grpo" train "$SMOKE_CFG" "${common[@]}" --resume auto >"$LOGS/3-resume.log" 2>&1; rc=$?
  local resumed lines
  resumed=$(grep -o 'resumed from [^ ]* at step [0-9]*' "$LOGS/3-resume.log" | head -1 | sed 's|.*/||')
  lines=$(wc -l <"$cut/metrics.jsonl" 2>/dev/null || echo 0)
  if [ "$rc" -eq 0 ] && [ "$lines" -eq "$steps" ] && { [ -n "$resumed" ] || [ -f "$cut/stage.json" ]; }; then
    record 3 "interrupted run resumed with --resume auto" PASS "$note; resumed ${resumed:-(nothing to resume)}; $lines/$steps steps"
  else
    record 3 "interrupted run resumed with --resume auto" FAIL "$note; resume exit $rc, $lines/$steps steps"
    tail -5 "$LOGS/3-resume.log"
  fi
}

step4_nccl() {
  local base="$WORK/smoke-plain" rc
  if [ "$DEVICE" = cpu ]; then
    record 4 "NCCL group of one (dist_worker nccl-selftest)" SKIP "NCCL needs CUDA"
  else
    t "$BIN/dist_worker" nccl-selftest >"$LOGS/4-nccl-selftest.log" 2>&1; rc=$?
    if [ "$rc" -eq 0 ] && grep -q "nccl-selftest: ok" "$LOGS/4-nccl-selftest.log"; then
      record 4 "NCCL group of one (dist_worker nccl-selftest)" PASS "$(grep -o 'nccl-selftest: ok.*' "$LOGS/4-nccl-selftest.log")"
    else
      record 4 "NCCL group of one (dist_worker nccl-selftest)" FAIL "exit $rc: $(tail -1 "$LOGS/4-nccl-selftest.log" | cut -c1-200)"
    fi
  fi
  # The pipeline under grpo launch --nproc 1 with the backend named (gloo on the dry run).
  local backend=nccl
  [ "$DEVICE" = cpu ] && backend=gloo
  if [ ! -f "$base/stage-1-sft/final/model.safetensors" ]; then
    record 4 "grpo launch --nproc 1, distributed.backend=$backend" FAIL "no SFT weights from step 3"; return
  fi
  local d="$WORK/smoke-launch"
  t "$BIN/grpo" launch --nproc 1 -- train "$SMOKE_CFG" trainer.output_dir="$d" tokenizer.path="$base/tokenizer.model" \
    data.train_file="$base/data/train.jsonl" data.eval_file="$base/data/eval.jsonl" task.name=none \
    model.device="$DEVICE" trainer.bf16=true model.path="$base/stage-1-sft/final" "stages=[]" trainer.max_steps=2 \
    distributed.backend=$backend "${REWARD_OVERRIDE[@]}" >"$LOGS/4-launch.log" 2>&1; rc=$?
  local lines
  lines=$(wc -l <"$d/metrics.jsonl" 2>/dev/null || echo 0)
  if [ "$rc" -eq 0 ] && [ "$lines" -eq 2 ]; then
    record 4 "grpo launch --nproc 1, distributed.backend=$backend" PASS "2/2 GRPO steps (world size 1: collectives are identities, no group is made)"
  else
    record 4 "grpo launch --nproc 1, distributed.backend=$backend" FAIL "exit $rc, $lines/2 steps"
    tail -5 "$LOGS/4-launch.log"
  fi
}

step5_throughput() {
  local shape=() rc log="$LOGS/5-throughput.log"
  [ "$DEVICE" = cpu ] && shape=(--tiny)
  t "$PY" "$ROOT/bench/device_throughput.py" --grpo "$BIN/grpo" --step-bench "$BIN/bench_grpo_step_bench" \
    --device "$DEVICE" --work "$WORK/throughput" --fused-note "$FUSED_NOTE" "${shape[@]}" >"$log" 2>&1; rc=$?
  grep -v -e '^{' -e '^RESULT' "$log" | tail -30
  record_results 5 "$log" || record 5 "throughput" FAIL "no result (exit $rc; see 5-throughput.log)"
  [ "$rc" -eq 0 ] || record 5 "throughput script" FAIL "exit $rc before every part ran (124: the step's time limit)"
}

# ---- the report ---------------------------------------------------------------------------------
device_info() {
  if [ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader 2>/dev/null | head -1
  else
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores (dry run, no GPU)"
  fi
}

write_report() {
  local pass fail skip
  pass=$(awk -F'\t' '$3 == "PASS"' "$RESULTS" | wc -l); fail=$(awk -F'\t' '$3 == "FAIL"' "$RESULTS" | wc -l)
  skip=$(awk -F'\t' '$3 == "SKIP"' "$RESULTS" | wc -l)
  {
    if [ "$DEVICE" = cuda ]; then echo "# GPU acceptance run"; else echo "# GPU acceptance run: CPU dry run (no GPU)"; fi
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| date | $(date -u +%Y-%m-%dT%H:%M:%SZ) |"
    echo "| device | $DEVICE_INFO |"
    [ "$DEVICE" = cuda ] && echo "| driver, CUDA (torch) | $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1), $TORCH_INFO |"
    [ "$DEVICE" = cpu ] && echo "| torch | $TORCH_INFO |"
    echo "| commit | $COMMIT |"
    echo "| binaries | $(grep '^prepared:' "$DEV/MANIFEST" 2>/dev/null | cut -d' ' -f2-) ($(grep '^commit:' "$DEV/MANIFEST" 2>/dev/null | cut -d' ' -f2-)) |"
    echo "| wall time | $(secs "$(since "$T0")") s of a $BUDGET s budget |"
    echo "| result | $pass passed, $fail failed, $skip skipped |"
    echo
    echo "| step | check | result | figure |"
    echo "|---|---|---|---|"
    awk -F'\t' '{gsub(/\|/, "\\|", $4); printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$RESULTS"
    echo
    [ -n "${FUSED_NOTE:-}" ] && echo "Note: $FUSED_NOTE." && echo
    [ -n "${SANDBOX_NOTE:-}" ] && echo "Reward in step 3/4: $SANDBOX_NOTE." && echo
    if [ -s "$WORK/step_times" ]; then
      echo "## Step times"; echo; echo "| step | seconds | estimate on a GPU machine | limit |"; echo "|---|---|---|---|"
      awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$WORK/step_times"; echo
    fi
    if [ -s "$LOGS/1-bench_kernels.log" ] && [ "$DEVICE" = cuda ]; then
      echo "## Kernel benchmark (bench_kernels_bench)"; echo; echo '```'; tail -40 "$LOGS/1-bench_kernels.log"; echo '```'; echo
    fi
    if [ -s "$LOGS/2-parity.log" ]; then
      echo "## Model parity (scripts/device_parity.py)"; echo; echo '```'; grep -v -e '^{' -e '^RESULT' "$LOGS/2-parity.log" | tail -12; echo '```'; echo
    fi
    if [ -s "$LOGS/5-throughput.log" ]; then
      echo "## Throughput (bench/device_throughput.py)"; echo; echo '```'; grep -v -e '^{' -e '^RESULT' "$LOGS/5-throughput.log" | tail -16; echo '```'; echo
    fi
    echo "Logs of every step: logs.tar.gz beside this report."
  } >"$REPORT"
  tar -czf "$REPORT_DIR/logs.tar.gz" -C "$WORK" logs results.tsv 2>/dev/null
}

# Estimated seconds on the GPU machine (one H100/H200, 16 cores), by step; to be replaced by the
# first real run's figures. Reasoning: CUDA context + cuBLAS init ~3-5 s per process; step 1 runs
# the kernel tests and a benchmark of ~40 timed cases; step 2 makes 3 small models and starts 6
# grpo + 1 python process; step 3 is two ci-smoke runs (SFT 100 steps + GRPO 3: 9 s on one CPU
# core, launch-bound on a GPU) and a 6-step GRPO run stopped and resumed; step 5 writes a 0.5B model and decodes 2 x 256 tokens at batch 64 and 256 on both
# sides, then 3 x 3 GRPO steps of 64 completions.
declare -A EST=([0]=15 [1]=75 [2]=60 [3]=90 [4]=25 [5]=180 [6]=2)
declare -A CAP=([0]=60 [1]=150 [2]=120 [3]=200 [4]=90 [5]=240 [6]=30)

run_step() {  # id title function
  local id=$1 title=$2 fn=$3 left cap start took
  left=$(( (T0 + BUDGET * 1000 - $(now)) / 1000 ))
  cap=${CAP[$id]}
  [ "$MODE" = dry ] && cap=$((cap * 2))  # two slow cores here
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -lt 5 ]; then
    record "$id" "$title" FAIL "not run: the run's budget of $BUDGET s was spent"
    return
  fi
  log "=== step $id: $title (limit ${cap} s)"
  start=$(now)
  STEP_END=$(( start + cap * 1000 ))
  "$fn"
  took=$(secs "$(since "$start")")
  printf '%s\t%s\t%s\t%s\n' "$id $title" "$took" "${EST[$id]}" "$cap" >>"$WORK/step_times"
  log "step $id took $took s (estimated on the GPU machine: ${EST[$id]} s)"
  write_report
}

# The tree travels without .git: the commit then comes from the MANIFEST that --prepare wrote.
if COMMIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null); then
  git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT+=" (+ uncommitted changes)"
else
  COMMIT="$(grep '^commit:' "$DEV/MANIFEST" 2>/dev/null | cut -d' ' -f2- | cut -c1-80) (from .device/MANIFEST)"
fi
DEVICE_INFO="$(device_info)"
log "mode $MODE, device: $DEVICE_INFO, commit $COMMIT, budget $BUDGET s, work $WORK"
STEP_END=$(( $(now) + CAP[0] * 1000 ))
if ! setup_env >"$LOGS/0-setup.log" 2>&1; then
  cat "$LOGS/0-setup.log"
  record 0 "binaries load (ldd)" FAIL "$(tail -3 "$LOGS/0-setup.log" | tr '\n' ' ' | cut -c1-300)"
  TORCH_INFO="-"
  write_report
  exit 1
fi
TORCH_INFO="$("$PY" -c 'import torch, transformers; print("torch", torch.__version__, "CUDA", torch.version.cuda, "transformers", transformers.__version__)' 2>&1 | tail -1)"
record 0 "binaries load (ldd)" PASS "$(ls "$DEV/bin" | wc -l) binaries, $(ls "$DEV/lib" | wc -l) carried libraries; $TORCH_INFO"
if [ "$DEVICE" = cuda ] && ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  record 0 "CUDA device visible to torch" FAIL "torch.cuda.is_available() is false: every step below would test the CPU"
  write_report
  exit 1
fi
FUSED_NOTE=""
SANDBOX_NOTE=""
run_step 1 "kernel tests and benchmark" step1_kernels
run_step 2 "model parity with transformers" step2_parity
run_step 3 "ci-smoke training, fused, resume" step3_train
run_step 4 "NCCL" step4_nccl
run_step 5 "throughput" step5_throughput
write_report
log "report: $REPORT"
echo
printf '  %-44s %9s %12s\n' step "here (s)" "GPU est. (s)"
awk -F'\t' '{printf "  %-44s %9s %12s\n", $1, $2, $3}' "$WORK/step_times"
est=0; for i in "${!EST[@]}"; do est=$((est + EST[$i])); done
log "total $(secs "$(since "$T0")") s here; estimated on the GPU machine: ${est} s (target: under 480 s from a cold machine)"
echo
awk -F'\t' '{printf "  step %s  %-4s  %s: %s\n", $1, $3, $2, $4}' "$RESULTS"
if awk -F'\t' '$3 == "FAIL"' "$RESULTS" | grep -q .; then exit 1; fi
exit 0
