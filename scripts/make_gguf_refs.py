#!/usr/bin/env python3
"""Reference data for tests/util/gguf_test.cpp, from the `gguf` Python package (llama.cpp's gguf-py).

Writes, under tests/util/data/:
  gguf_small.gguf       a small GGUF v3 written with gguf.GGUFWriter: metadata of every value type
                        (incl. arrays of strings and nested arrays), a custom general.alignment of 64,
                        tensors of type F32, F16, BF16, Q8_0, Q4_0, Q4_1 (random, fixed seed) and one
                        Q5_0 (a type grpo does not dequantise, for the error path).
  gguf_small.json       what the test must read back: metadata values, tensor dims/types, and every
                        tensor's values as dequantised by gguf.quants.dequantize.
  gguf_smollm2.json     for the real ~/.cache/grpo/data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
                        (when present): per tensor, float64 sum and sum of squares of
                        gguf.quants.dequantize's output plus 16 values at fixed strided indices.

Run: $GRPO_VENV/bin/python scripts/make_gguf_refs.py
"""
import json
import math
import os
import pathlib

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "util" / "data"
SMOLLM2 = pathlib.Path(os.environ.get("GRPO_DATA_DIR", pathlib.Path.home() / ".cache" / "grpo" / "data")) / \
    "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def f32(x):
    return float(np.float32(x))


def small():
    rng = np.random.default_rng(1234)
    path = OUT / "gguf_small.gguf"
    w = gguf.GGUFWriter(str(path), arch="grpotest")
    w.add_custom_alignment(64)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", math.pi)
    w.add_bool("test.bool", True)
    w.add_string("test.str", "héllo wörld ✓")
    w.add_array("test.arr_str", ["a", "", "ünï", "<|im_start|>"])
    w.add_array("test.arr_i32", [1, -2, 3])
    w.add_array("test.arr_f32", [0.5, -1.25])
    w.add_array("test.arr_nested", [[1, 2], [3]])

    tensors = {}
    # numpy shape (rows, cols): ggml dims are the reverse.
    specs = [
        ("t.f32", Q.F32, (3, 5)),
        ("t.f16", Q.F16, (2, 7)),
        ("t.bf16", Q.BF16, (4, 3)),
        ("t.q8_0", Q.Q8_0, (3, 64)),
        ("t.q4_0", Q.Q4_0, (2, 2, 32)),
        ("t.q4_1", Q.Q4_1, (4, 96)),
        ("t.q5_0", Q.Q5_0, (1, 32)),
    ]
    for name, qt, shape in specs:
        x = (rng.standard_normal(shape) * 2.0).astype(np.float32)
        if qt == Q.F32:
            w.add_tensor(name, x)
        elif qt == Q.F16:
            w.add_tensor(name, x.astype(np.float16))
        else:
            qd = gguf.quants.quantize(x, qt)
            w.add_tensor(name, qd, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # Read back with gguf-py's own reader and dequantiser: the independent reference.
    r = gguf.GGUFReader(str(path))
    for t in r.tensors:
        deq = gguf.quants.dequantize(t.data, t.tensor_type)
        tensors[t.name] = {
            "type": t.tensor_type.name,
            "dims": [int(d) for d in t.shape],  # ggml order (ne0 first)
            "values": [float(v) for v in np.asarray(deq, dtype=np.float32).reshape(-1)],
        }
    ref = {
        "version": 3,
        "alignment": 64,
        "metadata": {
            "test.u8": 200, "test.i8": -100, "test.u16": 60000, "test.i16": -30000,
            "test.u32": 4000000000, "test.i32": -2000000000, "test.f32": f32(0.1),
            "test.u64": str(2**63 + 5), "test.i64": -(2**62), "test.f64": math.pi, "test.bool": True,
            "test.str": "héllo wörld ✓", "test.arr_str": ["a", "", "ünï", "<|im_start|>"],
            "test.arr_i32": [1, -2, 3], "test.arr_f32": [0.5, -1.25],
            "general.architecture": "grpotest",
        },
        "tensors": tensors,
    }
    (OUT / "gguf_small.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")


def smollm2():
    if not SMOLLM2.exists():
        print(f"skip: {SMOLLM2} not found (run scripts/fetch_assets.sh)")
        return
    r = gguf.GGUFReader(str(SMOLLM2))
    out = {}
    for t in r.tensors:
        deq = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(-1)
        n = deq.size
        idx = [int(k * (n - 1) // 15) for k in range(16)]
        d64 = deq.astype(np.float64)
        out[t.name] = {
            "type": t.tensor_type.name,
            "dims": [int(d) for d in t.shape],
            "sum": float(d64.sum()),
            "sumsq": float((d64 * d64).sum()),
            "idx": idx,
            "values": [float(deq[i]) for i in idx],
        }
    (OUT / "gguf_smollm2.json").write_text(json.dumps({"file": SMOLLM2.name, "tensors": out}) + "\n")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    small()
    smollm2()
