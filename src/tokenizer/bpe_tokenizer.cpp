#include "grpo/tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <queue>
#include <nlohmann/json.hpp>

#include "grpo/tokenizer/byte_level.h"
#include "grpo/tokenizer/unicode.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"

namespace grpo::tok {
namespace {

using json = nlohmann::json;
constexpr size_t kCacheMax = 1 << 16;     // words; cleared when full
constexpr size_t kCacheWordMax = 128;     // bytes; longer words are not cached

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

// Byte length of the whitespace run that ends at `end` (scanning back over whole code points).
size_t ws_before(std::string_view s, size_t begin, size_t end) {
  size_t start = end;
  // Walk forward from `begin` remembering where the trailing whitespace run starts.
  size_t i = begin, run_start = end;
  bool in_run = false;
  while (i < end) {
    size_t at = i;
    char32_t c = next_code_point(s, i);
    if (is_whitespace(c)) {
      if (!in_run) run_start = at, in_run = true;
    } else {
      in_run = false;
    }
  }
  if (in_run) start = run_start;
  return end - start;
}

size_t ws_after(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size()) {
    size_t k = j;
    if (!is_whitespace(next_code_point(s, k))) break;
    j = k;
  }
  return j - i;
}

}  // namespace

BpeTokenizer::BpeTokenizer(std::vector<std::string> tokens, const std::vector<std::pair<std::string, std::string>>& merges,
                           std::vector<AddedToken> added, std::vector<PreStep> pre_steps, bool add_prefix_space,
                           bool ignore_merges, std::optional<int32_t> unk, std::string source)
    : pieces_(std::move(tokens)),
      added_(std::move(added)),
      pre_steps_(std::move(pre_steps)),
      add_prefix_space_(add_prefix_space),
      ignore_merges_(ignore_merges),
      unk_(unk),
      source_(std::move(source)) {
  for (const auto& a : added_) {
    GRPO_REQUIRE(a.id >= 0, source_, ": added token '", a.content, "' has negative id ", a.id);
    GRPO_REQUIRE(!a.content.empty(), source_, ": added token with id ", a.id, " has empty content");
    if (static_cast<size_t>(a.id) >= pieces_.size()) pieces_.resize(a.id + 1);
  }
  ids_.reserve(pieces_.size() * 2);
  for (size_t i = 0; i < pieces_.size(); ++i)
    if (!pieces_[i].empty()) ids_.emplace(pieces_[i], static_cast<int32_t>(i));
  special_flag_.assign(pieces_.size(), 0);
  added_flag_.assign(pieces_.size(), 0);
  for (const auto& a : added_) {
    pieces_[a.id] = a.content;
    ids_[a.content] = a.id;
    added_flag_[a.id] = 1;
    special_flag_[a.id] = a.special;
  }
  std::stable_sort(added_.begin(), added_.end(),
                   [](const AddedToken& x, const AddedToken& y) { return x.content.size() > y.content.size(); });
  for (size_t k = 0; k < added_.size(); ++k)
    added_by_byte_[static_cast<unsigned char>(added_[k].content[0])].push_back(static_cast<uint32_t>(k));

  merges_.reserve(merges.size() * 2);
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    auto ia = ids_.find(a), ib = ids_.find(b), im = ids_.find(a + b);
    const char* missing = ia == ids_.end() ? "left part" : ib == ids_.end() ? "right part" : im == ids_.end() ? "merged token" : nullptr;
    GRPO_REQUIRE(!missing, source_, ": merge #", r, " '", a, " ", b, "': its ", missing, " is not in the vocabulary");
    merges_.emplace(pair_key(ia->second, ib->second), std::make_pair(static_cast<int32_t>(r), im->second));
  }
  const auto& bs = byte_to_unicode_strings();
  for (int b = 0; b < 256; ++b) {
    auto it = ids_.find(bs[b]);
    byte_ids_[b] = it == ids_.end() ? -1 : it->second;
  }
  if (unk_) GRPO_REQUIRE(*unk_ >= 0 && *unk_ < vocab_size(), source_, ": unk id ", *unk_, " is out of range");
}

