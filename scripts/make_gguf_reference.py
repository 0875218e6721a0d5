#!/usr/bin/env python3
"""Reference outputs of a GGUF model computed by transformers (which dequantises the GGUF with the
`gguf` package and runs its own Llama implementation): the independent check of grpo's GGUF import.

usage: make_gguf_reference.py MODEL.gguf OUT.safetensors

OUT holds, for three fixed prompts i = 0, 1, 2 (token ids from transformers' GGUF tokenizer):
  ids_i     [1, T_i] int64  the prompt
  logits_i  [V] f32         next-token logits after the prompt (CPU, float32)
and greedy [N] int64: transformers' 24 greedy tokens after prompt 2 (a chat question), whose
decoded text is the metadata entry greedy_text.
"""
import os
import sys

import torch
import transformers as T
from safetensors.torch import save_file

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n",
]


def main():
    path, out = sys.argv[1:3]
    torch.set_grad_enabled(False)
    d, f = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    tok = T.AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = T.AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    ref = {}
    for i, p in enumerate(PROMPTS):
        ids = torch.tensor([tok(p, add_special_tokens=False).input_ids], dtype=torch.int64)
        ref[f"ids_{i}"] = ids
        ref[f"logits_{i}"] = model(input_ids=ids).logits[0, -1].float().contiguous()
    seq = ref["ids_2"]
    for _ in range(24):
        nxt = model(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], 1)
    ref["greedy"] = seq[0, ref["ids_2"].shape[1]:].contiguous()
    text = tok.decode(ref["greedy"], skip_special_tokens=True)
    print("greedy:", repr(text))
    save_file(ref, out, metadata={"greedy_text": text})


if __name__ == "__main__":
    main()
