#!/usr/bin/env python3
"""Reference data for tests/tokenizer/, from Hugging Face `tokenizers` and `transformers`.

  scripts/make_tokenizer_refs.py                 regenerate everything under tests/tokenizer/data/
  scripts/make_tokenizer_refs.py --extract-only  only (re)write the SmolLM2 tokenizer.json files into
                                                 the data cache (the tests call this when they are
                                                 missing: at 3.5 MB they are not committed)

SmolLM2 (needs ~/.cache/grpo/data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf, scripts/fetch_assets.sh):
  <cache>/smollm2/hf_converted/   transformers' GGUF conversion (AutoTokenizer.from_pretrained(dir,
                                  gguf_file=...).save_pretrained): tokenizer.json with a plain ByteLevel
                                  pre-tokenizer, tokenizer_config.json, chat_template.jinja.
  <cache>/smollm2/hf/             the same with the pre-tokenizer SmolLM2 really has on the Hub and that
                                  llama.cpp uses for tokenizer.ggml.pre = "smollm" (llama-vocab.cpp:
                                  "\\p{N}" then the GPT-2 regex): Sequence[Digits(individual_digits),
                                  ByteLevel]. transformers' converter drops the digit split; this copy
                                  is the one the GGUF-metadata tokenizer must equal.

Committed under tests/tokenizer/data/:
  qwen2_style/tokenizer.json   a small byte-level BPE trained here with `tokenizers` on generated text,
                               Qwen2's Split regex (digits one by one), special <|endoftext|>,
                               <|im_start|>, <|im_end|> and non-special added <think>, </think>.
  (qwen2_style_nfc in ids.json: qwen2_style with Qwen2's NFC normalizer, on 300 strings + nfc.json's)
  llama3_style/tokenizer.json  the same with Llama-3's regex (\\p{N}{1,3}), ignore_merges, and a special
                               <mask> with lstrip/rstrip.
  strings.json                 2,100 test strings (fixed seed) and 4 long words: many scripts, numbers, whitespace runs,
                               code, emojis with ZWJ/skin tones/flags, inline special tokens, contractions.
  ids.json                     HF `tokenizers` encode(s, add_special_tokens=False) of every string by
                               every tokenizer (smollm2, smollm2_converted on the first 500, qwen2_style,
                               llama3_style), and HF decode of random id sequences (invalid UTF-8 ->
                               U+FFFD) for each.
  chat_smollm2.json            transformers apply_chat_template renders of a few conversations.
"""
import json
import os
import pathlib
import random
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "tokenizer" / "data"
DATA = pathlib.Path(os.environ.get("GRPO_DATA_DIR", pathlib.Path.home() / ".cache" / "grpo" / "data"))
SMOL_DIR = DATA / "smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

QWEN2_RE = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA3_RE = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def extract_smollm2():
    from transformers import AutoTokenizer

    gguf = SMOL_DIR / GGUF_NAME
    if not gguf.exists():
        sys.exit(f"{gguf} not found: run scripts/fetch_assets.sh")
    conv = SMOL_DIR / "hf_converted"
    tok = AutoTokenizer.from_pretrained(str(SMOL_DIR), gguf_file=GGUF_NAME)
    tok.save_pretrained(str(conv))
    fixed = SMOL_DIR / "hf"
    fixed.mkdir(parents=True, exist_ok=True)
    for f in conv.iterdir():
        shutil.copy(f, fixed / f.name)
    j = json.loads((conv / "tokenizer.json").read_text())
    bl = j["pre_tokenizer"]
    assert bl["type"] == "ByteLevel", bl
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, bl]}
    (fixed / "tokenizer.json").write_text(json.dumps(j, ensure_ascii=False))
    return conv, fixed


# ------------------------------------------------------------------------------------------ strings

WORDS = {
    "latin": ["hello", "world", "The", "quick", "brown", "fox", "Jumps", "OVER", "lazy", "dog", "tokenizer", "a", "I"],
    "accents": ["café", "naïve", "résumé", "Ångström", "über", "señor", "façade", "Øresund", "Łódź", "ĳssel"],
    "greek": ["αβγ", "Καλημέρα", "λόγος", "Ωμέγα"],
    "cyrillic": ["привет", "Москва", "ёжик", "Україна"],
    "arabic": ["مرحبا", "العالم", "كتاب"],
    "hebrew": ["שלום", "עולם"],
    "devanagari": ["नमस्ते", "दुनिया", "हिन्दी"],
    "thai": ["สวัสดี", "ภาษาไทย"],
    "cjk": ["你好", "世界", "中文分词", "漢字"],
    "japanese": ["こんにちは", "カタカナ", "日本語です"],
    "korean": ["안녕하세요", "한국어"],
    "misc": ["ʻokina", "ß", "ﬁne", "Ⅻ", "ǅ", "ᾯ", "ſtraße"],
}
NUMBERS = ["0", "7", "42", "123", "2024", "12345", "3.14159", "1,000,000", "99999999999999999999",
           "-17", "+3e-10", "0x1F", "1/2", "٣٤٥", "１２３", "²³", "½", "Ⅻ", "৩", "007", "10%", "$4.99"]
