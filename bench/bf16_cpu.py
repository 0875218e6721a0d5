#!/usr/bin/env python3
"""trainer.bf16 on the CPU against float32, in one run (issue 23): the GEMM roofline of this CPU in
each dtype, the rollout engine's decode tokens/s at batch 1, 16 and 64, and one GRPO step split into
rollout / reward / logprobs / update, with the peak resident memory of each process.

  source scripts/lib/env.sh
  $GRPO_VENV/bin/python bench/bf16_cpu.py            # builds nothing: needs build/bin/bench_bf16_cpu_bench
                                                     # and build/bin/bench_grpo_step_bench

The model is a random Llama with SmolLM2-135M's shape (hidden 576, intermediate 1536, 30 layers,
9 query / 3 key-value heads, vocabulary 49152, tied embeddings; 134.5M parameters), written once
with transformers, with SmolLM2's tokenizer (its end tokens renamed, so fixed-length completions:
see bench/grpo_step_vs_trl.py, whose data, rewards and config this reuses).

Rollout (bench_bf16_cpu_bench, one process per dtype): batch b = b/8 prompts x 8 completions of 32
random prompt tokens, decode = the extra time of 63 more tokens per row (as bench_rollout_bench),
best of 2. GRPO step (bench_grpo_step_bench, GrpoStage::train_step, the code `grpo train` runs):
--B prompts x --G completions x --new tokens, beta 0.04 (the logprobs phase is the frozen reference
model), one micro-batch, AdamW; trainer.bf16=false vs true, medians of --steps steps after a
warm-up. Each dtype runs --rounds times, alternated with the other (float32, bfloat16, float32, ...:
on a shared machine a load drift then hits both dtypes alike), and the MEDIAN round of each is
reported, with the 1-minute load average (os.getloadavg, as `uptime`) before each run beside it.
Peak RSS: the ru_maxrss of each child process (os.wait4).

Roofline: each rollout child first times a 2048^3 torch::mm in its dtype (the GEMM peak of this CPU
in that dtype, oneDNN/MKL as the model's linears); a decode step costs about 2 x (non-embedding
parameters + the tied head) flops per token, so tok/s x that = the GFLOP/s the decode reaches,
printed as a fraction of its dtype's GEMM peak.

OpenMP wait policy: by default the children inherit this process's environment, as `grpo` runs (grpo
never sets OMP_WAIT_POLICY, so a user gets libgomp's default: threads spin a while at a parallel
region's end before sleeping). That is the measurement the issue's figures quote. --omp-wait-policy
PASSIVE (threads sleep at once) is a variant for a machine shared with another busy process: there a
spinning thread holds its core while its partner waits to be scheduled and a 2-thread run measures
the load; on an idle machine PASSIVE costs bf16 more than float32 (more, shorter parallel regions,
each ending in a futex wake-up), see docs/benchmarks.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpo_step_vs_trl import RENAMED, SMOLLM2_TOKENIZER, grpo_config, make_data  # noqa: E402


def make_smollm2_shaped(d):
    """A random SmolLM2-135M-shaped Llama in d/ (config.json, model.safetensors, tokenizer.json)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = json.load(open(SMOLLM2_TOKENIZER))
    for a in tok["added_tokens"]:
        a["content"] = RENAMED.get(a["content"], a["content"])
    vocab = tok["model"]["vocab"]
    for old, new in RENAMED.items():
        if old in vocab:
            vocab[new] = vocab.pop(old)
    tok["post_processor"] = None
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                      rope_theta=100000.0, tie_word_embeddings=True, rms_norm_eps=1e-5,
                      bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = LlamaForCausalLM(cfg).to(torch.float32)
    model.save_pretrained(d, safe_serialization=True)
    if os.path.exists(os.path.join(d, "generation_config.json")):
        os.remove(os.path.join(d, "generation_config.json"))
    c = json.load(open(os.path.join(d, "config.json")))
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        c.pop(k, None)
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=1)
    json.dump(tok, open(os.path.join(d, "tokenizer.json"), "w"))
    return sum(p.numel() for p in model.parameters())


