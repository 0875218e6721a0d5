#!/usr/bin/env python3
"""One GRPO step on the CPU: grpo's GrpoStage (bench_grpo_step_bench, the code `grpo train` runs)
beside TRL's GRPOTrainer on the same weights, prompts, rewards and lengths, in one run. Prints the
seconds of each phase (rollout, reward, logprobs, update) and of the whole step, and the ratio.

  source scripts/lib/env.sh
  $GRPO_VENV/bin/python bench/grpo_step_vs_trl.py --bin build/bin/bench_grpo_step_bench

The step (both sides): B prompts x G completions (default 4 x 8 = 32 rows), exactly --new tokens
each (default 64), temperature 1, no filters; beta = 0.04 (a frozen reference model, so the
logprobs phase is real work), loss_type dapo, num_iterations 1, one micro-batch of B*G rows, AdamW.
Rewards: grpo's built-in `format` (0.2) and `math_answer` (1.0); TRL gets Python functions doing the
same checks (the reward phase is tiny on both sides).

The model is a random Llama (SmolLM2-135M's vocabulary of 49152 tokens; hidden 256, 4 layers,
tied embeddings), written once with transformers and loaded by both sides. Fixed length: TRL gets
min_new_tokens = --new (transformers masks EOS); grpo's engine cannot ignore EOS from a config, so
the shared tokenizer.json has its end tokens renamed and neither the model config nor grpo's
tokenizer directory names an EOS (TRL's own tokenizer_config.json names the renamed token, masked by
min_new_tokens). The C++ side checks every completion has exactly --new tokens.

Phases on the TRL side are measured by wrapping its methods: rollout = _generate, reward =
_calculate_rewards, logprobs = the no-grad _get_per_token_logps_and_entropies calls inside
_generate_and_score_completions (reference model), update = the rest of the step (loss forward,
backward, clipping, optimizer; Trainer callbacks mark the step's start and end). TRL's remaining
preparation (tokenisation, advantages) is reported as `other`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

DATA_DIR = os.environ.get("GRPO_DATA_DIR", os.path.expanduser("~/.cache/grpo/data"))
SMOLLM2_TOKENIZER = os.path.join(DATA_DIR, "smollm2", "hf", "tokenizer.json")
RENAMED = {"<|im_end|>": "<|im_stop|>", "<|endoftext|>": "<|text_stop|>"}


def make_model(tmp, args):
    """Writes tmp/grpo (config.json, model.safetensors, tokenizer.json: no EOS anywhere) and tmp/trl
    (the same plus tokenizer_config.json naming the renamed EOS and pad)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = json.load(open(SMOLLM2_TOKENIZER))
    for a in tok["added_tokens"]:
        a["content"] = RENAMED.get(a["content"], a["content"])
    vocab = tok["model"]["vocab"]
    for old, new in RENAMED.items():
        if old in vocab:
            vocab[new] = vocab.pop(old)
    tok["post_processor"] = None  # no BOS on either side: prompts tokenise to the same ids
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=args.hidden, intermediate_size=args.intermediate,
                      num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=2048, tie_word_embeddings=True, rms_norm_eps=1e-5,
                      bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = LlamaForCausalLM(cfg).to(torch.float32)
    dirs = {}
    for side in ("grpo", "trl"):
        d = os.path.join(tmp, side)
        model.save_pretrained(d, safe_serialization=True)
        for extra in ("generation_config.json",):
            if os.path.exists(os.path.join(d, extra)):
                os.remove(os.path.join(d, extra))
        c = json.load(open(os.path.join(d, "config.json")))
        for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
            c.pop(k, None)
        json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=1)
        json.dump(tok, open(os.path.join(d, "tokenizer.json"), "w"))
        dirs[side] = d
    json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": RENAMED["<|im_end|>"],
               "pad_token": RENAMED["<|im_end|>"], "model_max_length": 2048},
              open(os.path.join(dirs["trl"], "tokenizer_config.json"), "w"))
    return dirs, sum(p.numel() for p in model.parameters())


def make_data(path, n):
    import random

    rng = random.Random(0)
    rows = []
    for _ in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        rows.append({"prompt": f"What is {a} + {b}? Think in <think> </think>, then give the answer in <answer> </answer>.",
                     "answer": str(a + b)})
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return rows