WS = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \n", "\n ", " \t ", "\u00a0", "\u3000",
      "\u2003", "\u2028", "\x0b", "\x0c", "\u0085", "      "]
CODE = ["def f(x):\n    return x**2  # square", "int main() { return 0; }", "for (i = 0; i < n; ++i)",
        "{\"key\": [1, 2, 3]}", "if x != y && z >= 0:", "print(f'{a!r}')", "#include <vector>",
        "SELECT * FROM t WHERE id=3;", "x => x + 1", "    \n\tpass", "a[i][j] += b;", "\\frac{a}{b}",
        "$x^2 + y^2 = z^2$", "https://example.com/a?b=c&d=e", "user@example.org", "C:\\Windows\\path"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🏳️‍🌈", "🤷‍♀️", "✨", "🎉🎉", "🧑🏿‍💻", "©", "™", "∑", "→", "★"]
SPECIAL = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<|im_start|>user\n",
           "<|im_sta", "<|im_end|><|im_start|>", "< think >", "<|endoftext|>\n", " <mask>  ", "x<mask>\ty"]
CONTRACTIONS = ["it's", "don't", "we're", "I've", "I'm", "you'll", "he'd", "IT'S", "DON'T", "We'Re", "'s",
                "'t", "o'clock", "rock'n'roll", "'ſ", "''", "'", "Y'ALL'D'VE"]
PUNCT = ["!", "?!", "...", "—", "–", "«»", "“quoted”", "(", ")", "[]", "{}", ";", ":", ",", ".", "~~~",
         "***", "---", "@#$%^&*", "\u200b", "\ufeff", "\x1c", "e\u0301", "\u0301", "\u200d", "•", "¿Qué?"]


def random_char(rng):
    ranges = [(0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x5ff), (0x600, 0x6ff),
              (0x900, 0x97f), (0xe00, 0xe7f), (0x1100, 0x11ff), (0x2000, 0x206f), (0x2190, 0x23ff),
              (0x3040, 0x30ff), (0x4e00, 0x4fff), (0xac00, 0xad00), (0x1f300, 0x1f64f), (0x1f900, 0x1f9ff)]
    lo, hi = rng.choice(ranges)
    return chr(rng.randint(lo, hi))


def fragment(rng):
    k = rng.random()
    if k < 0.30:
        return rng.choice(WORDS[rng.choice(list(WORDS))])
    if k < 0.40:
        return rng.choice(NUMBERS) if rng.random() < 0.7 else str(rng.randint(0, 10 ** rng.randint(1, 25)))
    if k < 0.50:
        return rng.choice(WS)
    if k < 0.58:
        return rng.choice(CODE)
    if k < 0.66:
        return rng.choice(EMOJI)
    if k < 0.72:
        return rng.choice(SPECIAL)
    if k < 0.80:
        return rng.choice(CONTRACTIONS)
    if k < 0.90:
        return rng.choice(PUNCT)
    return "".join(random_char(rng) for _ in range(rng.randint(1, 4)))


def make_strings(n, seed=20241129):
    rng = random.Random(seed)
    out = ["", " ", "  ", "\n", "\t", "a", "hello world", "Hello  world  ", "   leading", "trailing   ",
           "x \n y", "a\n\n\nb", "tab\there", "\r\n\r\n", " 's", "'s'", "2+2=4", "12345678901234567890",
           "<|im_start|>assistant\n<think>", "<|im_end|>", "👨‍👩‍👧‍👦👍🏽🇫🇷"]
    seps = ["", " ", " ", " ", "\n", "  ", "\t", ""]
    while len(out) < n:
        parts = [fragment(rng) for _ in range(rng.randint(1, 5))]
        s = ""
        for p in parts:
            s += p + rng.choice(seps)
        if rng.random() < 0.1:
            s += rng.choice(WS)  # trailing whitespace
        out.append(s)
    return out


def corpus(n_lines, seed):
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        lines.append(" ".join(fragment(rng) for _ in range(rng.randint(3, 12))))
    return lines


# ------------------------------------------------------------------------------------------ tokenizers

