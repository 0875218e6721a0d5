#!/usr/bin/env python3
"""Lists the headers that break the public/private rule of docs/architecture.md ("Headers"):
a layer's header is public (include/grpo/<layer>/) iff a file outside that layer includes it,
directly or through another public header of the layer; otherwise it is private (src/<layer>/).
Files of a layer: src/<layer>/ and include/grpo/<layer>/; src/sandbox_init_main.cpp belongs to
reward (grpo-sandbox-init is built from the reward layer's own sandbox_init.cpp).
Usage: scripts/check_headers.py [REPO_ROOT]. Exit 1 when a header breaks the rule."""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
OWN_FILES = {"src/sandbox_init_main.cpp": "reward"}  # executables built from one layer's sources

files = []
for top in ("src", "include", "tests", "bench", "kernels"):
    for d, _, names in os.walk(os.path.join(root, top)):
        files += [os.path.relpath(os.path.join(d, n), root) for n in names
                  if n.endswith((".h", ".cpp", ".cu", ".cuh", ".inc"))]


def layer_of(path):
    """The layer a file belongs to, or None (tests, bench, kernels, src/main.cpp)."""
    p = path.split("/")
    if path in OWN_FILES:
        return OWN_FILES[path]
    if p[0] == "src" and len(p) > 2:
        return p[1]
    if p[0] == "include" and len(p) > 3:
        return p[2]
    return None


def resolve(including, name):
    if name.startswith("grpo/"):
        return "include/" + name
    for cand in (os.path.join(os.path.dirname(including), name), os.path.join("src", name)):
        cand = os.path.normpath(cand)
        if os.path.exists(os.path.join(root, cand)):
            return cand
    return None


users = {}  # header -> files that include it
for f in files:
    with open(os.path.join(root, f), errors="replace") as fh:
        for name in INCLUDE.findall(fh.read()):
            target = resolve(f, name)
            if target:
                users.setdefault(target, set()).add(f)

headers = [f for f in files if f.endswith(".h") and (f.startswith("include/grpo/") or
                                                    (f.startswith("src/") and f.count("/") == 2))]
public = set()  # headers the rule makes public: a fixed point over "included by a public header"
grew = True
while grew:
    grew = False
    for h in headers:
        if h not in public and any(layer_of(u) != layer_of(h) or u in public for u in users.get(h, ())):
            public.add(h)
            grew = True

bad = 0
for h in sorted(headers):
    is_public = h.startswith("include/")
    if is_public != (h in public):
        bad += 1
        why = "public, but only its layer includes it" if is_public else "private, but included from outside its layer"
        print(f"{h}: {why}: {', '.join(sorted(users.get(h, ())))}")
print(f"{bad} header(s) break the rule" if bad else "every header follows the rule")
sys.exit(1 if bad else 0)
