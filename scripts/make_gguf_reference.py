#!/usr/bin/env python3
"""Reference outputs of a GGUF model computed by transformers (which dequantises the GGUF with the
`gguf` package and runs its own Llama implementation): the independent check of grpo's GGUF import.

usage: make_gguf_reference.py MODEL.gguf OUT.safetensors
(tests/model/data/smollm2_q4_1_reference.safetensors is its output for SmolLM2-135M-Instruct.Q4_1.gguf)

OUT holds, for three fixed prompts i = 0, 1, 2 (token ids from transformers' GGUF tokenizer):
  ids_i     [1, T_i] int64  the prompt
  index_i   [K] int64       vocabulary ids 0..4095 plus transformers' top-32 (kept small to commit)
  logits_i  [K] f32         next-token logits after the prompt at those ids (CPU, float32)
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
        logits = model(input_ids=ids).logits[0, -1].float()
        index = torch.unique(torch.cat([torch.arange(4096), logits.topk(32).indices]))
        ref[f"index_{i}"] = index
        ref[f"logits_{i}"] = logits[index].contiguous()
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