// Merges `sym` in place: repeatedly the adjacent pair with the lowest rank, the leftmost on ties,
// which is the order HF's BPE::merge_word pops its heap in. A heap over a linked list keeps long
// words (runs of digits, base64 blobs) O(n log n) instead of O(n^2).
void BpeTokenizer::merge_symbols(std::vector<int32_t>& sym) const {
  const int32_t n = static_cast<int32_t>(sym.size());
  if (n < 2) return;
  struct Cand {
    int32_t rank, pos, right, left_id, right_id, merged;
    bool operator<(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }  // min-heap
  };
  std::vector<int32_t> prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
  std::priority_queue<Cand> heap;
  auto push = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    auto it = merges_.find(pair_key(sym[l], sym[r]));
    if (it != merges_.end()) heap.push({it->second.first, l, r, sym[l], sym[r], it->second.second});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i, i + 1);
  std::vector<uint8_t> alive(n, 1);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    // Stale when either side has merged since the candidate was pushed.
    if (!alive[c.pos] || !alive[c.right] || next[c.pos] != c.right || sym[c.pos] != c.left_id || sym[c.right] != c.right_id)
      continue;
    sym[c.pos] = c.merged;
    alive[c.right] = 0;
    next[c.pos] = next[c.right];
    if (next[c.pos] >= 0) prev[next[c.pos]] = c.pos;
    push(prev[c.pos], c.pos);
    push(c.pos, next[c.pos]);
  }
  size_t w = 0;
  for (int32_t i = 0; i < n; ++i)
    if (alive[i]) sym[w++] = sym[i];
  sym.resize(w);
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= kCacheWordMax;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> sym;
  if (ignore_merges_) {
    auto it = ids_.find(bytes_to_unicode(word));
    if (it != ids_.end()) sym.push_back(it->second);
  }
  if (sym.empty()) {
    sym.reserve(word.size());
    for (unsigned char b : word) {
      if (byte_ids_[b] >= 0) sym.push_back(byte_ids_[b]);
      else if (unk_) sym.push_back(*unk_);
      // else: dropped, as HF's BPE does for a char with no token and no unk_token
    }
    merge_symbols(sym);
  }
  out.insert(out.end(), sym.begin(), sym.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheMax) cache_.clear();
    cache_.emplace(std::string(word), std::move(sym));
  }
}

