#!/usr/bin/env python3
"""Loads a Hugging Face model directory with transformers (CPU, float32) and writes its logits for
given token ids: the independent check of grpo's HF export (tests/model/export_test.cpp).

usage: check_hf_logits.py MODEL_DIR INPUT.safetensors OUTPUT.safetensors
INPUT holds input_ids [B, T] int64 and attention_mask [B, T] int64; OUTPUT gets logits [B, T, V] f32.
"""
import sys

import torch
import transformers as T
from safetensors.torch import load_file, save_file


def main():
    model_dir, inp, outp = sys.argv[1:4]
    torch.set_grad_enabled(False)
    model = T.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    x = load_file(inp)
    logits = model(input_ids=x["input_ids"], attention_mask=x["attention_mask"]).logits
    save_file({"logits": logits.float().contiguous()}, outp)


if __name__ == "__main__":
    main()
