#!/usr/bin/env python3
"""Rollout throughput: grpo's engine (bench_rollout_bench) beside Hugging Face transformers'
generate() on the same weights, prompts and lengths, in one run. Prints decode and prefill tokens/s,
peak resident memory of each side (each runs in its own process) and the ratio.

  source scripts/lib/env.sh
  $GRPO_VENV/bin/python bench/rollout_vs_transformers.py --bin build/bin/bench_rollout_bench

Sampling is temperature 1 without filters on both sides (transformers: do_sample, top_k=0), EOS
ignored so every completion has exactly --new tokens (transformers: min_new_tokens = --new). The
model is a random Llama with SmolLM2's vocabulary (--model random, default) or SmolLM2-135M-Instruct
dequantised from the GGUF in the data cache (--model smollm2). Batch b means b sequences decoded at
once: b / G prompts with G completions each (batch 1: one prompt, G = 1).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

GGUF_DIR = os.path.join(os.environ.get("GRPO_DATA_DIR", os.path.expanduser("~/.cache/grpo/data")), "smollm2")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def make_model(kind, out_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    # SmolLM2's tokenizer as tokenizer.json beside the weights (grpo's engine decodes completions).
    AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME).save_pretrained(out_dir)
    if kind == "smollm2":
        q = AutoModelForCausalLM.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME, torch_dtype=torch.float32)
        # transformers refuses to save a model loaded from GGUF: copy the dequantised weights into
        # a plain model of the same config.
        cfg = q.config
        if hasattr(cfg, "quantization_config"):
            del cfg.quantization_config
        model = type(q)(cfg).to(torch.float32)
        model.load_state_dict(q.state_dict())
    else:
        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=49152, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                          tie_word_embeddings=True, rms_norm_eps=1e-5)
        model = LlamaForCausalLM(cfg).to(torch.float32)
    model.save_pretrained(out_dir, safe_serialization=True)


def peak_rss_mb():
    # VmHWM, not getrusage's ru_maxrss: the latter survives exec and would count the parent's peak.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def hf_worker(args):
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, torch_dtype=torch.float32).eval()
    prompts = json.load(open(args.prompts))
    ids = torch.tensor(prompts, dtype=torch.long)

    def run(n):
        torch.manual_seed(1234)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0, top_k=0,
                                 top_p=1.0, max_new_tokens=n, min_new_tokens=n, num_return_sequences=args.G,
                                 pad_token_id=0, use_cache=True)
        s = time.perf_counter() - t0
        assert out.shape == (len(prompts) * args.G, ids.shape[1] + n), out.shape
        return s

    run(2)  # warm-up
    t1 = run(1)
    tn = run(args.new)
    rows = len(prompts) * args.G
    print(json.dumps({
        "impl": "transformers", "batch": rows, "new_tokens": args.new, "threads": torch.get_num_threads(),
        "prefill_tokens_per_s": sum(len(p) for p in prompts) / t1,
        "decode_tokens_per_s": rows * (args.new - 1) / (tn - t1), "total_seconds": tn,
        "peak_rss_mb": peak_rss_mb()}))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin/bench_rollout_bench")
    ap.add_argument("--model", choices=["random", "smollm2"], default="random")
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--prompts", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return hf_worker(args)

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "model")
        make_model(args.model, model_dir)
        rng = np.random.default_rng(0)
        rows = []
        for b in [int(x) for x in args.batches.split(",")]:
            G = 1 if b == 1 else args.G
            assert b % G == 0, f"batch {b} is not a multiple of G = {G}"
            prompts = rng.integers(100, 49000, size=(b // G, args.prompt_len)).tolist()
            pfile = os.path.join(tmp, f"prompts_{b}.json")
            json.dump(prompts, open(pfile, "w"))
            o = run([args.bin, "--model", model_dir, "--tokenizer", model_dir, "--prompts", pfile,
                     "--G", str(G), "--new", str(args.new), "--threads", str(args.threads)])
            t = run([sys.executable, __file__, "--worker", "--model-dir", model_dir, "--prompts", pfile,
                     "--G", str(G), "--new", str(args.new), "--threads", str(args.threads)])
            rows.append((b, G, o, t))
            print(f"batch {b:3d} (G={G}): decode grpo {o['decode_tokens_per_s']:9.1f} tok/s, transformers "
                  f"{t['decode_tokens_per_s']:9.1f} tok/s, ratio {o['decode_tokens_per_s'] / t['decode_tokens_per_s']:.2f}x | "
                  f"prefill grpo {o['prefill_tokens_per_s']:8.1f} tok/s, transformers {t['prefill_tokens_per_s']:8.1f} tok/s | "
                  f"peak RSS grpo {o['peak_rss_mb']:.0f} MB, transformers {t['peak_rss_mb']:.0f} MB", flush=True)
        print(json.dumps([{"batch": b, "G": G, "grpo": o, "transformers": t} for b, G, o, t in rows]))


if __name__ == "__main__":
    main()
