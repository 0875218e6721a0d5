# The `python` reward's worker (src/reward/python_reward.cpp): runs in the sandbox as main.py, loads
# the user's file and calls one of its functions with TRL's reward contract, one batch per request.
#
#   argv: MODULE_FILE FUNCTION [--kill-strays]
#   stdin: one JSON request per line:
#     {"prompts": [...], "completions": [...], "completion_ids": [...] | null,
#      "columns": {name: [one value per row]}, "trainer_state": {...} | null}
#   stdout: one JSON reply per line: {"values": [number | null | "nan" | "inf" | "-inf"]} or
#     {"error": "what went wrong"}.
#
# The user's prints (and anything else written to fd 1, by C extensions too) go to stderr: stdout
# carries only replies. After each call every other process of the sandbox is killed
# (--kill-strays, given when the run has its own PID namespace), so a fork bomb or a daemon does not
# outlive the batch that started it.
import importlib.util
import json
import math
import numbers
import os
import signal
import sys
import traceback
import types


def _private_pipes():
    # Requests and replies move to descriptors of their own; the user's code sees /dev/null as
    # stdin and stderr as stdout, so it can neither steal a request nor forge a reply.
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)
    sys.stdout = sys.stderr
    return requests, replies


def _load(path, name):
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, name, None)
    if fn is None or not callable(fn):
        raise LookupError(f"{os.path.basename(path)} defines no function '{name}'")
    return fn


def _encode(values, n):
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
        return {"error": f"returned {type(values).__name__}, not a list of {n} floats"}
    values = list(values)
    if len(values) != n:
        return {"error": f"returned {len(values)} values for {n} completions"}
    out = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        elif isinstance(v, numbers.Real):
            f = float(v)
            out.append(f if math.isfinite(f) else ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")))
        else:
            return {"error": f"element {i} is {type(v).__name__} ({repr(v)[:80]}), not a float or None"}
    return {"values": out}


def _kill_strays():
    # kill(-1) reaches every process this uid may signal in the PID namespace, except init and us.
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def main():
    path, name = sys.argv[1], sys.argv[2]
    kill_strays = "--kill-strays" in sys.argv[3:]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    requests, replies = _private_pipes()
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    me = os.getpid()
    fn, load_error = None, None
    try:
        fn = _load(path, name)
    except BaseException:  # noqa: B036 - the user's import may raise anything, SystemExit included
        if os.getpid() != me:
            os._exit(0)
        load_error = "loading the file failed:\n" + traceback.format_exc(limit=-8)
    for line in requests:
        req = json.loads(line)
        if load_error is not None:
            reply = {"error": load_error}
        else:
            state = req.get("trainer_state")
            kwargs = dict(req.get("columns") or {})
            kwargs.update(prompts=req["prompts"], completions=req["completions"],
                          completion_ids=req.get("completion_ids"),
                          trainer_state=types.SimpleNamespace(**state) if state is not None else None)
            try:
                reply = _encode(fn(**kwargs), len(req["completions"]))
            except BaseException:  # noqa: B036
                if os.getpid() != me:
                    os._exit(0)  # a child the function forked: it must not answer
                reply = {"error": "raised:\n" + traceback.format_exc(limit=-8)}
            if os.getpid() != me:
                os._exit(0)
        if kill_strays:
            _kill_strays()
        replies.write(json.dumps(reply, ensure_ascii=True) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
