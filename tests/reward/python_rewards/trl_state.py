# Reads TRL's trainer_state as a reward function written for TRL would (state.global_step etc.).
def step_reward(completions, trainer_state, **kwargs):
    return [float(trainer_state.global_step) + 100.0 * trainer_state.max_steps for _ in completions]
