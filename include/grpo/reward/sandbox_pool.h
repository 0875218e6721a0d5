#pragma once
// Runs a batch of sandbox jobs on num_workers threads at once, so that scoring a batch of
// completions overlaps program start-up, compilation and waiting.
#include <string>
#include <vector>

#include "grpo/reward/sandbox.h"

namespace grpo::reward {

/// One program and the standard inputs to run it with (one run per entry; see Sandbox::run_each).
struct SandboxJob {
  SandboxRequest request;
  std::vector<std::string> stdins = {""};
};

/// A fixed-width pool over one Sandbox. Thread-safe; each run_batch() call uses its own threads.
class SandboxPool {
 public:
  /// `num_workers` <= 0 takes the sandbox's config().num_workers.
  explicit SandboxPool(const Sandbox& sandbox, int num_workers = 0);

  /// Runs every job; returns [jobs.size()] vectors of [job.stdins.size()] results, in job order.
  /// Never throws for what the programs do (sandbox failures are SANDBOX_ERROR results).
  std::vector<std::vector<SandboxResult>> run_batch(const std::vector<SandboxJob>& jobs) const;

  int num_workers() const { return workers_; }

 private:
  const Sandbox& sandbox_;
  int workers_;
};

}  // namespace grpo::reward
