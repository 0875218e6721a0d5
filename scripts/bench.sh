#!/usr/bin/env bash
# Runs every CPU benchmark in bench/ beside its reference (transformers, PyTorch eager, HF
# tokenizers, TRL, plain subprocesses, 1 vs 2 processes) with short settings, and writes the
# results into docs/benchmarks.md: date, machine, commit, the command, a summary table (the lines
# that carry each comparison) and every benchmark's full output. A few minutes on a small machine.
#
#   scripts/bench.sh                 build the bench targets, run all, write docs/benchmarks.md
#   scripts/bench.sh --no-build      use the binaries already in build/bin
#   scripts/bench.sh --only grpo_step,rollout      run a subset (names below); still rewrites the file
#   scripts/bench.sh --out FILE      write elsewhere
#
# Benchmarks print and never fail on a speed; a benchmark that errors is reported as FAILED in the
# table (and the script exits 1 at the end). kernels_bench needs a CUDA device and reports that it
# skipped otherwise. Numbers depend on machine load: read the ratios, and re-run before trusting one.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$GRPO_ROOT"

build=1
only=""
out="docs/benchmarks.md"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --only) only="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "scripts/bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

PY="$GRPO_VENV/bin/python"
BIN="$GRPO_BUILD_DIR/bin"
SMOL_TOK="$GRPO_DATA_DIR/smollm2/hf/tokenizer.json"
THREADS="$(nproc)"

# name | compared with | command | summary-line pattern (grep -E)
BENCHES=(
  "grpo_step|TRL GRPOTrainer (same model, prompts, rewards, lengths)|$PY bench/grpo_step_vs_trl.py --bin $BIN/bench_grpo_step_bench --steps 1 --warmup 1 --threads $THREADS|^(GRPO step|phase|rollout|reward|logprobs|update|total) "
  "rollout|transformers generate() (same weights, prompts, lengths)|$PY bench/rollout_vs_transformers.py --bin $BIN/bench_rollout_bench --batches 1,16,64 --new 64 --threads $THREADS|^batch "
  "model|PyTorch eager via transformers, forward+backward|$PY bench/model_vs_pytorch.py $GRPO_BUILD_DIR 2 128 2 $THREADS|^(dense|smollm|moe): "
  "tokenizer|HF tokenizers (Rust), single thread, SmolLM2 tokenizer.json|$PY bench/tokenizer_vs_hf.py $BIN/bench_tokenize_bench $SMOL_TOK|^(encode|decode) "
  "sandbox|plain python3 -c pass subprocesses|$BIN/bench_sandbox_throughput 20 3 2|^(plain|sandbox|ratio) "
  "reward|none (absolute rate)|$BIN/bench_reward_bench 1000|^(math_answer|format):"
  "dist|1 process vs 2 Gloo processes|$BIN/bench_dist_bench --steps 5|^ +(nproc|[0-9])|^step time"
  "shard|sharding none (1 process; DDP beyond), per-rank bytes and step time|$BIN/bench_shard_bench --steps 2|^(shard_bench|sharding|none|optimizer|full|\\()"
  "kernels|LibTorch composition on CUDA (skipped without a device)|$BIN/bench_kernels_bench|."
  "tool_rollout|the same scripted rollout with tools off and with cold starts (A/B in one process); print(1) through the python tool (bare start)|$BIN/bench_tool_rollout_bench 8 4 2 48 20 $THREADS 3 3|^(bare|tools|  per call|  ratio)"
  "bf16_cpu|float32 on the same CPU (trainer.bf16 off; SmolLM2-135M shape)|$PY bench/bf16_cpu.py --bin-dir $BIN --threads $THREADS --rounds 1|^(GEMM|batch|rollout peak|GRPO step|phase|rollout|reward|logprobs|update|total) "
)

selected() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

if [ "$build" = 1 ]; then
  targets=()
  for b in "${BENCHES[@]}"; do
    name="${b%%|*}"
    selected "$name" || continue
    case "$name" in
      tokenizer) targets+=(bench_tokenize_bench) ;;
      sandbox) targets+=(bench_sandbox_throughput) ;;
      bf16_cpu) targets+=(bench_bf16_cpu_bench bench_grpo_step_bench) ;;
      *) targets+=("bench_${name}_bench") ;;
    esac
  done
  cmake --build "$GRPO_BUILD_DIR" --target "${targets[@]}" || { echo "scripts/bench.sh: build failed" >&2; exit 1; }
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failed=0
rows=""
details=""
for b in "${BENCHES[@]}"; do
  IFS='|' read -r name ref cmd pattern <<<"$b"
  selected "$name" || continue
  echo "== $name: $cmd" >&2
  t0=$(date +%s)
  # shellcheck disable=SC2086  # the command is a word list
  $cmd >"$tmp/$name.out" 2>"$tmp/$name.err"
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  # Progress bars and warnings of the Python side stay out of the document.
  if [ $rc -ne 0 ]; then
    failed=1
    summary="FAILED (exit $rc): $(tail -n 3 "$tmp/$name.err" | tr '\n' ' ' | cut -c1-300)"
  else
    summary="$(grep -E "$pattern" "$tmp/$name.out" | grep -v '^{' | sed 's/|/\\|/g' | awk '{printf "`%s`<br>", $0}')"
    summary="${summary%<br>}"
  fi
  cat "$tmp/$name.out" >&2
  rows+="| \`$name\` | $ref | $summary | $secs |"$'\n'
  shown="${cmd//$GRPO_ROOT\//}"
  shown="${shown//$GRPO_VENV/\$GRPO_VENV}"
  shown="${shown//$GRPO_DATA_DIR/\$GRPO_DATA_DIR}"
  details+=$'\n'"### $name"$'\n\n'"\`\`\`"$'\n'"\$ $shown"$'\n'
  details+="$(grep -v '^{' "$tmp/$name.out")"
  [ $rc -ne 0 ] && details+=$'\n'"$(tail -n 20 "$tmp/$name.err")"
  details+=$'\n'"\`\`\`"$'\n'
done

machine="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
{
  echo "# Benchmarks"
  echo
  echo "Written by \`scripts/bench.sh\` (do not edit by hand; re-run it). Each benchmark runs beside its"
  echo "reference in the same run, with short settings (a few minutes in all); every bench's own usage"
  echo "is at the top of its file in \`bench/\`. Ratios are what to read: absolute numbers move with"
  echo "machine load."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $machine"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src include bench 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- command: \`scripts/bench.sh$( [ "$build" = 0 ] && echo ' --no-build')$( [ -n "$only" ] && echo " --only $only")\`"
  echo
  echo "| benchmark | compared with | result | seconds |"
  echo "|---|---|---|---|"
  printf '%s' "$rows"
  echo
  echo "## Full output"
  printf '%s' "$details"
} >"$out"
echo "wrote $out" >&2
exit $failed
