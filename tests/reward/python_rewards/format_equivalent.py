# The built-in `format` reward (strict mode, default tags; src/reward/format_reward.cpp) written as a
# TRL reward function: a training run with it must give the same reward curve as the built-in
# (tests/e2e python_reward_e2e_test.cpp).
WS = " \t\n\r\f\v"
TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def _text(x):
    return x[-1]["content"] if isinstance(x, list) else x


def _strict(prompt, completion):
    if prompt.strip(WS).endswith("<think>"):
        completion = "<think>" + completion  # the prompt opened the think block
    s = completion.strip(WS)
    if any(s.count(t) != 1 for t in TAGS) or not s.startswith("<think>") or not s.endswith("</answer>"):
        return 0.0
    b, c, d = s.find("</think>"), s.find("<answer>"), s.find("</answer>")
    if not (len("<think>") <= b and b + len("</think>") <= c and c + len("<answer>") <= d):
        return 0.0
    if s[b + len("</think>"):c].strip(WS) or not s[c + len("<answer>"):d].strip(WS):
        return 0.0
    return 1.0


def format_strict(prompts, completions, **kwargs):
    return [_strict(_text(p), _text(c)) for p, c in zip(prompts, completions)]