def grpo_config(path, model_dir, data_file, out_dir, args):
    with open(path, "w") as f:
        f.write(f"""model: {{path: {model_dir}, dtype: float32, device: cpu}}
tokenizer: {{path: {model_dir}/tokenizer.json, chat_template: plain}}
data: {{train_file: {data_file}, shuffle: false}}
rollout: {{max_completion_length: {args.new}, temperature: 1.0, max_batch_size: {args.B * args.G}}}
reward:
  functions:
    - {{name: format, weight: 0.2}}
    - {{name: math_answer, weight: 1.0}}
grpo: {{num_generations: {args.G}, beta: 0.04, loss_type: dapo, num_iterations: 1}}
optimizer: {{learning_rate: 1.0e-6, warmup_steps: 0}}
trainer: {{output_dir: {out_dir}, per_device_train_batch_size: {args.B * args.G}, gradient_accumulation_steps: 1, max_steps: {args.warmup + args.steps}}}
logging: {{report_to: []}}
""")


# ---- TRL side (runs in its own process: --worker) ----

def trl_worker(args):
    import re

    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = [json.loads(l) for l in open(args.data)]
    # grpo's `plain` chat template renders a one-turn prompt as "User: {prompt}\nAssistant:".
    ds = Dataset.from_list([{"prompt": f"User: {r['prompt']}\nAssistant:", "answer": r["answer"]} for r in rows])

    fmt = re.compile(r"^<think>.*?</think>\s*<answer>(.*?)</answer>$", re.S)

    def format_reward(completions, **kw):  # grpo's format (strict)
        return [1.0 if (m := fmt.match(c.strip())) and m.group(1).strip() else 0.0 for c in completions]

    def math_answer_reward(completions, answer, **kw):  # grpo's math_answer on plain numbers
        out = []
        for c, a in zip(completions, answer):
            m = re.findall(r"<answer>(.*?)</answer>", c, re.S)
            try:
                out.append(1.0 if m and abs(float(m[-1].strip()) - float(a)) <= 1e-6 else 0.0)
            except ValueError:
                out.append(0.0)
        return out

    t = {"rollout": [], "reward": [], "logprobs": [], "prepare": [], "total": []}

    class Timed(GRPOTrainer):
        in_prepare = False

        def _generate(self, *a, **k):
            t0 = time.perf_counter()
            r = super()._generate(*a, **k)
            t["rollout"].append(time.perf_counter() - t0)
            return r

        def _calculate_rewards(self, *a, **k):
            t0 = time.perf_counter()
            r = super()._calculate_rewards(*a, **k)
            t["reward"].append(time.perf_counter() - t0)
            return r

        def _get_per_token_logps_and_entropies(self, *a, **k):
            t0 = time.perf_counter()
            r = super()._get_per_token_logps_and_entropies(*a, **k)
            if self.in_prepare:
                t["logprobs"][-1] += time.perf_counter() - t0
            return r

        def _generate_and_score_completions(self, *a, **k):
            t["logprobs"].append(0.0)
            self.in_prepare = True
            t0 = time.perf_counter()
            try:
                return super()._generate_and_score_completions(*a, **k)
            finally:
                self.in_prepare = False
                t["prepare"].append(time.perf_counter() - t0)

    class StepClock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            t["total"].append(time.perf_counter() - self.t0)

    tok = AutoTokenizer.from_pretrained(args.model_dir)
    cfg = GRPOConfig(output_dir=args.out, per_device_train_batch_size=args.B * args.G, gradient_accumulation_steps=1,
                     num_generations=args.G, max_completion_length=args.new,
                     generation_kwargs={"min_new_tokens": args.new}, temperature=1.0, top_p=1.0, top_k=0,
                     reward_weights=[0.2, 1.0], beta=0.04, loss_type="dapo", num_iterations=1, learning_rate=1e-6, lr_scheduler_type="constant",
                     warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, max_steps=args.warmup + args.steps,
                     logging_steps=1, report_to="none", save_strategy="no", use_cpu=True, bf16=False, fp16=False,
                     shuffle_dataset=False, seed=0, dataloader_num_workers=0, disable_tqdm=True)
    trainer = Timed(model=args.model_dir, reward_funcs=[format_reward, math_answer_reward], args=cfg,
                    train_dataset=ds, processing_class=tok, callbacks=[StepClock()])
    lengths = []
    orig = trainer._generate

    def gen_and_check(*a, **k):
        r = orig(*a, **k)
        lengths.extend(len(c) for c in r[1])  # completion_ids
        return r

    trainer._generate = gen_and_check
    trainer.train()
    w = args.warmup
    steps = {k: v[w:] for k, v in t.items()}
    steps["update"] = [tot - p for tot, p in zip(steps["total"], steps["prepare"])]
    steps["other"] = [p - r - rw - lp for p, r, rw, lp in zip(steps["prepare"], steps["rollout"], steps["reward"], steps["logprobs"])]
    print(json.dumps({"impl": "trl", "threads": torch.get_num_threads(), "steps": steps,
                      "median": {k: statistics.median(v) for k, v in steps.items()},
                      "completion_length_min": min(lengths), "completion_length_max": max(lengths),
                      "prompt_tokens": [len(tok(r["prompt"])["input_ids"]) for r in ds.select(range(args.B))]}))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def compare_bins(args, yaml, first):
    """--compare-bin: the same step through two grpo binaries, alternated, medians per phase."""
    cmd = ["--config", yaml, "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    runs = {"a": [first], "b": []}
    for r in range(args.rounds):
        runs["b"].append(run([args.compare_bin] + cmd))
        if r + 1 < args.rounds:
            runs["a"].append(run([args.bin] + cmd))
    print(f"GRPO step, CPU, {args.threads} threads, {args.B}x{args.G}x{args.new}: A = {args.bin}, "
          f"B = {args.compare_bin}, median over {args.rounds} alternated round(s) of per-run medians")
    print(f"{'phase':10s} {'A s':>9s} {'B s':>9s} {'B/A':>9s}")
    for ph in ("rollout", "reward", "logprobs", "update", "total"):
        a = statistics.median(x["median"][ph] for x in runs["a"])
        b = statistics.median(x["median"][ph] for x in runs["b"])
        print(f"{ph:10s} {a:9.3f} {b:9.3f} {b / a if a > 0 else float('nan'):8.3f}x")
    print(json.dumps(runs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin/bench_grpo_step_bench")
    ap.add_argument("--B", type=int, default=4, help="prompts per step")
    ap.add_argument("--G", type=int, default=8, help="completions per prompt")
    ap.add_argument("--new", type=int, default=64, help="tokens per completion (fixed)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps (medians are reported)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--intermediate", type=int, default=688)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--compare-bin", help="a second bench_grpo_step_bench (e.g. built from an earlier commit) "
                    "run on the same model, data and config instead of TRL: before/after ratios of a change")
    ap.add_argument("--rounds", type=int, default=1, help="with --compare-bin: alternate the two binaries this many "
                    "times and report the median of each phase over the rounds")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return trl_worker(args)
    if not os.path.exists(SMOLLM2_TOKENIZER):
        sys.exit(f"{SMOLLM2_TOKENIZER} is missing: run scripts/fetch_assets.sh")

    with tempfile.TemporaryDirectory() as tmp:
        dirs, params = make_model(tmp, args)
        data = os.path.join(tmp, "train.jsonl")
        make_data(data, (args.warmup + args.steps) * args.B)
        yaml = os.path.join(tmp, "run.yaml")
        grpo_config(yaml, dirs["grpo"], data, os.path.join(tmp, "run-grpo"), args)
        o = run([args.bin, "--config", yaml, "--steps", str(args.steps), "--warmup", str(args.warmup),
                 "--threads", str(args.threads)])
        if args.compare_bin:
            return compare_bins(args, yaml, o)
        t = run([sys.executable, __file__, "--worker", "--model-dir", dirs["trl"], "--data", data,
                 "--out", os.path.join(tmp, "run-trl"), "--B", str(args.B), "--G", str(args.G), "--new", str(args.new),
                 "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)])
        for side in (o, t):
            if side["completion_length_min"] != args.new or side["completion_length_max"] != args.new:
                sys.exit(f"{side['impl']}: completions of {side['completion_length_min']}..{side['completion_length_max']} "
                         f"tokens, not exactly {args.new}: the comparison would be unfair")
        print(f"GRPO step, CPU, {args.threads} threads: {args.B} prompts x {args.G} completions x {args.new} tokens, "
              f"random Llama {params / 1e6:.1f}M parameters (hidden {args.hidden}, {args.layers} layers, vocab 49152), "
              f"beta 0.04, median of {args.steps} steps after {args.warmup} warm-up")
        print(f"{'phase':10s} {'grpo s':>9s} {'TRL s':>9s} {'TRL/grpo':>9s}")
        for ph in ("rollout", "reward", "logprobs", "update", "total"):
            a, b = o["median"][ph], t["median"][ph]
            ratio = f"{b / a:8.2f}x" if a > 0 else "      -"
            print(f"{ph:10s} {a:9.3f} {b:9.3f} {ratio}")
        print(f"(TRL's other preparation: {t['median']['other']:.3f} s, included in its total; prompt tokens: grpo "
              f"{o['prompt_tokens_mean']:.1f}, TRL {statistics.mean(t['prompt_tokens']):.1f})")
        print(json.dumps({"B": args.B, "G": args.G, "new": args.new, "params": params, "grpo": o, "trl": t}))


if __name__ == "__main__":
    main()
