# Reward functions that misbehave in every way the python reward must survive (python_reward_test).
import math
import os
import time


def good(completions, **kwargs):
    return [float(len(c)) for c in completions]


def skip_some(completions, **kwargs):
    # TRL's multi-task convention: None for rows this function does not apply to.
    return [None if "skip" in c else 1.0 for c in completions]


def raises(completions, **kwargs):
    return [1.0 / 0 for _ in completions]


def wrong_length(completions, **kwargs):
    return [1.0] * (len(completions) + 1)


def not_numbers(completions, **kwargs):
    return ["high" for _ in completions]


def nan_for_first(completions, **kwargs):
    return [math.nan if i == 0 else 0.5 for i in range(len(completions))]


def loops_forever(completions, **kwargs):
    while True:
        pass


def sleeps(completions, **kwargs):
    time.sleep(3600)


def fork_bomb(completions, **kwargs):
    while True:
        os.fork()


def prints_100mb(completions, **kwargs):
    chunk = "x" * (1 << 20)
    for _ in range(100):
        print(chunk)
    return [1.0 for _ in completions]


def exits(completions, **kwargs):
    os._exit(3)


def columns_and_state(prompts, completions, completion_ids, trainer_state, answer, **kwargs):
    # Echo what TRL would pass: the answer column, and whether the prompts are message lists.
    chat = isinstance(prompts[0], list)
    return [float(a) + (100.0 if chat else 0.0) for a in answer]
