# TRL's documented custom reward, "Example 1: Reward longer completions" (GRPOTrainer docs), unchanged.
def reward_func(completion_ids, **kwargs):
    """Reward function that assigns higher scores to longer completions (in terms of token count)."""
    return [float(len(ids)) for ids in completion_ids]