void BpeTokenizer::encode_segment(std::string_view seg, std::vector<int32_t>& out) const {
  if (seg.empty()) return;
  std::string normalized;
  if (nfc_) {
    normalized = nfc(seg);
    seg = normalized;
  }
  std::string prefixed;
  if (add_prefix_space_ && seg[0] != ' ') {
    prefixed = " " + std::string(seg);
    seg = prefixed;
  }
  std::vector<std::string_view> pieces{seg}, next;
  for (const auto& step : pre_steps_) {
    next.clear();
    for (auto p : pieces) {
      auto parts = step.kind == PreStep::DIGITS ? split_digits(p, step.individual_digits) : split_words(p, step.pattern);
      next.insert(next.end(), parts.begin(), parts.end());
    }
    pieces.swap(next);
  }
  for (auto p : pieces) encode_word(p, out);
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  size_t seg_start = 0, i = 0;
  while (i < text.size()) {
    const AddedToken* hit = nullptr;
    for (uint32_t k : added_by_byte_[static_cast<unsigned char>(text[i])]) {
      if (text.compare(i, added_[k].content.size(), added_[k].content) == 0) {
        hit = &added_[k];  // longest first
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t seg_end = i;
    if (hit->lstrip) seg_end -= ws_before(text, seg_start, i);
    encode_segment(text.substr(seg_start, seg_end - seg_start), out);
    out.push_back(hit->id);
    i += hit->content.size();
    if (hit->rstrip) i += ws_after(text, i);
    seg_start = i;
  }
  encode_segment(text.substr(seg_start), out);
  return out;
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    GRPO_REQUIRE(id >= 0 && id < vocab_size(), "decode: token id ", id, " is out of range [0, ", vocab_size(), ")");
    if (skip_special && special_flag_[id]) continue;
    // HF ByteLevel decoder: a token whose every char is in the byte alphabet becomes those bytes,
    // any other token (e.g. an added token containing a space) its own UTF-8.
    const std::string& p = pieces_[id];
    std::string tb;
    bool all = true;
    for (size_t k = 0; k < p.size();) {
      int b = unicode_to_byte(next_code_point(p, k));
      if (b < 0) {
        all = false;
        break;
      }
      tb += static_cast<char>(b);
    }
    bytes += all ? tb : p;
  }
  return utf8_lossy(bytes);
}

std::string BpeTokenizer::piece(int32_t id) const {
  GRPO_REQUIRE(id >= 0 && id < vocab_size(), "token id ", id, " is out of range [0, ", vocab_size(), ")");
  return pieces_[id];
}

std::optional<int32_t> BpeTokenizer::find_token(std::string_view piece) const {
  auto it = ids_.find(std::string(piece));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

bool BpeTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && special_flag_[id];
}

std::string BpeTokenizer::describe() const {
  return str("byte-level BPE from ", source_, " (", vocab_size(), " tokens, ", merges_.size(), " merges, ",
             added_.size(), " added tokens)");
}

// ---------------------------------------------------------------- tokenizer.json

namespace {

std::vector<BpeTokenizer::PreStep> parse_pre_tokenizer(const json& j, const std::string& where, bool& byte_level,
                                                       bool& add_prefix_space) {
  std::vector<BpeTokenizer::PreStep> steps;
  GRPO_REQUIRE(j.is_object() && j.contains("type"), where, ": expected an object with a \"type\"");
  std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    GRPO_REQUIRE(j.contains("pretokenizers") && j["pretokenizers"].is_array(), where, ": Sequence without \"pretokenizers\"");
    for (size_t k = 0; k < j["pretokenizers"].size(); ++k) {
      auto s = parse_pre_tokenizer(j["pretokenizers"][k], str(where, ".pretokenizers[", k, "]"), byte_level, add_prefix_space);
      steps.insert(steps.end(), s.begin(), s.end());
    }
  } else if (type == "ByteLevel") {
    byte_level = true;
    add_prefix_space = j.value("add_prefix_space", false);
    if (j.value("use_regex", true)) steps.push_back({BpeTokenizer::PreStep::SPLIT, SplitPattern::GPT2, false});
  } else if (type == "Split") {
    GRPO_REQUIRE(j.contains("pattern") && j["pattern"].is_object() && j["pattern"].contains("Regex"), where,
                 ": only Split with a {\"Regex\": ...} pattern is supported");
    std::string rx = j["pattern"]["Regex"].get<std::string>();
    auto p = split_pattern_from_regex(rx);
    GRPO_REQUIRE(p.has_value(), where, ": unsupported Split regex ", json(rx).dump(),
                 " (supported: the GPT-2, Llama-3 and Qwen2 patterns)");
    std::string behavior = j.value("behavior", "Isolated");
    GRPO_REQUIRE(behavior == "Isolated" && !j.value("invert", false), where, ": Split behavior '", behavior,
                 "' (invert=", j.value("invert", false), ") is not supported; expected Isolated without invert");
    steps.push_back({BpeTokenizer::PreStep::SPLIT, *p, false});
  } else if (type == "Digits") {
    steps.push_back({BpeTokenizer::PreStep::DIGITS, SplitPattern::GPT2, j.value("individual_digits", false)});
  } else {
    throw InputError(str(where, ": pre-tokenizer type '", type,
                         "' is not supported (supported: Sequence, ByteLevel, Split, Digits)"));
  }
  return steps;
}

std::string token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return "";
}

