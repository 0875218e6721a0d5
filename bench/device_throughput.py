#!/usr/bin/env python3
"""Step 5 of the GPU acceptance run (scripts/device_check.sh): throughput on a Qwen2.5-0.5B-shaped
model with random weights made on the machine (no download).

1. Rollout: decode tokens/s of `grpo generate` (the rollout engine) beside transformers' generate()
   on the same weights, dtype (bf16 on CUDA) and prompts, at batch 64 and 256 (8 completions per
   prompt), 256 new tokens, no end token anywhere (the synthetic tokenizer of
   scripts/device_models.py has none; transformers gets min_new_tokens), temperature 1, no filters.
   grpo's figure is its engine's own (completion tokens / decode seconds, printed by grpo
   generate); transformers' is rows * (new - 1) / (t(new) - t(1)) after a warm-up, the definition
   bench/rollout_vs_transformers.py uses.
2. One GRPO step, 8 prompts x 8 completions, through bench_grpo_step_bench (GrpoStage::train_step,
   the code `grpo train` runs), split into rollout / logprobs (reference model, beta 0.04) /
   update, for kernels plain, kernels.fused_ops=true and kernels.fp8=true (fp8 on sm_90 only);
   float32 master weights with trainer.bf16=true on CUDA.

Peak memory of each process: nvidia-smi's per-process figure (CUDA context included), sampled every
100 ms, on CUDA; peak RSS on CPU. --tiny: a 2-layer model and a few tokens, for the CPU dry run.

Prints a table, one `RESULT<TAB>name<TAB>PASS|FAIL|SKIP<TAB>figure` line per check and a final JSON line.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import device_models as dm  # noqa: E402


def hf_worker(args):
    import torch
    from transformers import AutoModelForCausalLM

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=getattr(torch, args.dtype)).to(dev).eval()
    prompts = json.load(open(args.prompts))
    ids = torch.tensor(prompts, dtype=torch.long, device=dev)

    def run(n):
        torch.manual_seed(1234)
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0, top_k=0,
                                 top_p=1.0, max_new_tokens=n, min_new_tokens=n, num_return_sequences=args.G,
                                 pad_token_id=0, use_cache=True)
        if dev == "cuda":
            torch.cuda.synchronize()
        assert out.shape == (len(prompts) * args.G, ids.shape[1] + n), out.shape
        return time.perf_counter() - t0

    run(2)  # warm-up: cuBLAS handles, allocator
    t1 = run(1)
    tn = run(args.new)
    rows = len(prompts) * args.G
    print(json.dumps({"decode_tokens_per_s": rows * (args.new - 1) / (tn - t1),
                      "prefill_tokens_per_s": ids.numel() / t1, "seconds": tn}))


def rollout(args, model_dir, dtype, batch, work):
    import numpy as np

    G = args.G
    rng = np.random.default_rng(batch)
    texts = [dm.prompt_text(rng, args.prompt_len) for _ in range(batch // G)]
    pj = os.path.join(work, f"prompts-{batch}.jsonl")
    with open(pj, "w") as f:
        for t in texts:
            f.write(json.dumps({"prompt": t}) + "\n")
    ids_file = os.path.join(work, f"prompts-{batch}.json")
    json.dump([list(t.encode()) for t in texts], open(ids_file, "w"))
    cfg = os.path.join(work, f"generate-{batch}.yaml")
    with open(cfg, "w") as f:
        f.write(f"model: {{path: {model_dir}, device: {args.device}, dtype: {dtype}}}\n"
                f"tokenizer: {{path: {model_dir}/tokenizer.json, chat_template: plain}}\n"
                f"rollout: {{max_completion_length: {args.new}, temperature: 1.0, max_batch_size: {batch}}}\n"
                f"trainer: {{num_threads: {args.threads}}}\n")
    res = {"batch": batch, "G": G, "new": args.new}
    out_file = os.path.join(work, f"out-{batch}.jsonl")
    cuda = args.device == "cuda"
    rc, out, err, secs, peak = dm.run_measured([args.grpo, "generate", cfg, "--prompts", pj, "--raw", "-n", str(G),
                                                "--seed", "3", "--out", out_file], cuda, timeout=args.timeout)
    if rc != 0:
        res["error"] = f"grpo generate exit {rc}: {err[-800:]}"
        return res
    m = re.search(r"prefilled in ([0-9.e+-]+) s, (\d+) tokens in ([0-9.e+-]+) s", err)
    lengths = {json.loads(line)["completion_length"] for line in open(out_file)}
    if not m or lengths != {args.new}:
        res["error"] = f"grpo generate: completion lengths {sorted(lengths)} (want {args.new}) or no stats line"
        return res
    res["grpo"] = {"decode_tokens_per_s": int(m.group(2)) / float(m.group(3)), "seconds": secs, "peak_mb": peak}
    rc, out, err, secs, peak = dm.run_measured(
        [sys.executable, os.path.abspath(__file__), "--worker", "--model-dir", model_dir, "--prompts", ids_file,
         "--G", str(G), "--new", str(args.new), "--dtype", dtype, "--device", args.device, "--threads",
         str(args.threads)], cuda, timeout=args.timeout)
    if rc != 0:
        res["error"] = f"transformers worker exit {rc}: {err[-800:]}"
        return res
    res["transformers"] = dict(json.loads(out.strip().splitlines()[-1]), peak_mb=peak)
    return res


def grpo_step(args, model_dir, work, variant, override):
    import random

    data = os.path.join(work, "step-data.jsonl")
    rng = random.Random(0)
    with open(data, "w") as f:
        for _ in range(64):
            a, b = rng.randint(10, 99), rng.randint(10, 99)
            f.write(json.dumps({"prompt": f"What is {a} + {b}? Think in <think> </think>, then answer in "
                                          f"<answer> </answer>.", "answer": str(a + b)}) + "\n")
    rows = args.step_prompts * args.G
    micro = min(rows, args.micro_batch)
    cfg = os.path.join(work, "step.yaml")
    with open(cfg, "w") as f:
        f.write(f"""model: {{path: {model_dir}, dtype: float32, device: {args.device}}}
