#!/usr/bin/env python3
"""Forward+backward tokens/s of grpo's policy (bench_model_bench) beside the same models in
PyTorch eager via transformers (LlamaForCausalLM for the ~10M dense model, MixtralForCausalLM
for the small MoE), same shapes, threads and loss, in one run; prints the ratio ours / PyTorch.

usage: model_vs_pytorch.py BUILD_DIR [batch] [seq] [steps] [threads]
"""
import json
import subprocess
import sys
import time

import torch
import transformers as T


def hf_model(moe):
    common = dict(vocab_size=8192, hidden_size=256, intermediate_size=704, num_attention_heads=4,
                  num_key_value_heads=2, rms_norm_eps=1e-6, max_position_embeddings=2048)
    if moe:
        cfg = T.MixtralConfig(num_hidden_layers=4, num_local_experts=8, num_experts_per_tok=2, tie_word_embeddings=False,
                              output_router_logits=True, **{**common, "intermediate_size": 256})
        return T.MixtralForCausalLM(cfg)
    return T.LlamaForCausalLM(T.LlamaConfig(num_hidden_layers=10, tie_word_embeddings=True, **common))


def bench_hf(moe, batch, seq, steps):
    torch.manual_seed(0)
    m = hf_model(moe).train()
    ids = torch.randint(0, 8192, (batch, seq + 1))

    def step():
        out = m(input_ids=ids[:, :seq])
        loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, 8192), ids[:, 1:].reshape(-1))
        if moe:
            loss = loss + 0.001 * out.aux_loss
        m.zero_grad()
        loss.backward()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * seq * steps / (time.perf_counter() - t0)


def main():
    build = sys.argv[1]
    batch, seq, steps, threads = [int(x) for x in (sys.argv[2:6] + ["4", "256", "3", str(torch.get_num_threads())][len(sys.argv[2:6]):])]
    torch.set_num_threads(threads)
    out = subprocess.run([f"{build}/bin/bench_model_bench", "both", str(batch), str(seq), str(steps), str(threads)],
                         check=True, capture_output=True, text=True).stdout
    ours = {r["model"]: r for r in map(json.loads, out.strip().splitlines())}
    for name in ("dense", "moe"):
        ref = bench_hf(name == "moe", batch, seq, steps)
        o = ours[name]
        print(f"{name}: params {o['params'] / 1e6:.1f}M (active {o['active_params'] / 1e6:.1f}M)  grpo {o['tokens_per_s']:.0f} tok/s"
              f"  pytorch-eager {ref:.0f} tok/s  ratio {o['tokens_per_s'] / ref:.2f}x  "
              f"(batch {batch}, seq {seq}, {threads} threads, fwd+bwd)")


if __name__ == "__main__":
    main()
