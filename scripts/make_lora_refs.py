#!/usr/bin/env python3
"""Reference outputs of PEFT LoRA on tiny random Llama and Qwen2 models, float64, for
tests/model/lora_test.cpp (the independent source for grpo's LoRA numerics and PEFT files).

usage: make_lora_refs.py OUT_DIR        (the committed copy lives in tests/model/data/lora)

For each architecture (llama, qwen2) it writes OUT_DIR/<arch>/:
  config.json, model.safetensors   the base model (float32 values: float64 loads them exactly)
  adapter/, adapter_rslora/        PEFT adapter dirs (save_pretrained), r=4, lora_alpha=6,
                                   target_modules="all-linear", same A/B values, use_rslora off/on;
                                   init_lora_weights=False plus random B so the adapters change the
                                   output (PEFT's default B = 0 would make every check trivial)
  refs.safetensors                 input_ids [2, 7] int64, and per variant v in {plain, rslora}:
    v.logits        [2, 7, V] f64  PeftModel logits (all float64, SDPA attention)
    v.base_logits   [2, 7, V] f64  the same model inside `with model.disable_adapter()`
    v.grad.<key>    f64            d loss / d adapter tensor, key = PEFT file key; loss = -sum of
                                   log_softmax(logits)[t, ids[t+1]] over both rows
    v.merged.<name> f64            merge_and_unload() state dict (transformers names)
Fixed seed: running it twice gives identical files.

Float64 throughout: stock transformers computes RMSNorm (and eager attention's softmax) in float32
even in a float64 model, which would cap the comparison at float32 rounding; the reference keeps
RMSNorm in the input dtype (as grpo's RMSNorm does for float64) and uses SDPA attention.
"""
import os
import sys

import torch
import transformers as T
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file

COMMON = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2)
ARCHS = {
    "llama": (T.LlamaConfig, T.LlamaForCausalLM, dict(rope_theta=10000.0, tie_word_embeddings=False)),
    "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, dict(rope_theta=1e6, tie_word_embeddings=True)),
}


def f32_values(t):
    """Random values that float32 holds exactly, so the float32 files load into float64 bit for bit."""
    return t.float().double()


def rms_norm_in_input_dtype(self, hidden_states):
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def loss_of(logits, ids):
    lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return -lp.sum()


def build(name, out):
    cfg_cls, model_cls, extra = ARCHS[name]
    cfg = cfg_cls(**COMMON, **extra)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(4321)
    base = model_cls(cfg).eval()
    with torch.no_grad():
        for pname, p in sorted(base.named_parameters()):
            if "norm" in pname:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    d = os.path.join(out, name)
    base.float().save_pretrained(d, safe_serialization=True)
    ids = torch.randint(3, COMMON["vocab_size"], (2, 7), generator=torch.Generator().manual_seed(7))
    refs = {"input_ids": ids}
    lora_values = None
    for variant, rslora in (("plain", False), ("rslora", True)):
        m = model_cls.from_pretrained(d, torch_dtype=torch.float64, attn_implementation="sdpa").eval()
        lc = LoraConfig(r=4, lora_alpha=6, lora_dropout=0.0, target_modules="all-linear", use_rslora=rslora,
                        init_lora_weights=False, task_type="CAUSAL_LM")
        pm = get_peft_model(m, lc)
        named = {n: p for n, p in pm.named_parameters() if "lora_" in n}
        if lora_values is None:  # one set of adapter values for both variants
            g = torch.Generator().manual_seed(99)
            lora_values = {n: f32_values(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64)) for n, p in named.items()}
        with torch.no_grad():
            for n, p in named.items():
                p.copy_(lora_values[n])
        pm.save_pretrained(os.path.join(d, "adapter" if not rslora else "adapter_rslora"))
        logits = pm(input_ids=ids).logits
        loss_of(logits, ids).backward()
        refs[f"{variant}.logits"] = logits.detach()
        for n, p in named.items():
            key = n.replace(".default", "")  # the key PEFT writes into adapter_model.safetensors
            refs[f"{variant}.grad.{key}"] = p.grad.detach().clone()
        with torch.no_grad(), pm.disable_adapter():
            refs[f"{variant}.base_logits"] = pm(input_ids=ids).logits.detach()
        merged = pm.merge_and_unload()
        for n, t in merged.state_dict().items():
            refs[f"{variant}.merged.{n}"] = t.detach().clone()
    save_file({k: v.contiguous() for k, v in refs.items()}, os.path.join(d, "refs.safetensors"))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_default_dtype(torch.float32)
    for norm in (T.models.llama.modeling_llama.LlamaRMSNorm, T.models.qwen2.modeling_qwen2.Qwen2RMSNorm):
        norm.forward = rms_norm_in_input_dtype
    for name in ARCHS:
        build(name, out)
        print("wrote", os.path.join(out, name))


if __name__ == "__main__":
    main()
