#!/usr/bin/env python3
"""Reference values for tests/train: the GRPO loss and its gradient, advantages and LR schedules.

The loss is computed by TRL 1.16's own GRPOTrainer._compute_loss (trl/trainer/grpo_trainer.py), called
unbound on a stand-in `self` that carries only the attributes that method reads; the model forward
(_get_per_token_logps_and_entropies) is replaced by returning fixed random log-probs and entropies.
Everything is float64 on the CPU. Advantages reproduce the "sum_then_normalize" branch of
GRPOTrainer._generate_and_score_completions line by line with TRL's own nanstd. Schedules call
transformers' get_{constant,linear,cosine}_schedule_with_warmup on a real optimizer.

Writes tests/train/data/loss_refs.json (small: a few tens of KB). Run:
    source scripts/lib/env.sh && $GRPO_VENV/bin/python scripts/make_loss_refs.py
"""
import json
import math
import os
from collections import defaultdict
from types import SimpleNamespace

import torch
import transformers
import trl
from trl.trainer.grpo_trainer import GRPOTrainer
from trl.trainer.utils import nanstd

assert trl.__version__.startswith("1.16"), trl.__version__
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "train", "data", "loss_refs.json")
torch.set_default_dtype(torch.float64)


class _Accel:
    num_processes = 1
    process_index = 0
    sync_gradients = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


def make_inputs(seed, B, T):
    g = torch.Generator().manual_seed(seed)
    # Completion lengths: very different on purpose (gradient accumulation), one empty completion.
    lengths = [T, 1, T // 2, 0, 3, T - 1][:B]
    lengths += [int(torch.randint(1, T + 1, (1,), generator=g)) for _ in range(B - len(lengths))]
    mask = torch.zeros(B, T)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    logp = -torch.rand(B, T, generator=g) * 3.0  # log-probs in (-3, 0]
    # Old and ref log-probs differ by up to ~0.4 so that both clip sides trigger.
    old = logp + (torch.rand(B, T, generator=g) - 0.5) * 0.8
    ref = logp + (torch.rand(B, T, generator=g) - 0.5) * 0.6
    ent = torch.rand(B, T, generator=g) * 2.0
    rewards = torch.randint(0, 2, (B,), generator=g).double() + 0.1 * torch.rand(B, generator=g)
    adv = (rewards - rewards.mean()) / (rewards.std() + 1e-4)  # any advantages with both signs
    return dict(logprobs=logp, old_logprobs=old, ref_logprobs=ref, entropies=ent, completion_mask=mask, advantages=adv)


def trl_loss(inp, loss_type, beta, eps, eps_high, level, entropy_coef, max_completion_length):
    """Runs GRPOTrainer._compute_loss (TRL 1.16) on fixed inputs; returns loss, grads and metrics."""
    logp = inp["logprobs"].clone().requires_grad_(True)
    ent = inp["entropies"].clone().requires_grad_(True)
    B, T = logp.shape
    me = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, ent, None),
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level=level,
        beta=beta,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
        loss_type=loss_type,
        epsilon_low=eps,
        epsilon_high=eps_high,
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        accelerator=_Accel(),
        max_completion_length=max_completion_length,
        _entropy_bonus_enabled=entropy_coef != 0.0,
        entropy_coef=entropy_coef,
        use_adaptive_entropy=False,
        aux_loss_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )
    mask = inp["completion_mask"]
    inputs = {
        "prompt_ids": torch.zeros(B, 2, dtype=torch.long),
        "prompt_mask": torch.ones(B, 2, dtype=torch.long),
        "completion_ids": torch.zeros(B, T, dtype=torch.long),
        "completion_mask": mask,
        "advantages": inp["advantages"],
        "old_per_token_logps": inp["old_logprobs"],
        "ref_per_token_logps": inp["ref_logprobs"],
        "num_items_in_batch": mask.sum(),
    }
    loss = GRPOTrainer._compute_loss(me, None, inputs)
    loss.backward()
    metrics = {k: v[-1] for k, v in me._metrics["train"].items()}
    return loss.item(), logp.grad, ent.grad, metrics


