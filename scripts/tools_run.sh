#!/usr/bin/env bash
# Tool-integrated GRPO, measured (docs/training.md, "Tool use, measured"): the cold-start SFT and
# GRPO of configs/tools-arithmetic.yaml (python tool on), and, as soon as that SFT has finished, the
# same GRPO from the same SFT weights with the tool off (configs/tools-arithmetic-notools.yaml),
# side by side. Then a table (held-out accuracy and tool use per evaluation) and a plot,
# runs/tools-arithmetic/tools_vs_notools.png. Finished runs are not redone (--resume auto).
#   scripts/tools_run.sh            (after scripts/setup.sh --quickstart, or any build of bin/grpo)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$GRPO_ROOT"
BIN="$GRPO_BUILD_DIR/bin/grpo"
ON=runs/tools-arithmetic
OFF=runs/tools-arithmetic-notools
mkdir -p "$ON" "$OFF"
start=$(date +%s)
"$BIN" train configs/tools-arithmetic.yaml --resume auto >"$ON.out" 2>&1 &
on_pid=$!
until [ -f "$ON/stage-1-sft/stage.json" ]; do
  if ! kill -0 "$on_pid" 2>/dev/null; then wait "$on_pid" || true; echo "tools run failed: see $ON.out" >&2; exit 1; fi
  sleep 5
done
echo "SFT done after $(( $(date +%s) - start )) s; GRPO with and without the tool now run side by side"
"$BIN" train configs/tools-arithmetic-notools.yaml --resume auto >"$OFF.out" 2>&1 &
off_pid=$!
rc=0
wait "$on_pid" || { rc=1; echo "tools run failed: see $ON.out" >&2; }
wait "$off_pid" || { rc=1; echo "no-tools run failed: see $OFF.out" >&2; }
echo "wall time: $(( $(date +%s) - start )) s (both runs, including the shared SFT)"
[ "$rc" = 0 ] || exit "$rc"

# The SFT policy without the tool (step 0 of the tool-off curve; the tool-on step 0 is the SFT
# stage's own evaluation).
[ -f "$OFF/sft_eval.summary.json" ] || "$BIN" eval configs/tools-arithmetic-notools.yaml --out "$OFF/sft_eval.jsonl" >/dev/null 2>&1

# Held-out accuracy (greedy, 100 problems) of both runs at every evaluation, tool use per step.
python3 - "$ON" "$OFF" <<'PY'
import json, sys
on_dir, off_dir = sys.argv[1], sys.argv[2]
rows = lambda p: [json.loads(l) for l in open(p) if l.strip()]
on, off = rows(on_dir + "/stage-2-grpo/metrics.jsonl"), rows(off_dir + "/metrics.jsonl")
last = on[-1]["step"]
acc_on = {0: json.load(open(on_dir + "/stage-1-sft/stage.json"))["eval"]["accuracy"],
          last: json.load(open(on_dir + "/stage-2-grpo/stage.json"))["eval"]["accuracy"]}
acc_off = {0: json.load(open(off_dir + "/sft_eval.summary.json"))["greedy_accuracy"],
           last: json.load(open(off_dir + "/stage.json"))["eval"]["accuracy"]}
for r in on:
    if "eval/accuracy" in r: acc_on[r["step"]] = r["eval/accuracy"]
for r in off:
    if "eval/accuracy" in r: acc_off[r["step"]] = r["eval/accuracy"]
tool = {r["step"]: r for r in on}
with open(on_dir + "/tools_vs_notools.dat", "w") as dat:
    for s in range(0, last + 1):
        t = tool.get(s, {})
        dat.write("%d\t%s\t%s\t%s\t%s\n" % (s, acc_on.get(s, "NaN"), acc_off.get(s, "NaN"),
                                            t.get("tools/frac_completions_using_tool", "NaN"), t.get("accuracy", "NaN")))
def window(s):  # training-batch means over the steps since the previous evaluation
    prev = max([k for k in acc_on if k < s], default=0)
    w = [tool[k] for k in range(prev + 1, s + 1) if k in tool]
    mean = lambda key: sum(r.get(key, 0.0) for r in w) / len(w) if w else float("nan")
    return mean("tools/frac_completions_using_tool"), mean("tools/calls_per_completion"), mean("accuracy")
print("| GRPO step | held-out acc, tool on | held-out acc, tool off | tool use (train batch, mean since last eval) | calls / completion | train-batch acc, tool on |")
print("|---|---|---|---|---|---|")
for s in sorted(acc_on):
    f, c, a = window(s) if s > 0 else (float("nan"),) * 3
    fmt = lambda x: "-" if x != x else "%.3f" % x
    print("| %d | %.1f%% | %s | %s | %s | %s |" % (s, 100 * acc_on[s], "%.1f%%" % (100 * acc_off[s]) if s in acc_off else "-", fmt(f), fmt(c), fmt(a)))
PY
if command -v gnuplot >/dev/null; then
  gnuplot <<GP
set terminal pngcairo size 1200,500 noenhanced
set output '$ON/tools_vs_notools.png'
set datafile missing 'NaN'
set multiplot layout 1,2 title 'configs/tools-arithmetic.yaml: GRPO with and without the python tool, same SFT start (step 0)'
set grid; set xlabel 'GRPO step'; set yrange [0:1]
set title 'held-out accuracy (greedy, 100 problems)'
plot '$ON/tools_vs_notools.dat' using 1:2 with linespoints pt 7 lw 2 title 'tool on', '' using 1:3 with linespoints pt 5 lw 2 title 'tool off'
set title 'tool on: training batch (64 sampled completions per step)'
set key bottom right
plot '$ON/tools_vs_notools.dat' using 1:4 with lines lw 2 title 'fraction using the tool', '' using 1:5 with lines lw 1 title 'accuracy'
unset multiplot
GP
  echo "plot: $ON/tools_vs_notools.png"
fi
