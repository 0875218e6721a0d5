#!/usr/bin/env python3
"""Forward+backward tokens/s of grpo's policy (bench_model_bench: plain ops, kernels.fused_ops, and
for the MoE the grouped expert path) beside the same models in PyTorch eager via transformers
(LlamaForCausalLM for the ~10M dense model and SmolLM2-135M's shape, MixtralForCausalLM for the
small MoE): same shapes, weights' sizes, threads and loss. Prints the ratios fused/plain and
each/eager per round; rounds alternate grpo and PyTorch so that a loaded machine slows both alike,
and the last lines give each ratio's median over the rounds.

usage: model_vs_pytorch.py BUILD_DIR [batch] [seq] [steps] [threads] [--models dense,smollm,moe] [--rounds N]
"""
import argparse
import json
import statistics
import subprocess
import time

import torch
import transformers as T


def hf_model(name):
    if name == "smollm":  # HuggingFaceTB/SmolLM2-135M config.json
        return T.LlamaForCausalLM(T.LlamaConfig(
            vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
            num_key_value_heads=3, rms_norm_eps=1e-5, rope_theta=100000.0, max_position_embeddings=8192,
            tie_word_embeddings=True))
    common = dict(vocab_size=8192, hidden_size=256, intermediate_size=704, num_attention_heads=4,
                  num_key_value_heads=2, rms_norm_eps=1e-6, max_position_embeddings=2048)
    if name == "moe":
        cfg = T.MixtralConfig(num_hidden_layers=4, num_local_experts=8, num_experts_per_tok=2, tie_word_embeddings=False,
                              output_router_logits=True, **{**common, "intermediate_size": 256})
        return T.MixtralForCausalLM(cfg)
    return T.LlamaForCausalLM(T.LlamaConfig(num_hidden_layers=10, tie_word_embeddings=True, **common))


def bench_hf(name, batch, seq, steps):
    torch.manual_seed(0)
    m = hf_model(name).train()
    vocab = m.config.vocab_size
    ids = torch.randint(0, vocab, (batch, seq + 1))

    def step():
        t0 = time.perf_counter()
        out = m(input_ids=ids[:, :seq])
        loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
        if name == "moe":
            loss = loss + 0.001 * out.aux_loss
        m.zero_grad()
        loss.backward()
        return time.perf_counter() - t0

    step()  # warm-up
    return batch * seq / statistics.median(step() for _ in range(steps))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("nums", nargs="*", type=int, help="batch seq steps threads")
    ap.add_argument("--models", default="dense,smollm,moe")
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    batch, seq, steps, threads = (a.nums + [4, 256, 3, torch.get_num_threads()][len(a.nums):])[:4]
    torch.set_num_threads(threads)
    ratios, params = {}, {}  # (model, label) -> [ratio per round]; model -> "params" text
    for r in range(a.rounds):
        for name in a.models.split(","):
            out = subprocess.run([f"{a.build}/bin/bench_model_bench", name, str(batch), str(seq), str(steps), str(threads)],
                                 check=True, capture_output=True, text=True).stdout
            ours = {o["impl"]: o for o in map(json.loads, out.strip().splitlines())}
            eager = bench_hf(name, batch, seq, steps)
            p = ours["plain"]
            params[name] = f"params {p['params'] / 1e6:.1f}M (active {p['active_params'] / 1e6:.1f}M)"
            line = [f"round {r + 1} {name}: eager {eager:.0f} tok/s"]
            for impl, o in ours.items():
                line.append(f"{impl} {o['tokens_per_s']:.0f} tok/s")
                ratios.setdefault((name, f"{impl}/eager"), []).append(o["tokens_per_s"] / eager)
                if impl != "plain":
                    ratios.setdefault((name, f"{impl}/plain"), []).append(o["tokens_per_s"] / p["tokens_per_s"])
            print("  ".join(line), flush=True)
    # One line per model, the ratios' medians over the rounds (each ratio from one round's run).
    for name in a.models.split(","):
        parts = [f"{label} {statistics.median(v):.2f}x"
                 for (n, label), v in ratios.items() if n == name]
        print(f"{name}: {params[name]}  " + "  ".join(parts) +
              f"  (median of {a.rounds} rounds; batch {batch}, seq {seq}, {threads} threads, fwd+bwd, median of {steps} steps)")

if __name__ == "__main__":
    main()