def train_style(name, regex, vocab_size, ignore_merges):
    from tokenizers import Tokenizer, Regex, AddedToken, models, pre_tokenizers, decoders, trainers

    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], show_progress=False)
    tok.train_from_iterator(corpus(4000, seed=7 if ignore_merges else 5), trainer=trainer)
    tok.add_tokens([AddedToken("<think>", special=False, normalized=False),
                    AddedToken("</think>", special=False, normalized=False)])
    if ignore_merges:  # exercise lstrip/rstrip (whitespace around the token is swallowed)
        tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=True, normalized=False)])
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    tok.save(str(d / "tokenizer.json"), pretty=False)
    return d / "tokenizer.json"


def random_id_seqs(tok, n, seed):
    rng = random.Random(seed)
    v = tok.get_vocab_size()
    return [[rng.randrange(v) for _ in range(rng.randint(1, 8))] for _ in range(n)]


def main():
    from tokenizers import Tokenizer

    if "--extract-only" in sys.argv:
        extract_smollm2()
        return
    OUT.mkdir(parents=True, exist_ok=True)
    conv, fixed = extract_smollm2()
    strings = make_strings(2100)
    # A few long words: BPE merging must stay exact (and fast) on them.
    rng = random.Random(99)
    strings += ["".join(rng.choice("0123456789") for _ in range(1500)),
                "a" * 1200 + " " * 300 + "b",
                "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(1500)),
                "ﷺ" * 200 + "😀" * 200]
    tokenizers = {
        "smollm2": (Tokenizer.from_file(str(fixed / "tokenizer.json")), len(strings)),
        "smollm2_converted": (Tokenizer.from_file(str(conv / "tokenizer.json")), 500),
        "qwen2_style": (Tokenizer.from_file(str(train_style("qwen2_style", QWEN2_RE, 2000, False))), len(strings)),
        "llama3_style": (Tokenizer.from_file(str(train_style("llama3_style", LLAMA3_RE, 1200, True))), 500),
    }
    # Qwen2's real tokenizer.json has an NFC normalizer: the same Qwen2-style vocabulary with it, on
    # the first 300 strings plus the NFC reference strings of scripts/make_unicode_tables.py.
    qj = json.loads((OUT / "qwen2_style" / "tokenizer.json").read_text())
    qj["normalizer"] = {"type": "NFC"}
    nfc_strings = [e["s"] for e in json.loads((OUT / "nfc.json").read_text())]
    ids = {}
    nfc_tok = Tokenizer.from_str(json.dumps(qj))
    nfc_all = strings[:300] + nfc_strings
    ids["qwen2_style_nfc"] = {
        "n": len(nfc_all), "strings": nfc_all,
        "encode": [" ".join(map(str, nfc_tok.encode(s, add_special_tokens=False).ids)) for s in nfc_all],
        "decode_ids": [], "decode": [],
    }
    for name, (tok, n) in tokenizers.items():
        enc = [tok.encode(s, add_special_tokens=False).ids for s in strings[:n]]
        for s, e in zip(strings[:n], enc):  # the references must themselves round-trip
            if not (name == "llama3_style" and "<mask>" in s):  # lstrip/rstrip drop whitespace
                assert tok.decode(e, skip_special_tokens=False) == s, (name, s)
        seqs = random_id_seqs(tok, 200, seed=len(name))
        ids[name] = {
            "n": n,
            "encode": [" ".join(map(str, e)) for e in enc],
            "decode_ids": [" ".join(map(str, q)) for q in seqs],
            "decode": [tok.decode(q, skip_special_tokens=False) for q in seqs],
        }
    (OUT / "strings.json").write_text(json.dumps(strings, ensure_ascii=False) + "\n")
    (OUT / "ids.json").write_text(json.dumps(ids, ensure_ascii=False) + "\n")

    # Chat template: transformers renders SmolLM2's own Jinja template (from the GGUF).
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(conv))
    convs = [
        [{"role": "user", "content": "What is 2+2?"}],
        [{"role": "system", "content": "You are a math tutor."}, {"role": "user", "content": "Solve x^2=4."}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
         {"role": "user", "content": "Tell me a joke.\nMake it short."}],
        [{"role": "system", "content": ""}, {"role": "user", "content": "  spaced  "},
         {"role": "assistant", "content": "<think>\nok\n</think>\nanswer"}],
        [{"role": "user", "content": "多语言 🎉 text\twith\ttabs"}],
    ]
    chats = []
    for msgs in convs:
        for gen in (True, False):
            chats.append({"messages": msgs, "add_generation_prompt": gen,
                          "text": hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)})
    (OUT / "chat_smollm2.json").write_text(json.dumps(chats, ensure_ascii=False, indent=1) + "\n")
    for f in sorted(OUT.rglob("*")):
        if f.is_file():
            print(f"{f.relative_to(ROOT)}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