std::optional<json> read_json_if_exists(const std::filesystem::path& p) {
  if (!std::filesystem::exists(p)) return std::nullopt;
  try {
    return json::parse(fs::read_file(p.string()));
  } catch (const json::exception& e) {
    throw InputError(str(p.string(), ": malformed JSON: ", e.what()));
  }
}

}  // namespace

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_tokenizer_json(const std::string& path) {
  json j;
  try {
    j = json::parse(fs::read_file(path));
  } catch (const json::exception& e) {
    throw InputError(str(path, ": malformed JSON: ", e.what()));
  }
  try {
    GRPO_REQUIRE(j.is_object(), path, ": expected a JSON object (a Hugging Face tokenizer.json)");
    GRPO_REQUIRE(j.contains("model") && j["model"].is_object(), path, ": missing \"model\" (not a tokenizer.json?)");
    const json& m = j["model"];
    std::string mtype = m.value("type", "");
    GRPO_REQUIRE(mtype == "BPE", path, ": model.type is '", mtype, "'; only BPE tokenizer.json files are supported");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      GRPO_REQUIRE(!m.contains(k) || m[k].is_null() || m[k].get<std::string>().empty(), path, ": model.", k,
                   " is not supported (byte-level BPE does not use it)");
    GRPO_REQUIRE(!m.value("byte_fallback", false), path,
                 ": model.byte_fallback BPE (sentencepiece-style, e.g. Llama-2) is not supported from tokenizer.json; "
                 "use the model's tokenizer.model with type sentencepiece");
    GRPO_REQUIRE(m.contains("vocab") && m["vocab"].is_object(), path, ": model.vocab must be an object {token: id}");
    std::vector<std::string> tokens;
    for (const auto& [piece, idv] : m["vocab"].items()) {
      GRPO_REQUIRE(idv.is_number_integer() && idv.get<int64_t>() >= 0 && idv.get<int64_t>() < (1 << 30), path,
                   ": model.vocab[", json(piece).dump(), "] is not a valid id");
      size_t id = idv.get<size_t>();
      if (id >= tokens.size()) tokens.resize(id + 1);
      GRPO_REQUIRE(tokens[id].empty(), path, ": model.vocab: id ", id, " is used by both ", json(tokens[id]).dump(),
                   " and ", json(piece).dump());
      tokens[id] = piece;
    }
    std::vector<std::pair<std::string, std::string>> merges;
    GRPO_REQUIRE(m.contains("merges") && m["merges"].is_array(), path, ": model.merges must be an array");
    for (size_t k = 0; k < m["merges"].size(); ++k) {
      const json& e = m["merges"][k];
      if (e.is_string()) {
        std::string s = e.get<std::string>();
        size_t sp = s.find(' ');
        GRPO_REQUIRE(sp != std::string::npos && sp > 0 && sp + 1 < s.size(), path, ": model.merges[", k, "] ",
                     e.dump(), " is not \"left right\"");
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else {
        GRPO_REQUIRE(e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string(), path, ": model.merges[",
                     k, "] ", e.dump(), " is not a pair of strings");
        merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      }
    }
    std::vector<AddedToken> added;
    if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
      for (size_t k = 0; k < j["added_tokens"].size(); ++k) {
        const json& a = j["added_tokens"][k];
        GRPO_REQUIRE(a.is_object() && a.contains("id") && a.contains("content"), path, ": added_tokens[", k,
                     "] needs \"id\" and \"content\"");
        GRPO_REQUIRE(!a.value("single_word", false), path, ": added_tokens[", k, "] (", a["content"].dump(),
                     "): single_word added tokens are not supported");
        added.push_back({a["content"].get<std::string>(), a["id"].get<int32_t>(), a.value("special", false),
                         a.value("lstrip", false), a.value("rstrip", false)});
      }
    }
    if (j.contains("normalizer") && !j["normalizer"].is_null()) {
      std::string nt = j["normalizer"].value("type", "");
      GRPO_REQUIRE(nt == "NFC", path, ": normalizer '", nt, "' is not supported (only none or NFC)");
    }
    GRPO_REQUIRE(j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null(), path,
                 ": pre_tokenizer is null; only byte-level BPE (a ByteLevel pre-tokenizer) is supported");
    bool byte_level = false, add_prefix_space = false;
    auto steps = parse_pre_tokenizer(j["pre_tokenizer"], path + ": pre_tokenizer", byte_level, add_prefix_space);
    GRPO_REQUIRE(byte_level, path, ": the pre_tokenizer has no ByteLevel step; only byte-level BPE is supported");
    if (j.contains("decoder") && !j["decoder"].is_null())
      GRPO_REQUIRE(j["decoder"].value("type", "") == "ByteLevel", path, ": decoder '", j["decoder"].value("type", ""),
                   "' is not supported (expected ByteLevel)");
    std::optional<int32_t> unk;
    if (m.contains("unk_token") && m["unk_token"].is_string()) {
      auto it = m["vocab"].find(m["unk_token"].get<std::string>());
      if (it != m["vocab"].end()) unk = it->get<int32_t>();
    }
    auto tok = std::make_unique<BpeTokenizer>(std::move(tokens), merges, std::move(added), std::move(steps),
                                              add_prefix_space, m.value("ignore_merges", false), unk, path);
    tok->set_nfc(j.contains("normalizer") && !j["normalizer"].is_null());

    // Roles and chat template from the files Hugging Face keeps beside tokenizer.json.
    SpecialTokens& sp = tok->mutable_special();
    sp.unk = unk;
    auto dir = std::filesystem::path(path).parent_path();
    auto id_of = [&](const json& v, const char* what, const std::string& file) -> std::optional<int32_t> {
      std::string c = token_content(v);
      if (c.empty()) return std::nullopt;
      auto id = tok->find_token(c);
      GRPO_REQUIRE(id.has_value(), file, ": ", what, " ", json(c).dump(), " is not a token of ", path);
      return id;
    };
    if (j.contains("post_processor") && j["post_processor"].is_object() &&
        j["post_processor"].value("type", "") == "TemplateProcessing") {
      const json& single = j["post_processor"]["single"];
      if (single.is_array() && !single.empty() && single[0].contains("SpecialToken")) {
        sp.add_bos = true;
        sp.bos = tok->find_token(single[0]["SpecialToken"].value("id", ""));
      }
    }
    if (auto tc = read_json_if_exists(dir / "tokenizer_config.json")) {
      std::string f = (dir / "tokenizer_config.json").string();
      if (tc->contains("bos_token")) sp.bos = id_of((*tc)["bos_token"], "bos_token", f);
      if (tc->contains("eos_token"))
        if (auto e = id_of((*tc)["eos_token"], "eos_token", f)) sp.eos.push_back(*e);
      if (tc->contains("pad_token")) sp.pad = id_of((*tc)["pad_token"], "pad_token", f);
      if (tc->contains("unk_token")) sp.unk = id_of((*tc)["unk_token"], "unk_token", f);
      if (tc->contains("add_bos_token") && (*tc)["add_bos_token"].is_boolean()) sp.add_bos = (*tc)["add_bos_token"].get<bool>();
      if (tc->contains("chat_template")) {
        const json& ct = (*tc)["chat_template"];
        if (ct.is_string()) tok->set_chat_template(ct.get<std::string>());
        else if (ct.is_array())
          for (const auto& e : ct)
            if (e.value("name", "") == "default") tok->set_chat_template(e.value("template", ""));
      }
    }
    if (std::filesystem::exists(dir / "chat_template.jinja")) tok->set_chat_template(fs::read_file((dir / "chat_template.jinja").string()));
    for (const char* name : {"config.json", "generation_config.json"}) {
      auto c = read_json_if_exists(dir / name);
      if (!c || !c->contains("eos_token_id")) continue;
      const json& e = (*c)["eos_token_id"];
      std::vector<int32_t> ids;
      if (e.is_number_integer()) ids.push_back(e.get<int32_t>());
      else if (e.is_array())
        for (const auto& x : e) ids.push_back(x.get<int32_t>());
      for (int32_t id : ids) {
        GRPO_REQUIRE(id >= 0 && id < tok->vocab_size(), (dir / name).string(), ": eos_token_id ", id, " is out of range");
        if (std::find(sp.eos.begin(), sp.eos.end(), id) == sp.eos.end()) sp.eos.push_back(id);
      }
    }
    if (sp.eos.empty()) {
      // A bare tokenizer.json names no roles; fall back to the end tokens of the common families.
      for (const char* name : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>", "<eos>"})
        if (auto id = tok->find_token(name)) sp.eos.push_back(*id);
    }
    return tok;
  } catch (const json::exception& e) {
    throw InputError(str(path, ": unexpected tokenizer.json structure: ", e.what()));
  }
}

// ---------------------------------------------------------------- GGUF

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_gguf(const std::string& path) {
  gguf::File f(path);
  return from_gguf(f);
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_gguf(const gguf::File& f) {
  const std::string& path = f.path();
  GRPO_REQUIRE(f.has("tokenizer.ggml.model") && f.has("tokenizer.ggml.tokens"), path,
               ": no tokenizer metadata (tokenizer.ggml.model / tokenizer.ggml.tokens missing); "
               "set tokenizer.path to a tokenizer.json or .model file");
  std::string model = f.get_string("tokenizer.ggml.model");
  GRPO_REQUIRE(model == "gpt2", path, ": tokenizer.ggml.model is '", model,
               "'; only 'gpt2' (byte-level BPE) is supported from GGUF metadata");
  auto wrap = [&](auto&& fn) {
    try {
      return fn();
    } catch (const InputError& e) {
      throw InputError(path + ": " + e.what());
    }
  };
  auto tokens = wrap([&] { return f.get("tokenizer.ggml.tokens").as_strings("tokenizer.ggml.tokens"); });
  std::vector<int64_t> types;
  if (f.has("tokenizer.ggml.token_type")) {
    types = wrap([&] { return f.get("tokenizer.ggml.token_type").as_ints("tokenizer.ggml.token_type"); });
    GRPO_REQUIRE(types.size() == tokens.size(), path, ": tokenizer.ggml.token_type has ", types.size(),
                 " entries but tokenizer.ggml.tokens has ", tokens.size());
  }
  GRPO_REQUIRE(f.has("tokenizer.ggml.merges"), path, ": tokenizer.ggml.merges is missing (a gpt2 tokenizer needs merges)");
  auto merge_strs = wrap([&] { return f.get("tokenizer.ggml.merges").as_strings("tokenizer.ggml.merges"); });
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merge_strs.size());
  for (size_t k = 0; k < merge_strs.size(); ++k) {
    const auto& s = merge_strs[k];
    size_t sp = s.find(' ', 1);
    GRPO_REQUIRE(sp != std::string::npos && sp + 1 < s.size(), path, ": tokenizer.ggml.merges[", k, "] '", s,
                 "' is not \"left right\"");
    merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
  }
  // llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
  std::vector<AddedToken> added;
  for (size_t i = 0; i < types.size(); ++i)
    if (types[i] == 3 || types[i] == 4) added.push_back({tokens[i], static_cast<int32_t>(i), types[i] == 3, false, false});

  // Pre-tokenizer per llama.cpp's llama_vocab::impl::load (llama-vocab.cpp) mapping of
  // tokenizer.ggml.pre to regex lists.
  std::string pre = f.get_string("tokenizer.ggml.pre", "gpt-2");
  using S = PreStep;
  std::vector<PreStep> steps;
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" || pre == "pixtral") {
    steps = {S{S::SPLIT, SplitPattern::LLAMA3, false}};
  } else if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "megrez" || pre == "stablelm2") {
    steps = {S{S::SPLIT, SplitPattern::QWEN2, false}};
  } else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "codeshell" ||
             pre == "exaone" || pre == "minerva-7b") {
    steps = {S{S::DIGITS, SplitPattern::GPT2, true}, S{S::SPLIT, SplitPattern::GPT2, false}};
  } else if (pre == "gpt-2" || pre == "gpt2" || pre == "phi-2" || pre == "jina-es" || pre == "jina-de" ||
             pre == "gigachat" || pre == "jina-v2-es" || pre == "jina-v2-de" || pre == "jina-v2-code" ||
             pre == "roberta-bpe" || pre == "mpt" || pre == "olmo" || pre == "jais") {
    steps = {S{S::SPLIT, SplitPattern::GPT2, false}};
  } else {
    throw InputError(str(path, ": tokenizer.ggml.pre '", pre,
                         "' is not supported (supported: gpt-2, smollm/starcoder, llama3/llama-bpe, qwen2 families)"));
  }
  std::optional<int32_t> unk;
  const size_t n_tokens = tokens.size();
  auto id_key = [&](const std::string& key) -> std::optional<int32_t> {
    if (!f.has(key)) return std::nullopt;
    int64_t id = f.get_int(key);
    GRPO_REQUIRE(id >= 0 && id < static_cast<int64_t>(n_tokens), path, ": ", key, " = ", id,
                 " is out of range [0, ", n_tokens, ")");
    return static_cast<int32_t>(id);
  };
  unk = id_key("tokenizer.ggml.unknown_token_id");
  auto tok = std::make_unique<BpeTokenizer>(std::move(tokens), merges, std::move(added), std::move(steps), false, false,
                                            std::nullopt, path);
  SpecialTokens& sp = tok->mutable_special();
  sp.unk = unk;
  sp.bos = id_key("tokenizer.ggml.bos_token_id");
  sp.pad = id_key("tokenizer.ggml.padding_token_id");
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
    if (auto id = id_key(key); id && std::find(sp.eos.begin(), sp.eos.end(), *id) == sp.eos.end()) sp.eos.push_back(*id);
  sp.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", false);
  tok->set_chat_template(f.get_string("tokenizer.chat_template", ""));
  return tok;
}

}  // namespace grpo::tok
