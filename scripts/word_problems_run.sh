#!/usr/bin/env bash
# GRPO on a real pretrained model, measured (docs/training.md, "SmolLM2 on word problems"):
# SmolLM2-135M-Instruct evaluated on the 300 held-out word problems (templates never trained on),
# trained with configs/smollm2-word-problems.yaml (cold-start SFT, then GRPO), and evaluated again
# with the same command, after the SFT stage and after GRPO: greedy accuracy, pass@k and maj@k from 8 samples per problem. Then the
# before/after table and the wall times; the training curve is the run's own plot,
# <OUTPUT_DIR>/stage-2-grpo/training.png (reward, accuracy, held-out evaluations per step).
# Finished steps are not redone (evaluations resume from their JSONL, training from --resume auto).
#   scripts/word_problems_run.sh [OUTPUT_DIR]   (after scripts/setup.sh --quickstart)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$GRPO_ROOT"
BIN="$GRPO_BUILD_DIR/bin/grpo"
CONFIG=configs/smollm2-word-problems.yaml
RUN="${1:-runs/smollm2-word-problems}"
mkdir -p "$RUN"
t0=$(date +%s)
"$BIN" eval "$CONFIG" -n 8 --no-progress --out "$RUN/before.jsonl" >"$RUN/before.log" 2>&1
t1=$(date +%s)
"$BIN" train "$CONFIG" trainer.output_dir="$RUN" --resume auto >"$RUN/train.log" 2>&1
t2=$(date +%s)
# The cold-start SFT checkpoint too, so the table separates what SFT did from what GRPO did.
"$BIN" eval "$RUN/stage-1-sft/final" -n 8 --no-progress --out "$RUN/sft.jsonl" >"$RUN/sft.log" 2>&1
"$BIN" eval "$RUN/stage-2-grpo/final" -n 8 --no-progress --out "$RUN/after.jsonl" >"$RUN/after.log" 2>&1
t3=$(date +%s)
echo "wall time: before eval $((t1 - t0)) s, training $((t2 - t1)) s, after evals $((t3 - t2)) s"
python3 - "$RUN" <<'PY'
import json, sys
run = sys.argv[1]
b, s, a = (json.load(open(f"{run}/{x}.summary.json")) for x in ("before", "sft", "after"))
print("| held-out, 300 problems | before (SmolLM2-135M-Instruct) | after SFT | after SFT + GRPO | GRPO's change |")
print("|---|---|---|---|---|")
for key in sorted(k for k in a if isinstance(a[k], (int, float)) and k in b and k in s):
    if key.startswith(("greedy_accuracy", "pass@", "maj@", "format", "mean_length", "truncat")):
        f = 100 if not key.startswith("mean_length") else 1
        print(f"| {key} | {f * b[key]:.1f} | {f * s[key]:.1f} | {f * a[key]:.1f} | {f * (a[key] - s[key]):+.1f} |")
PY
echo "training curve: $RUN/stage-2-grpo/training.png"
