#!/usr/bin/env python3
"""LoRA vs full fine-tuning: one GRPO step of the SmolLM2-135M architecture on the CPU, through
bench_grpo_step_bench (GrpoStage::train_step, the code `grpo train` runs), once per process so each
peak RSS is its own. Random weights (the SmolLM2-135M shapes: 576 hidden, 1536 MLP, 30 layers, 9/3
heads, 49152 vocabulary, tied embeddings) and SmolLM2's tokenizer with its EOS tokens renamed, so
every completion runs the full --new tokens in both runs (same work).

  bench/lora_vs_full.py [--bin build/bin/bench_grpo_step_bench] [--B 1] [--G 8] [--new 128] [--r 16]

Prints one JSON line per run and a table: peak RSS, rollout / logprobs / update seconds.
Reference log-probs (beta 0.04): full fine-tuning clones a frozen reference model; LoRA switches
its adapters off instead (no copy).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpo_step_vs_trl import RENAMED, SMOLLM2_TOKENIZER, grpo_config, make_data  # noqa: E402


def make_smollm2(d):
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
                      tie_word_embeddings=True, rms_norm_eps=1e-5, rope_theta=100000.0,
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin/bench_grpo_step_bench")
    ap.add_argument("--B", type=int, default=1, help="prompts per step")
    ap.add_argument("--G", type=int, default=8, help="completions per prompt")
    ap.add_argument("--new", type=int, default=128, help="tokens per completion (fixed)")
    ap.add_argument("--r", type=int, default=16, help="LoRA rank (all-linear, lora_alpha = 2r)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        mdir = os.path.join(tmp, "model")
        params = make_smollm2(mdir)
        data = os.path.join(tmp, "data.jsonl")
        make_data(data, 64)
        yaml = os.path.join(tmp, "run.yaml")
        grpo_config(yaml, mdir, data, os.path.join(tmp, "out"), args)
        rows = {}
        for name, extra in (("full", ["lora.r=0"]),
                            ("lora", [f"lora.r={args.r}", f"lora.lora_alpha={2 * args.r}", "optimizer.learning_rate=1.0e-5"])):
            cmd = [args.bin, "--config", yaml, "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--threads", str(args.threads)] + extra
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{name}: {out.stderr[-3000:]}")
            rows[name] = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps({"run": name, **rows[name]}))
        print(f"\nSmolLM2-135M shapes ({params / 1e6:.1f}M parameters), {args.B * args.G} completions x {args.new} tokens, "
              f"beta 0.04, {rows['full']['threads']} threads")
        print(f"{'':6} {'peak RSS MiB':>12} {'rollout s':>10} {'logprobs s':>11} {'update s':>9} {'total s':>8}")
        for name, r in rows.items():
            m = r["median"]
            print(f"{name:6} {r['peak_rss_mib']:12.0f} {m['rollout']:10.2f} {m['logprobs']:11.2f} {m['update']:9.2f} {m['total']:8.2f}")
        print(f"LoRA / full peak RSS: {rows['lora']['peak_rss_mib'] / rows['full']['peak_rss_mib']:.3f}")


if __name__ == "__main__":
    main()