def run(cmd, env=None):
    """Runs cmd, returns (its last stdout line as JSON, its peak RSS in MB, the 1-minute load average
    when it started)."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile(mode="w+") as errf:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True, env=env)
        stdout = p.stdout.read()  # until the child closes it; wait4 then reaps it with its own rusage
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            errf.seek(0)
            sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{errf.read()[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1]), ru.ru_maxrss / 1024.0, load


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def decode_flops_per_token(params, vocab=49152, hidden=576):
    """2 x (parameters without the embedding table + the tied head's product): one token's decode
    flops in the linears (attention over the cache and the rest left out: a lower bound)."""
    return 2.0 * (params - vocab * hidden) + 2.0 * vocab * hidden


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default="build/bin")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds per dtype (median reported)")
    ap.add_argument("--omp-wait-policy", choices=("ACTIVE", "PASSIVE"), default=None,
                    help="OMP_WAIT_POLICY for the children (default: inherited, i.e. libgomp's default "
                         "as grpo runs; PASSIVE only for a machine shared with another busy process)")
    ap.add_argument("--B", type=int, default=2, help="GRPO step: prompts")
    ap.add_argument("--G", type=int, default=8, help="GRPO step: completions per prompt")
    ap.add_argument("--new", type=int, default=64, help="tokens per completion (fixed)")
    ap.add_argument("--steps", type=int, default=2, help="GRPO step: timed steps per round")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--skip-step", action="store_true", help="rollout and GEMM figures only")
    ap.add_argument("--skip-rollout", action="store_true", help="GRPO step figures only")
    args = ap.parse_args()
    if not os.path.exists(SMOLLM2_TOKENIZER):
        sys.exit(f"{SMOLLM2_TOKENIZER} is missing: run scripts/fetch_assets.sh, then "
                 "scripts/make_tokenizer_refs.py --extract-only")
    dtypes = ("float32", "bfloat16")
    with tempfile.TemporaryDirectory() as tmp:
        mdir = os.path.join(tmp, "model")
        params = make_smollm2_shaped(mdir)
        roll = {d: [] for d in dtypes}
        step = {d: [] for d in dtypes}
        data = os.path.join(tmp, "train.jsonl")
        make_data(data, (args.warmup + args.steps) * args.B)
        yaml = os.path.join(tmp, "run.yaml")
        grpo_config(yaml, mdir, data, os.path.join(tmp, "run-grpo"), args)
        env = dict(os.environ)
        if args.omp_wait_policy:
            env["OMP_WAIT_POLICY"] = args.omp_wait_policy
        for _ in range(args.rounds):
            for d in dtypes if not args.skip_rollout else ():
                roll[d].append(run([os.path.join(args.bin_dir, "bench_bf16_cpu_bench"), "--model", mdir,
                                    "--tokenizer", os.path.join(mdir, "tokenizer.json"), "--dtype", d,
                                    "--threads", str(args.threads), "--new", str(args.new)], env))
            if args.skip_step:
                continue
            for d in dtypes:
                step[d].append(run([os.path.join(args.bin_dir, "bench_grpo_step_bench"), "--config", yaml,
                                    "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads",
                                    str(args.threads), f"trainer.bf16={'true' if d == 'bfloat16' else 'false'}"], env))

        loads = [r[2] for d in dtypes for r in roll[d] + step[d]]
        print(f"bf16 vs float32 on the CPU, {args.threads} threads, random SmolLM2-135M-shaped Llama "
              f"({params / 1e6:.1f}M parameters); median of {args.rounds} alternated round(s); "
              f"OMP_WAIT_POLICY={args.omp_wait_policy or os.environ.get('OMP_WAIT_POLICY', 'unset (libgomp default)')}; 1-min load average at the runs' starts "
              f"{min(loads):.2f}..{max(loads):.2f}")
        if not args.skip_rollout:
            peak = {d: median([r[0]["gemm_gflops"] for r in roll[d]]) for d in dtypes}
            print(f"GEMM 2048^3 GFLOP/s (roof): float32 {peak['float32']:.0f}, bfloat16 {peak['bfloat16']:.0f} "
                  f"({peak['bfloat16'] / peak['float32']:.2f}x)")
            fpt = decode_flops_per_token(params)
            print(f"{'decode tok/s':14s} {'float32':>9s} {'bfloat16':>9s} {'ratio':>7s}   "
                  f"{'%roof f32':>9s} {'%roof bf16':>10s}   load")
            for b in roll["float32"][0][0]["decode"]:
                f = median([r[0]["decode"][b] for r in roll["float32"]])
                h = median([r[0]["decode"][b] for r in roll["bfloat16"]])
                ld = ",".join(f"{r[2]:.1f}" for d in dtypes for r in roll[d])
                print(f"{'batch ' + b:14s} {f:9.1f} {h:9.1f} {h / f:6.2f}x   {100 * f * fpt / 1e9 / peak['float32']:8.1f}% "
                      f"{100 * h * fpt / 1e9 / peak['bfloat16']:9.1f}%   {ld}")
            rss = {d: median([r[1] for r in roll[d]]) for d in dtypes}
            print(f"rollout peak RSS MB: float32 {rss['float32']:.0f}, bfloat16 {rss['bfloat16']:.0f}")
        if not args.skip_step:
            print(f"GRPO step {args.B}x{args.G}x{args.new} (s; per round the median of {args.steps} step(s), "
                  f"then the median over rounds)")
            print(f"{'phase':10s} {'float32':>9s} {'bfloat16':>9s} {'ratio':>7s}")
            for ph in ("rollout", "reward", "logprobs", "update", "total"):
                f = median([r[0]["median"][ph] for r in step["float32"]])
                h = median([r[0]["median"][ph] for r in step["bfloat16"]])
                ratio = f"{f / h:6.2f}x" if h > 0 else "     -"
                print(f"{ph:10s} {f:9.3f} {h:9.3f} {ratio}")
            for d in dtypes:
                for r in step[d]:
                    if r[0]["completion_length_min"] != args.new or r[0]["completion_length_max"] != args.new:
                        sys.exit(f"{d}: completions of {r[0]['completion_length_min']}..{r[0]['completion_length_max']} tokens")
            print("GRPO step load per round (float32 | bfloat16): " +
                  " | ".join(",".join(f"{r[2]:.1f}" for r in step[d]) for d in dtypes))
            rss = {d: median([r[1] for r in step[d]]) for d in dtypes}
            print(f"GRPO step peak RSS MB: float32 {rss['float32']:.0f}, bfloat16 {rss['bfloat16']:.0f}")
        print(json.dumps({"params": params, "rollout": roll, "step": step}))


if __name__ == "__main__":
    main()
