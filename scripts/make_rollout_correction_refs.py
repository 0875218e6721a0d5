#!/usr/bin/env python3
"""Reference values for tests/train/rollout_correction_test.cpp: TRL 1.16's vLLM importance-sampling
correction (TIS/MIS) and the loss it weights.

The ratio is computed by TRL's own code: the block of GRPOTrainer._generate_and_score_completions
that starts at "if self.use_vllm and self.vllm_importance_sampling_correction:" (after "Compute the
importance sampling ratio") is cut out of the installed source with inspect and executed on fixed
old/sampling log-probs; so is the block that logs sampling/sampling_logp_difference/* and
sampling/importance_sampling_ratio/*. The loss is GRPOTrainer._compute_loss with use_vllm and the
correction on, called unbound on a stand-in `self` as scripts/make_loss_refs.py does. Float64, CPU.

Writes tests/train/data/rollout_correction_refs.json. Run:
    source scripts/lib/env.sh && $GRPO_VENV/bin/python scripts/make_rollout_correction_refs.py
"""
import inspect
import json
import math
import os
import textwrap
from collections import defaultdict
from types import SimpleNamespace

import torch
import trl
from trl.trainer import grpo_trainer
from trl.trainer.grpo_trainer import GRPOTrainer

assert trl.__version__.startswith("1.16"), trl.__version__
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "train", "data", "rollout_correction_refs.json")
torch.set_default_dtype(torch.float64)

SRC = inspect.getsource(GRPOTrainer._generate_and_score_completions)


def cut(start_marker, first_line, end_marker):
    """The source from the first `first_line` after `start_marker` up to `end_marker`, dedented."""
    i = SRC.index(start_marker)
    j = SRC.index(first_line, i)
    k = SRC.index(end_marker, j)
    line_start = SRC.rindex("\n", 0, j) + 1
    return textwrap.dedent(SRC[line_start:k])


RATIO_BLOCK = cut("# Compute the importance sampling ratio when using vLLM",
                  "if self.use_vllm and self.vllm_importance_sampling_correction:",
                  "# Compute the per-token log probabilities for the reference model")
METRICS_BLOCK = cut("self._pending_metrics.clear()",
                    "if self.use_vllm and self.vllm_importance_sampling_correction:",
                    "output = {")


class _Accel:
    num_processes = 1
    process_index = 0
    sync_gradients = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


def trl_ratio_and_metrics(old, sampling, mask, mode, clip_max, clip_min):
    me = SimpleNamespace(use_vllm=True, vllm_importance_sampling_correction=True,
                         vllm_importance_sampling_mode=mode, vllm_importance_sampling_clip_max=clip_max,
                         vllm_importance_sampling_clip_min=clip_min, accelerator=_Accel(),
                         _metrics={"train": defaultdict(list)})
    ns = dict(self=me, torch=torch, math=math, old_per_token_logps=old, sampling_per_token_logps=sampling,
              completion_mask=mask, tool_mask=None, mode="train", device=old.device,
              nanmin=grpo_trainer.nanmin, nanmax=grpo_trainer.nanmax)
    exec(RATIO_BLOCK, ns)
    exec(METRICS_BLOCK, ns)
    return ns["vllm_importance_sampling_ratio"], {k: v[-1] for k, v in me._metrics["train"].items()}


def trl_loss(inp, ratio, loss_type, level):
    logp = inp["logprobs"].clone().requires_grad_(True)
    B, T = logp.shape
    me = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros_like(logp), None),
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level=level, beta=0.0,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
        loss_type=loss_type, epsilon_low=0.2, epsilon_high=0.28, use_vllm=True,
        vllm_importance_sampling_correction=True, model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1, accelerator=_Accel(), max_completion_length=16,
        _entropy_bonus_enabled=False, entropy_coef=0.0, use_adaptive_entropy=False, aux_loss_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)})
    mask = inp["completion_mask"]
    inputs = {"prompt_ids": torch.zeros(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
              "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": mask,
              "advantages": inp["advantages"], "old_per_token_logps": inp["old_logprobs"],
              "importance_sampling_ratio": ratio, "num_items_in_batch": mask.sum()}
    loss = GRPOTrainer._compute_loss(me, None, inputs)
    loss.backward()
    return loss.item(), logp.grad


def make_inputs(seed=2024, B=6, T=10):
    g = torch.Generator().manual_seed(seed)
    lengths = [T, 1, T // 2, 0, 3, T - 1][:B]  # an empty completion on purpose
    mask = torch.zeros(B, T)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    old = -torch.rand(B, T, generator=g) * 3.0
    # Behaviour log-probs up to 1.5 nats away: token ratios in (0.22, 4.5) cross both bounds, and
    # sequence products range from far below to far above them.
    sampling = old + (torch.rand(B, T, generator=g) - 0.5) * 3.0
    logp = old + (torch.rand(B, T, generator=g) - 0.5) * 0.6
    rewards = torch.randint(0, 2, (B,), generator=g).double() + 0.1 * torch.rand(B, generator=g)
    adv = (rewards - rewards.mean()) / (rewards.std() + 1e-4)
    return dict(logprobs=logp, old_logprobs=old, sampling_logprobs=sampling, completion_mask=mask, advantages=adv)


def main():
    inp = make_inputs()
    cases = []
    for mode in ["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"]:
        for clip_max, clip_min in [(3.0, None), (2.0, 0.5)]:
            ratio, metrics = trl_ratio_and_metrics(inp["old_logprobs"], inp["sampling_logprobs"],
                                                   inp["completion_mask"], mode, clip_max, clip_min)
            level = mode.split("_")[0]
            losses = {}
            for loss_type in ["grpo", "dapo"]:
                loss, grad = trl_loss(inp, ratio, loss_type, "token")
                losses[loss_type] = dict(loss=loss, grad_logprobs=grad.tolist())
            cases.append(dict(name=f"{mode}_{clip_max}_{clip_min}", mode=mode, level=level, clip_max=clip_max,
                              clip_min=clip_min, ratio=ratio.tolist(), metrics=metrics, losses=losses))
    out = dict(trl_version=trl.__version__, inputs={k: v.tolist() for k, v in inp.items()}, cases=cases)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", OUT, len(cases), "cases")


if __name__ == "__main__":
    main()
