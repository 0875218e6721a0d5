#!/usr/bin/env bash
# GRPO on a real pretrained model, measured (docs/training.md, "SmolLM2 on word problems"):
# SmolLM2-135M-Instruct evaluated on the 300 held-out word problems (templates never trained on),
# trained with configs/smollm2-word-problems.yaml (cold-start SFT, then GRPO), and evaluated again
# with the same command: greedy accuracy, pass@k and maj@k from 8 samples per problem. Then the
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
"$BIN" eval "$RUN/stage-2-grpo/final" -n 8 --no-progress --out "$RUN/after.jsonl" >"$RUN/after.log" 2>&1
t3=$(date +%s)
echo "wall time: before eval $((t1 - t0)) s, training $((t2 - t1)) s, after eval $((t3 - t2)) s"
python3 - "$RUN" <<'PY'
import json, sys
run = sys.argv[1]
b, a = (json.load(open(f"{run}/{x}.summary.json")) for x in ("before", "after"))
print("| held-out, 300 problems | before (SmolLM2-135M-Instruct) | after (SFT + GRPO) | change |")
print("|---|---|---|---|")
for key in sorted(k for k in a if isinstance(a[k], (int, float)) and k in b):
    if key.startswith(("greedy_accuracy", "pass@", "maj@", "format", "mean_length", "truncat")):
        scale = 100 if not key.startswith("mean_length") else 1
        print(f"| {key} | {scale * b[key]:.1f} | {scale * a[key]:.1f} | {scale * (a[key] - b[key]):+.1f} |")
PY
echo "training curve: $RUN/stage-2-grpo/training.png"
