#!/usr/bin/env python3
"""Tiny randomly initialised Hugging Face models of every architecture grpo supports, plus the
reference outputs transformers computes for them (the independent source for tests/model parity).

usage: make_tiny_models.py OUT_DIR

For each architecture it writes OUT_DIR/<arch>/{config.json, model.safetensors, reference.safetensors}.
reference.safetensors holds:
  input_ids      [2, 12] int64   right-padded batch (row 1 has 8 real tokens)
  attention_mask [2, 12] int64
  logits         [2, 12, V] f32  transformers' logits (CPU, float32, eager/sdpa)
  prompt         [1, 5] int64    prompt for greedy decoding
  greedy         [32] int64      32 greedy tokens after the prompt (full forward each step, no cache)
  aux_loss       [] f32          (MoE only) transformers' aux_loss with output_router_logits=True
Fixed seed: running it twice gives identical files.
"""
import os
import sys

import torch
import transformers as T
from safetensors.torch import save_file

COMMON = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=False,
              bos_token_id=1, eos_token_id=2)

ARCHS = {
    # Llama 3.1-style RoPE scaling with a short original context so every frequency band is exercised.
    "llama": (T.LlamaConfig, T.LlamaForCausalLM,
              dict(rope_theta=10000.0, rope_scaling=dict(rope_type="llama3", factor=4.0, low_freq_factor=1.0,
                                                          high_freq_factor=4.0, original_max_position_embeddings=16),
                   tie_word_embeddings=True)),
    # A sliding window shorter than the greedy run exercises the window in full and cached attention.
    "mistral": (T.MistralConfig, T.MistralForCausalLM, dict(sliding_window=8, head_dim=16)),
    "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, dict(rope_theta=1e6, tie_word_embeddings=True)),
    "qwen3": (T.Qwen3Config, T.Qwen3ForCausalLM, dict(head_dim=32, rope_theta=1e6)),
    "mixtral": (T.MixtralConfig, T.MixtralForCausalLM, dict(num_local_experts=4, num_experts_per_tok=2,
                                                             sliding_window=None)),
    "qwen2_moe": (T.Qwen2MoeConfig, T.Qwen2MoeForCausalLM,
                  dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=48,
                       shared_expert_intermediate_size=80, norm_topk_prob=False, mlp_only_layers=[1])),
    "qwen3_moe": (T.Qwen3MoeConfig, T.Qwen3MoeForCausalLM,
                  dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=48, norm_topk_prob=True,
                       head_dim=16)),
}


def build(name):
    cfg_cls, model_cls, extra = ARCHS[name]
    kw = dict(COMMON)
    kw.update(extra)
    cfg = cfg_cls(**kw)
    cfg._attn_implementation = "eager"
    torch.manual_seed(1234)
    model = model_cls(cfg).eval()
    # Larger-than-default weights so logits are far from uniform (greedy ties would make the token
    # comparison meaningless) and norm weights away from 1 so a mis-mapped norm shows.
    with torch.no_grad():
        for pname, p in sorted(model.named_parameters()):
            if pname.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    return model


def main():
    out = sys.argv[1]
    torch.set_grad_enabled(False)
    for name in ARCHS:
        model = build(name)
        d = os.path.join(out, name)
        model.save_pretrained(d, safe_serialization=True)
        g = torch.Generator().manual_seed(99)
        ids = torch.randint(3, 256, (2, 12), generator=g)
        mask = torch.ones_like(ids)
        mask[1, 8:] = 0
        ids[1, 8:] = 0
        kw = {}
        moe = name in ("mixtral", "qwen2_moe", "qwen3_moe")
        if moe:
            kw["output_router_logits"] = True
        res = model(input_ids=ids, attention_mask=mask, **kw)
        ref = {"input_ids": ids, "attention_mask": mask, "logits": res.logits.float().contiguous()}
        if moe:
            ref["aux_loss"] = res.aux_loss.float().reshape([])
        prompt = torch.randint(3, 256, (1, 5), generator=g)
        seq = prompt
        for _ in range(32):
            nxt = model(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
        ref["prompt"] = prompt
        ref["greedy"] = seq[0, 5:].contiguous()
        save_file(ref, os.path.join(d, "reference.safetensors"))
        print(f"{name}: {d}")


if __name__ == "__main__":
    main()