tokenizer: {{path: {model_dir}/tokenizer.json, chat_template: plain}}
data: {{train_file: {data}, shuffle: false}}
rollout: {{max_completion_length: {args.step_new}, temperature: 1.0, max_batch_size: {rows}}}
reward:
  functions:
    - {{name: format, weight: 0.2}}
    - {{name: math_answer, weight: 1.0}}
grpo: {{num_generations: {args.G}, beta: 0.04, loss_type: dapo, num_iterations: 1}}
optimizer: {{learning_rate: 1.0e-6, warmup_steps: 0}}
trainer: {{output_dir: {work}/step-run-{variant}, per_device_train_batch_size: {micro}, gradient_accumulation_steps: {rows // micro}, max_steps: 100, bf16: {str(args.device == "cuda").lower()}, num_threads: {args.threads}}}
logging: {{report_to: []}}
""")
    cmd = [args.step_bench, "--config", cfg, "--steps", str(args.steps), "--warmup", "1"] + ([override] if override else [])
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    rc, out, err, secs, peak = dm.run_measured(cmd, args.device == "cuda", timeout=args.timeout)
    res = {"variant": variant}
    if rc != 0:
        res["error"] = f"exit {rc}: {err[-800:]}"
        return res
    j = json.loads(out.strip().splitlines()[-1])
    res.update(median=j["median"], peak_mb=peak, seconds=secs, completion_length=[j["completion_length_min"],
                                                                                   j["completion_length_max"]])
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grpo")
    ap.add_argument("--step-bench")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--work")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer model and a few tokens (CPU dry run)")
    ap.add_argument("--fused-note", default="")
    ap.add_argument("--parts", default="rollout,step", help="which parts to run")
    ap.add_argument("--batches", help="rollout batch sizes, comma-separated (default 64,256; --tiny 4,8)")
    ap.add_argument("--step-new", type=int, help="new tokens per completion in the GRPO step (default 128; --tiny 8)")
    ap.add_argument("--timeout", type=float, default=240)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--prompts", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="bfloat16", help=argparse.SUPPRESS)
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--new", type=int, help="rollout new tokens (default 256; --tiny 8)")
    ap.add_argument("--threads", type=int, default=0)
    args, _ = ap.parse_known_args()
    if args.worker:
        return hf_worker(args)
    if not (args.grpo and args.step_bench and args.work):
        ap.error("--grpo, --step-bench and --work are required")

    batches, new, args.prompt_len, args.step_prompts, step_new, args.steps, args.micro_batch = [64, 256], 256, 32, 8, 128, 2, 16
    if args.tiny:
        batches, args.G, new, args.prompt_len, args.step_prompts, step_new, args.threads = [4, 8], 4, 8, 8, 2, 8, 2
        args.steps, args.micro_batch = 1, 8
    if args.batches:
        batches = [int(b) for b in args.batches.split(",")]
    args.new = args.new or new
    args.step_new = args.step_new or step_new
    os.makedirs(args.work, exist_ok=True)
    model_dir = os.path.join(args.work, "model")
    import torch

    cuda = args.device == "cuda"
    t0 = time.perf_counter()
    if args.tiny:
        n = dm.save_model(dm.hf_config("qwen2", 2048, 64, 2), model_dir, seed=0)
    else:
        n = dm.save_model(dm.qwen25_05b_config(), model_dir, seed=0, dtype="bfloat16", device=args.device)
    print(f"model: {n / 1e6:.0f}M parameters, written in {time.perf_counter() - t0:.1f} s", flush=True)
    dtype = "bfloat16" if cuda else "float32"
    summary = {"device": args.device, "parameters": n, "dtype": dtype, "rollout": [], "step": [],
               "step_shape": f"{args.step_prompts}x{args.G}, {args.step_new} new tokens"}
    mem = "GPU MiB" if cuda else "RSS MiB"
    for b in batches if "rollout" in args.parts else []:
        r = rollout(args, model_dir, dtype, b, args.work)
        summary["rollout"].append(r)
        if "error" in r:
            print(f"rollout batch {b}: ERROR {r['error']}", flush=True)
            print(f"RESULT\trollout decode, batch {b} x {args.new} new tokens\tFAIL\t{r['error'][:300]}".replace("\n", " "))
            continue
        g, t = r["grpo"], r["transformers"]
        ratio = g["decode_tokens_per_s"] / t["decode_tokens_per_s"]
        print(f"rollout batch {b:4d} x {args.new} new ({dtype}): grpo {g['decode_tokens_per_s']:9.0f} tok/s, "
              f"transformers {t['decode_tokens_per_s']:9.0f} tok/s, ratio {ratio:.2f}x | peak {mem} grpo "
              f"{g['peak_mb']:.0f}, transformers {t['peak_mb']:.0f}", flush=True)
        print(f"RESULT\trollout decode, batch {b} x {args.new} new tokens\tPASS\tgrpo {g['decode_tokens_per_s']:.0f} "
              f"tok/s, transformers {t['decode_tokens_per_s']:.0f} tok/s ({ratio:.2f}x); peak {mem} "
              f"{g['peak_mb']:.0f} vs {t['peak_mb']:.0f}")
    variants = [("plain", None), ("fused", "kernels.fused_ops=true"), ("fp8", "kernels.fp8=true")]
    sm90 = cuda and torch.cuda.get_device_capability()[0] >= 9
    for variant, override in variants if "step" in args.parts else []:
        name = f"GRPO step {summary['step_shape']}, {variant}"
        if variant == "fp8" and not sm90:
            reason = "FP8 GEMMs need sm_90" if cuda else "FP8 runs on CUDA sm_90 only"
            summary["step"].append({"variant": variant, "skipped": reason})
            print(f"RESULT\t{name}\tSKIP\t{reason}")
            continue
        s = grpo_step(args, model_dir, args.work, variant, override)
        summary["step"].append(s)
        if "error" in s:
            print(f"step {variant}: ERROR {s['error']}", flush=True)
            print(f"RESULT\t{name}\tFAIL\t{s['error'][:300]}".replace("\n", " "))
            continue
        m = s["median"]
        note = f"; {args.fused_note}" if variant == "fused" and args.fused_note else ""
        # Speed of the variant against the plain step of this run (same machine, same process shape).
        plain = next((p for p in summary["step"] if p.get("variant") == "plain" and "median" in p), None)
        if variant != "plain" and plain:
            note += f"; {plain['median']['total'] / m['total']:.2f}x plain's speed"
        print(f"step {variant:5s}: total {m['total']:.2f} s = rollout {m['rollout']:.2f} + reward {m['reward']:.3f} + "
              f"logprobs {m['logprobs']:.2f} + update {m['update']:.2f} | peak {mem} {s['peak_mb']:.0f}", flush=True)
        print(f"RESULT\t{name}\tPASS\t{m['total']:.2f} s: rollout {m['rollout']:.2f}, logprobs {m['logprobs']:.2f}, "
              f"update {m['update']:.2f}; peak {mem} {s['peak_mb']:.0f}{note}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
