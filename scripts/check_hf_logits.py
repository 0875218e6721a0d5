#!/usr/bin/env python3
"""Loads a Hugging Face model directory with transformers (CPU, float32) and writes its logits for
given token ids: the independent check of grpo's HF export (tests/model/export_test.cpp).

usage: check_hf_logits.py MODEL_DIR INPUT.safetensors OUTPUT.safetensors [MODEL_DIR INPUT OUTPUT ...]
(several triples in one run: importing transformers dominates the time). INPUT holds input_ids [B, T] int64 and attention_mask [B, T] int64; OUTPUT gets logits [B, T, V] f32.
"""
import sys

import torch
import transformers as T
from safetensors.torch import load_file, save_file


def main():
    args = sys.argv[1:]
    assert args and len(args) % 3 == 0, __doc__
    torch.set_grad_enabled(False)
    for i in range(0, len(args), 3):
        model_dir, inp, outp = args[i:i + 3]
        model = T.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        x = load_file(inp)
        logits = model(input_ids=x["input_ids"], attention_mask=x["attention_mask"]).logits
        save_file({"logits": logits.float().contiguous()}, outp)


if __name__ == "__main__":
    main()
