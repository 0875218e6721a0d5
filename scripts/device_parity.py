#!/usr/bin/env python3
"""Step 2 of the GPU acceptance run (scripts/device_check.sh): grpo's model against transformers on
the same device and dtype, on random-init Llama, Qwen2 and Qwen2-MoE models.

For each (architecture, dtype): `grpo generate` samples completions (temperature 1, no filters;
the rollout engine: prefill + KV-cached decode) and writes each sampled token's log-probability;
transformers then runs one full forward over prompt + completion on the same device and dtype and
gives its log-probabilities of the same tokens (log_softmax in float32). The error measure is
||lp_grpo - lp_hf|| / ||lp_hf|| over every completion token (relative L2), with the largest absolute
difference beside it. Bounds: float32 1e-5 (tests/model/hf_parity_test.cpp's logits bound; reassociated float32
sums land near 1e-7); bfloat16 1e-2 (two different bf16 evaluations of a 2-4 layer model: ~1e-3 on CPU;
a wrong layer or position moves the log-probabilities by ~1e-1).

  python3 scripts/device_parity.py --grpo .device/bin/grpo --device cuda --dtypes float32,bfloat16 --work DIR

Prints one line per case, one `RESULT<TAB>name<TAB>PASS|FAIL<TAB>figure` line per dtype and a final JSON line {"cases": [...], "max_rel": {...}, "ok": bool}; exits 1
when a case is over its bound or failed to run.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import device_models as dm  # noqa: E402

BOUNDS = {"float32": 1e-5, "bfloat16": 1e-2}


def grpo_logprobs(args, model_dir, dtype, prompts_file, out_file):
    cfg = os.path.join(os.path.dirname(out_file), f"generate-{dtype}.yaml")
    with open(cfg, "w") as f:
        f.write(f"model: {{path: {model_dir}, device: {args.device}, dtype: {dtype}}}\n"
                f"tokenizer: {{path: {model_dir}/tokenizer.json, chat_template: plain}}\n"
                f"rollout: {{max_completion_length: {args.new}, temperature: 1.0, max_batch_size: 64}}\n"
                f"trainer: {{num_threads: {args.threads}}}\n")
    cmd = [args.grpo, "generate", cfg, "--prompts", prompts_file, "--raw", "-n", str(args.G), "--seed", "5",
           "--out", out_file]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return [json.loads(line) for line in open(out_file)]


def hf_logprobs(model, rows, device):
    """Log-probabilities transformers gives the completions' tokens: one full forward per completion."""
    import torch

    out = []
    for row in rows:
        ids = torch.tensor([row["prompt_ids"] + row["token_ids"]], device=device)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].float()
        lp = torch.log_softmax(logits, -1)
        p = len(row["prompt_ids"])
        tgt = ids[0, p:]
        out.append(lp[p - 1:-1].gather(-1, tgt[:, None])[:, 0].double().cpu())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grpo", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--archs", default="llama,qwen2,qwen2_moe")
    ap.add_argument("--work", required=True)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--prompt-len", type=int, default=24)
    ap.add_argument("--G", type=int, default=2)
    ap.add_argument("--new", type=int, default=48)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()

    import numpy as np
    import torch
    import transformers as T

    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.work, exist_ok=True)
    rng = np.random.default_rng(0)
    texts = [dm.prompt_text(rng, args.prompt_len) for _ in range(args.prompts)]
    prompts_file = os.path.join(args.work, "prompts.jsonl")
    with open(prompts_file, "w") as f:
        for t in texts:
            f.write(json.dumps({"prompt": t}) + "\n")
    prompt_ids = [list(t.encode()) for t in texts]  # ids = bytes under the synthetic tokenizer

    cases, ok = [], True
    for arch in args.archs.split(","):
        model_dir = os.path.join(args.work, arch)
        cfg = dm.hf_config(arch, args.vocab, args.hidden, args.layers)
        dm.save_model(cfg, model_dir, seed=1, scale=0.08)
        for dtype in args.dtypes.split(","):
            t0 = time.perf_counter()
            case = {"arch": arch, "dtype": dtype, "device": args.device}
            try:
                rows = grpo_logprobs(args, model_dir, dtype, prompts_file, os.path.join(args.work, f"{arch}-{dtype}.jsonl"))
                for r in rows:
                    r["prompt_ids"] = prompt_ids[r["prompt_index"]]
                    if r["prompt_length"] != len(r["prompt_ids"]) or len(r["logprobs"]) != len(r["token_ids"]):
                        raise RuntimeError(f"unexpected lengths in grpo's output: {r['prompt_length']} prompt tokens "
                                           f"(want {len(r['prompt_ids'])}), {len(r['logprobs'])} logprobs for "
                                           f"{len(r['token_ids'])} tokens")
                model = T.AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).to(args.device).eval()
                ref = torch.cat(hf_logprobs(model, rows, args.device))
                got = torch.tensor([x for r in rows for x in r["logprobs"]], dtype=torch.float64)
                del model
                d = got - ref
                case["tokens"] = int(ref.numel())
                case["rel"] = float(d.norm() / ref.norm()) if torch.isfinite(got).all() else float("inf")
                case["max_abs"] = float(d.abs().max())
                case["bound"] = BOUNDS[dtype]
                case["ok"] = bool(case["rel"] <= BOUNDS[dtype])
            except Exception as e:  # one broken case must not hide the others
                case["ok"], case["error"] = False, str(e)[-1500:]
            case["seconds"] = round(time.perf_counter() - t0, 2)
            ok &= case["ok"]
            cases.append(case)
            if "error" in case:
                print(f"{arch:10s} {dtype:9s} ERROR {case['error']}", flush=True)
            else:
                print(f"{arch:10s} {dtype:9s} {case['tokens']:5d} tokens  rel {case['rel']:.2e} (bound {case['bound']:.0e})"
                      f"  max|d| {case['max_abs']:.2e}  {'ok' if case['ok'] else 'OVER'}", flush=True)
    max_rel = {}
    for c in cases:
        max_rel[c["dtype"]] = max(max_rel.get(c["dtype"], 0.0), c.get("rel", float("inf")))
    for dtype in args.dtypes.split(","):
        mine = [c for c in cases if c["dtype"] == dtype]
        fig = (f"max rel err {max_rel[dtype]:.2e} (bound {BOUNDS[dtype]:.0e}), max|d logprob| "
               f"{max(c.get('max_abs', float('inf')) for c in mine):.2e} over {', '.join(c['arch'] for c in mine)}")
        errors = [f"{c['arch']}: {c['error'][:200]}" for c in mine if "error" in c]
        if errors:
            fig += "; errors: " + "; ".join(errors)
        status = "PASS" if all(c["ok"] for c in mine) else "FAIL"
        print(f"RESULT\tmodel parity vs transformers on {args.device}, {dtype}\t{status}\t{fig}".replace("\n", " "))
    print(json.dumps({"cases": cases, "max_rel": max_rel, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
