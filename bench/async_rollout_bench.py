#!/usr/bin/env python3
"""Steps per hour of the quickstart GRPO stage, grpo.async_rollout off vs on, alternated in one run.

Starts from a finished quickstart SFT stage (RUN/stage-1-sft/final, RUN/data, RUN/tokenizer.model,
as scripts/quickstart.sh leaves them) and runs the quickstart's GRPO stage for --steps steps,
sync and async in turn, --rounds times, each in a fresh output directory (so both pay the same
start-up and the same checkpoint at the end). One intra-op thread per side (the quickstart's
trainer.num_threads: 1; async adds the rollout thread: two threads on this 2-core machine).
Prints, per mode: steps per hour (from time/step, the step's own wall time, the first step
excluded: it pays the pipeline's fill), mean time/rollout, time/update, time/logprobs and, async,
where each side waited (async/trainer_wait_s, async/rollout_wait_s), and the load average around
each run (the machine is shared).

  python3 bench/async_rollout_bench.py --run runs/quickstart --steps 20 --rounds 3
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_once(args, mode, out):
    src = os.path.abspath(args.run)
    cmd = [args.grpo, "train", os.path.join(ROOT, "configs/quickstart.yaml"), "stages=[]", "task.name=none",
           f"model.path={src}/stage-1-sft/final", f"tokenizer.path={src}/tokenizer.model",
           f"data.train_file={src}/data/train.jsonl", f"data.eval_file={src}/data/eval.jsonl",
           f"trainer.max_steps={args.steps}", "trainer.eval_steps=0", f"trainer.output_dir={out}",
           f"grpo.async_rollout={mode}", f"grpo.max_staleness={args.max_staleness}"]
    load0 = os.getloadavg()[0]
    t0 = time.time()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.time() - t0
    if r.returncode != 0:
        sys.exit(f"grpo failed ({mode}):\n{r.stderr[-3000:]}")
    rows = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
    return rows, wall, load0, os.getloadavg()[0]


def mean(rows, key):
    v = [r[key] for r in rows if key in r]
    return statistics.mean(v) if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="runs/quickstart", help="a quickstart run directory with its SFT stage done")
    ap.add_argument("--grpo", default=os.path.join(ROOT, "build/bin/grpo"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-staleness", type=int, default=1)
    ap.add_argument("--json", help="write the per-run figures here")
    args = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="async_bench_")
    runs = []
    for rnd in range(args.rounds):
        for mode in (["off", "on"] if rnd % 2 == 0 else ["on", "off"]):  # alternate who goes first
            out = os.path.join(scratch, f"{mode}-{rnd}")
            rows, wall, l0, l1 = run_once(args, mode, out)
            steady = rows[1:]
            rec = {"mode": mode, "round": rnd, "wall_s": wall, "load_before": l0, "load_after": l1,
                   "steps_per_hour": 3600.0 * len(steady) / sum(r["time/step"] for r in steady)}
            for k in ["time/step", "time/rollout", "time/reward", "time/update", "time/logprobs",
                      "async/trainer_wait_s", "async/rollout_wait_s", "async/staleness", "reward", "accuracy"]:
                rec[k] = mean(steady, k)
            runs.append(rec)
            print(json.dumps(rec), flush=True)
            shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    print("\nmode  steps/h (per round)            mean   rollout  update  logprobs  trainer_wait  rollout_wait  load")
    summary = {}
    for mode in ["off", "on"]:
        rs = [r for r in runs if r["mode"] == mode]
        sph = [r["steps_per_hour"] for r in rs]
        summary[mode] = statistics.mean(sph)
        print(f"{mode:4s}  {' '.join(f'{x:7.0f}' for x in sph):30s} {summary[mode]:6.0f}  "
              f"{statistics.mean(r['time/rollout'] for r in rs):6.3f}  {statistics.mean(r['time/update'] for r in rs):6.3f}  "
              f"{statistics.mean(r['time/logprobs'] for r in rs):7.3f}  "
              f"{statistics.mean(r['async/trainer_wait_s'] for r in rs):11.3f}  "
              f"{statistics.mean(r['async/rollout_wait_s'] for r in rs):11.3f}  "
              f"{statistics.mean((r['load_before'] + r['load_after']) / 2 for r in rs):4.1f}")
    print(f"async / sync steps per hour: {summary['on'] / summary['off']:.3f}")
    if args.json:
        json.dump({"runs": runs, "ratio": summary["on"] / summary["off"]}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
