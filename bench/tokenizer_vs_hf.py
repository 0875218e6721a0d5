#!/usr/bin/env python3
"""Our BPE encode/decode throughput beside HF `tokenizers` (Rust) on the same tokenizer and text,
single-threaded, in one run; prints both and the ratio (ours / HF, higher is better for us).

  $GRPO_VENV/bin/python bench/tokenizer_vs_hf.py BUILD_DIR/bin/bench_tokenize_bench TOKENIZER_JSON [TEXT]
TEXT defaults to tests/tokenizer/data/strings.json.
"""
import json
import os
import pathlib
import subprocess
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    bench, tok_path = sys.argv[1], sys.argv[2]
    text = sys.argv[3] if len(sys.argv) > 3 else str(ROOT / "tests/tokenizer/data/strings.json")
    docs = json.loads(pathlib.Path(text).read_text()) if text.endswith(".json") else pathlib.Path(text).read_text().split("\n")
    nbytes = sum(len(d.encode()) for d in docs)
    repeats = 5
    hf = Tokenizer.from_file(tok_path)
    ids = [hf.encode(d, add_special_tokens=False).ids for d in docs]  # warm-up, as ours does
    t0 = time.perf_counter()
    for _ in range(repeats):
        for d in docs:
            hf.encode(d, add_special_tokens=False)
    enc = (time.perf_counter() - t0) / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        for v in ids:
            hf.decode(v, skip_special_tokens=False)
    dec = (time.perf_counter() - t0) / repeats
    ours = json.loads(subprocess.check_output([bench, tok_path, text, str(repeats)]).decode())
    print(f"text: {len(docs)} docs, {nbytes} bytes; tokenizer: {tok_path}")
    print(f"encode  HF {nbytes / enc / 1e6:8.2f} MB/s   ours {ours['encode_MBps']:8.2f} MB/s   ratio {enc / ours['encode_s']:.2f}")
    print(f"decode  HF {nbytes / dec / 1e6:8.2f} MB/s   ours {ours['decode_MBps']:8.2f} MB/s   ratio {dec / ours['decode_s']:.2f}")


if __name__ == "__main__":
    main()
