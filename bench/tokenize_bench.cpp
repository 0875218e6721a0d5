// Encode/decode throughput of a tokenizer on a text corpus (one document per line, or the JSON
// array of strings the tokenizer tests use). bench/tokenizer_vs_hf.py runs this beside HF
// `tokenizers` on the same input and prints the ratio. Run from the repository root.
//   bench_tokenize_bench TOKENIZER [TEXT_FILE] [REPEATS]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "grpo/tokenizer/tokenizer.h"
#include "grpo/util/error.h"
#include "grpo/util/fs.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_tokenize_bench TOKENIZER [TEXT_FILE] [REPEATS]\n";
    return 2;
  }
  try {
    std::string text_file = argc > 2 ? argv[2] : std::string("tests/tokenizer/data/strings.json");
    int repeats = argc > 3 ? std::stoi(argv[3]) : 5;
    std::vector<std::string> docs;
    std::string raw = grpo::fs::read_file(text_file);
    if (text_file.size() > 5 && text_file.substr(text_file.size() - 5) == ".json") {
      for (const auto& s : nlohmann::json::parse(raw)) docs.push_back(s.get<std::string>());
    } else {
      std::istringstream is(raw);
      for (std::string line; std::getline(is, line);) docs.push_back(line);
    }
    size_t bytes = 0;
    for (const auto& d : docs) bytes += d.size();

    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    auto tok = grpo::tok::load_tokenizer(argv[1]);
    double load_s = std::chrono::duration<double>(clock::now() - t0).count();

    // First pass fills the word cache; the timed passes are what a training run sees.
    size_t n_tokens = 0;
    std::vector<std::vector<int32_t>> ids(docs.size());
    t0 = clock::now();
    for (size_t i = 0; i < docs.size(); ++i) ids[i] = tok->encode(docs[i]);
    double cold_s = std::chrono::duration<double>(clock::now() - t0).count();
    t0 = clock::now();
    for (int r = 0; r < repeats; ++r)
      for (size_t i = 0; i < docs.size(); ++i) n_tokens += tok->encode(docs[i]).size();
    double enc_s = std::chrono::duration<double>(clock::now() - t0).count() / repeats;
    n_tokens /= repeats;
    t0 = clock::now();
    size_t out_bytes = 0;
    for (int r = 0; r < repeats; ++r)
      for (const auto& v : ids) out_bytes += tok->decode(v).size();
    double dec_s = std::chrono::duration<double>(clock::now() - t0).count() / repeats;
    std::printf("{\"tokenizer\": \"%s\", \"docs\": %zu, \"bytes\": %zu, \"tokens\": %zu, \"load_s\": %.4f, "
                "\"encode_cold_s\": %.5f, \"encode_s\": %.5f, \"decode_s\": %.5f, \"encode_MBps\": %.2f, "
                "\"decode_MBps\": %.2f}\n",
                tok->describe().c_str(), docs.size(), bytes, n_tokens, load_s, cold_s, enc_s, dec_s,
                bytes / enc_s / 1e6, out_bytes / repeats / dec_s / 1e6);
  } catch (const grpo::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
