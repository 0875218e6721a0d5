"""Compares two grpo run directories (tests/e2e_multinode/multinode.sh).

compare_runs.py A B MODE
  MODE exact: every logged metric of both stages (but time/* and tokens_per_second*) equal, and
              the final weights of both stages bit-identical;
  MODE bound: the bound docs/distributed.md states for data parallel parity: per step the reward,
              length and truncation metrics within 1e-9, the loss within 1e-5, the final weights
              within 1e-5 (max |a - b| / max |a|).
Prints the largest differences seen; exit 1 with the first violation named.
"""
import json
import sys

import torch
from safetensors.torch import load_file


def metrics(run, stage):
    with open(f"{run}/{stage}/metrics.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def weights_rel_diff(a_path, b_path):
    a, b = load_file(a_path), load_file(b_path)
    if list(a) != list(b):
        return float("inf")
    num = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    den = max(float(a[k].double().abs().max()) for k in a)
    return num / den


def compared(key):
    return not key.startswith("time/") and not key.startswith("tokens_per_second")


BOUND_KEYS = {k: 1e-9 for k in ("reward", "rewards/length/mean", "completions/length/mean", "completions/length/min",
                                "completions/length/max", "completions/truncated_ratio", "tokens_per_generation")}
BOUND_KEYS["loss"] = 1e-5


def main():
    a, b, mode = sys.argv[1:4]
    errors, worst_metric, worst_w = [], 0.0, 0.0
    for stage in ("stage-1-sft", "stage-2-grpo"):
        ma, mb = metrics(a, stage), metrics(b, stage)
        if len(ma) != len(mb) or not ma:
            errors.append(f"{stage}: {len(ma)} vs {len(mb)} logged steps")
            continue
        for s, (ra, rb) in enumerate(zip(ma, mb)):
            keys = [k for k in ra if compared(k)] if mode == "exact" else [k for k in BOUND_KEYS if k in ra]
            for k in keys:
                if k not in rb:
                    errors.append(f"{stage} step {s + 1}: {k} missing in {b}")
                    continue
                d = abs(float(ra[k]) - float(rb[k]))
                worst_metric = max(worst_metric, d)
                tol = 0.0 if mode == "exact" else BOUND_KEYS[k]
                if not d <= tol:
                    errors.append(f"{stage} step {s + 1} {k}: {ra[k]} vs {rb[k]} (|diff| {d:.3g} > {tol})")
        w = weights_rel_diff(f"{a}/{stage}/final/model.safetensors", f"{b}/{stage}/final/model.safetensors")
        worst_w = max(worst_w, w)
        if not w <= (0.0 if mode == "exact" else 1e-5):
            errors.append(f"{stage}: final weights differ by {w:.3g} (max |a-b| / max |a|)")
    print(f"compare {mode}: largest metric |diff| {worst_metric:.3g}, largest weight rel diff {worst_w:.3g}")
    for e in errors[:10]:
        print("  " + e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