def loss_cases():
    inp = make_inputs(seed=1234, B=6, T=10)
    variants = [
        ("base", dict(beta=0.0, eps=0.2, eps_high=0.2, level="token", entropy_coef=0.0)),
        ("kl", dict(beta=0.04, eps=0.2, eps_high=0.2, level="token", entropy_coef=0.0)),
        ("clip_higher", dict(beta=0.0, eps=0.2, eps_high=0.28, level="token", entropy_coef=0.0)),
        ("gspo", dict(beta=0.0, eps=3e-4, eps_high=4e-4, level="sequence", entropy_coef=0.0)),
        ("gspo_kl", dict(beta=0.04, eps=0.05, eps_high=0.08, level="sequence", entropy_coef=0.0)),
        ("kl_entropy", dict(beta=0.04, eps=0.2, eps_high=0.28, level="token", entropy_coef=0.01)),
    ]
    cases = []
    for loss_type in ["grpo", "bnpo", "dapo", "dr_grpo"]:
        for name, v in variants:
            loss, g_logp, g_ent, metrics = trl_loss(inp, loss_type, max_completion_length=16, **v)
            cases.append(dict(name=f"{loss_type}_{name}", loss_type=loss_type, max_completion_length=16,
                              beta=v["beta"], epsilon=v["eps"], epsilon_high=v["eps_high"],
                              importance_sampling_level=v["level"], entropy_coef=v["entropy_coef"],
                              loss=loss, grad_logprobs=g_logp.tolist(), grad_entropies=(g_ent if g_ent is not None else torch.zeros_like(g_logp)).tolist(),
                              metrics=metrics))
    return {k: t.tolist() for k, t in inp.items()}, cases


def trl_advantages(rewards, num_generations, scale_rewards):
    """grpo_trainer.py _generate_and_score_completions, "sum_then_normalize" branch, verbatim."""
    rewards = torch.tensor(rewards)
    mean_grouped_rewards = torch.nanmean(rewards.view(-1, num_generations), dim=1)
    mean_grouped_rewards = mean_grouped_rewards.repeat_interleave(num_generations, dim=0)
    if scale_rewards in ["group", "none"]:
        std_rewards = nanstd(rewards.view(-1, num_generations), dim=1)
        std_rewards = std_rewards.repeat_interleave(num_generations, dim=0)
    else:
        std_rewards = nanstd(rewards).expand_as(rewards)
    advantages = rewards - mean_grouped_rewards
    if scale_rewards != "none":
        advantages = advantages / (std_rewards + 1e-4)
    is_std_zero = torch.isclose(std_rewards, torch.zeros_like(std_rewards))
    advantages = torch.nan_to_num(advantages, nan=0.0)
    return advantages.tolist(), float(torch.nanmean(rewards)), float(nanstd(rewards)), float(is_std_zero.float().mean())


def advantage_cases():
    g = torch.Generator().manual_seed(7)
    rnd = (torch.rand(16, generator=g) * 2 - 0.5).tolist()
    sets = [("random_4x4", rnd, 4),
            ("zero_group_beside_normal", [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.5, 1.0], 4),
            ("with_nan", [1.0, float("nan"), 0.0, 0.5, 0.2, 0.9, 0.9, 0.1], 4)]
    out = []
    for name, r, G in sets:
        for scale in ["group", "batch", "none"]:
            adv, mean, std, frac = trl_advantages(r, G, scale)
            out.append(dict(name=f"{name}_{scale}", rewards=[x if not math.isnan(x) else None for x in r],
                            num_generations=G, scale_rewards=scale, advantages=adv, reward_mean=mean,
                            reward_std=std, frac_zero_std=frac))
    return out


def schedule_cases():
    out = []
    for kind, fn in [("constant", transformers.get_constant_schedule_with_warmup),
                     ("linear", transformers.get_linear_schedule_with_warmup),
                     ("cosine", transformers.get_cosine_schedule_with_warmup)]:
        for warmup, total in [(0, 10), (3, 10), (5, 7)]:
            opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2e-5)
            sched = fn(opt, warmup) if kind == "constant" else fn(opt, warmup, total)
            lrs = []
            for _ in range(total + 2):  # two steps past the end: the schedule must stay at its floor
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                sched.step()
            out.append(dict(kind=kind, warmup_steps=warmup, max_steps=total, base_lr=2e-5, lrs=lrs))
    return out


def main():
    inputs, cases = loss_cases()
    ref = dict(generator="scripts/make_loss_refs.py", trl=trl.__version__, transformers=transformers.__version__,
               torch=torch.__version__, loss_inputs=inputs, loss_cases=cases, advantage_cases=advantage_cases(),
               schedule_cases=schedule_cases())
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(ref, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(cases)} loss cases)")


if __name__ == "__main__":
    main()
