#include "plot.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace grpo::cli {

std::string write_training_plot(const std::string& metrics_jsonl, const std::string& png,
                                const std::vector<std::pair<double, double>>& heldout) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) return "gnuplot is not installed";
  std::ifstream in(metrics_jsonl);
  if (!in) return "cannot read " + metrics_jsonl;
  // Columns 2-5 of the data file are the four panels; column 6 is the held-out accuracy of the
  // periodic evaluations (trainer.eval_steps), drawn over the training-batch accuracy.
  const char* cols[] = {"reward", "accuracy", "kl", "completions/length/mean", "eval/accuracy"};
  std::string data_file = png + ".dat";
  std::ofstream dat(data_file);
  int rows = 0;
  bool has[5] = {false, false, false, false, false};
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step")) continue;
    dat << j["step"].get<double>();
    for (int c = 0; c < 5; ++c) {
      auto it = j.find(cols[c]);
      bool num = it != j.end() && it->is_number();
      has[c] = has[c] || num;
      dat << "\t" << (num ? std::to_string(it->get<double>()) : "NaN");
    }
    dat << "\n";
    ++rows;
  }
  for (const auto& [step, acc] : heldout) {
    dat << step << "\tNaN\tNaN\tNaN\tNaN\t" << acc << "\n";
    has[4] = true;
  }
  dat.close();
  if (rows == 0) return "no metrics in " + metrics_jsonl;
  std::string script = png + ".gp";
  {
    std::ofstream gp(script);
    gp << "set terminal pngcairo size 1200,800 noenhanced\n"
       << "set output '" << png << "'\n"
       << "set datafile missing 'NaN'\n"
       << "set multiplot layout 2,2 title 'GRPO training: " << metrics_jsonl << "'\n"
       << "set grid\nset xlabel 'step'\n";
    const char* titles[] = {"reward (mean)", "accuracy", "KL to reference", "completion length (tokens)"};
    for (int i = 0; i < 4; ++i) {
      gp << "set title '" << titles[i] << "'\n";
      if (has[i] && i == 1 && has[4]) {
        gp << "plot '" << data_file << "' using 1:3 with linespoints pt 7 ps 0.4 title 'training batch (sampled)', '"
           << data_file << "' using 1:6 smooth unique with linespoints pt 5 ps 0.8 lw 2 title 'held-out (greedy)'\n";
      } else if (has[i]) {
        gp << "plot '" << data_file << "' using 1:" << i + 2 << " with linespoints pt 7 ps 0.4 notitle\n";
      } else {
        // gnuplot fails on a column without a single number (e.g. KL when beta = 0): say so instead.
        gp << "set label 1 'not logged in this run' at graph 0.5,0.5 center\n"
           << "plot [0:1] [0:1] 1/0 notitle\nunset label 1\n";
      }
    }
    gp << "unset multiplot\n";
  }
  int rc = std::system(("gnuplot '" + script + "' 2>/dev/null").c_str());
  std::filesystem::remove(script);
  std::filesystem::remove(data_file);
  if (rc != 0 || !std::filesystem::exists(png)) return "gnuplot failed";
  return "";
}

}  // namespace grpo::cli
