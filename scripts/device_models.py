"""Shared by the GPU acceptance run's Python steps (scripts/device_check.sh): random-weight Hugging
Face models written with transformers, a synthetic byte-level tokenizer that needs no download, and
a peak-memory sampler for a child process.

The tokenizer: a byte-level BPE whose ids 0..255 are the 256 bytes (so a prompt of n ASCII bytes is
n tokens, and the ids are known without a tokenizer on the transformers side), filled up to the
model's vocabulary with printable pieces (any sampled id decodes), no merges, no added tokens and no
end token anywhere: completions always run to max_completion_length, as transformers' generate()
with min_new_tokens does. The GPU machine has no network, so nothing here downloads.
"""
import json
import os
import subprocess
import threading
import time


def byte_level_chars():
    """GPT-2's bytes_to_unicode: byte b -> the printable character byte-level BPE stores it as."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


def write_tokenizer(path, vocab_size):
    """tokenizer.json with vocab_size ids: 0..255 the bytes, then '<t256>', '<t257>', ... ."""
    assert vocab_size >= 256, vocab_size
    vocab = {c: i for i, c in enumerate(byte_level_chars())}
    for i in range(256, vocab_size):
        vocab[f"<t{i}>"] = i
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }
    with open(path, "w") as f:
        json.dump(tok, f)


def prompt_text(rng, n):
    """n lowercase ASCII letters: n tokens under write_tokenizer's vocabulary (ids = byte values)."""
    return "".join(chr(ord("a") + int(rng.integers(0, 26))) for _ in range(n))


# Architectures of the parity step: a dense Llama, a Qwen2 (q/k/v biases, tied head) and a Qwen2-MoE
# (routed + shared experts). `scale` widens the weights so that logits are far from uniform and an
# error in any layer shows in the log-probabilities.
def hf_config(arch, vocab, hidden, layers, heads=4, kv_heads=2):
    import transformers as T

    common = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                  num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=4096,
                  rms_norm_eps=1e-6, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    if arch == "llama":
        return T.LlamaConfig(tie_word_embeddings=False, rope_theta=10000.0, **common)
    if arch == "qwen2":
        return T.Qwen2Config(tie_word_embeddings=True, rope_theta=1e6, **common)
    if arch == "qwen2_moe":
        return T.Qwen2MoeConfig(tie_word_embeddings=False, rope_theta=1e6, num_experts=4, num_experts_per_tok=2,
                                moe_intermediate_size=hidden, shared_expert_intermediate_size=hidden,
                                norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[], **common)
    raise ValueError(arch)


def qwen25_05b_config():
    """Qwen2.5-0.5B's shape (config.json of Qwen/Qwen2.5-0.5B), no end token."""
    import transformers as T

    return T.Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                         rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True,
                         bos_token_id=None, eos_token_id=None, pad_token_id=None)


def save_model(cfg, out_dir, seed=0, scale=None, dtype="float32", device="cpu"):
    """Random weights (seeded), saved with config.json (no bos/eos/pad) and the synthetic tokenizer."""
    import torch
    import transformers as T

    torch.manual_seed(seed)
    with torch.device(device):
        model = T.AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype))
    if scale is not None:
        with torch.no_grad():
            for name, p in sorted(model.named_parameters()):
                if name.endswith("norm.weight"):
                    p.copy_(1.0 + 0.2 * torch.randn_like(p))
                else:
                    p.copy_(scale * torch.randn_like(p))
    model.save_pretrained(out_dir, safe_serialization=True)
    gen = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)  # it names bos/eos ids of its own
    path = os.path.join(out_dir, "config.json")
    c = json.load(open(path))
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        c.pop(k, None)
    json.dump(c, open(path, "w"), indent=1)
    write_tokenizer(os.path.join(out_dir, "tokenizer.json"), cfg.vocab_size)
    return sum(p.numel() for p in model.parameters())


class PeakMemory:
    """Peak memory of one child process. On CUDA: nvidia-smi's per-process figure (CUDA context
    included), sampled every 100 ms; where nvidia-smi cannot see the process (a container's pid
    namespace), the device's used memory above what it was at the start. On CPU: the child's peak
    RSS (VmHWM) from /proc."""

    def __init__(self, pid, cuda):
        self.pid, self.cuda, self.peak_mb, self._stop = pid, cuda, 0.0, False
        self.peak_device_mb, self.baseline_mb = 0.0, self._device_used() if cuda else 0.0
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    @staticmethod
    def _device_used():
        r = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                           capture_output=True, text=True)
        try:
            return float(r.stdout.split()[0])
        except (IndexError, ValueError):
            return 0.0

    def _sample(self):
        if self.cuda:
            self.peak_device_mb = max(self.peak_device_mb, self._device_used() - self.baseline_mb)
            r = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                               capture_output=True, text=True)
            for line in r.stdout.splitlines():
                parts = [x.strip() for x in line.split(",")]
                if len(parts) == 2 and parts[0] == str(self.pid) and parts[1].isdigit():
                    return float(parts[1])
            return 0.0
        try:
            for line in open(f"/proc/{self.pid}/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return 0.0

    def _run(self):
        while not self._stop:
            self.peak_mb = max(self.peak_mb, self._sample())
            time.sleep(0.1)

    def stop(self):
        self._stop = True
        self._t.join()
        return self.peak_mb if self.peak_mb > 0 or not self.cuda else self.peak_device_mb


def run_measured(cmd, cuda, env=None, timeout=None):
    """Runs cmd; returns (returncode, stdout, stderr, seconds, peak_mb)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    mem = PeakMemory(p.pid, cuda)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    peak = mem.stop()
    return p.returncode, out, err, time.perf_counter() - t0, peak
