#include "grpo/dist/launch_env.h"

#include <cctype>
#include <cstdlib>
#include <optional>

#include "grpo/util/error.h"

namespace grpo::dist {
namespace {

std::optional<std::string> get(const GetEnv& getenv, const char* name) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

int parse_int(const std::string& text, const char* name, int lo, int hi) {
  size_t pos = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  GRPO_REQUIRE(pos == text.size() && pos > 0, "environment variable ", name, "='", text,
               "' is not an integer");
  GRPO_REQUIRE(v >= lo && v <= hi, "environment variable ", name, "=", v, " is out of range [", lo,
               ", ", hi, "]");
  return static_cast<int>(v);
}

std::optional<int> get_int(const GetEnv& getenv, const char* name, int lo, int hi) {
  auto v = get(getenv, name);
  if (!v) return std::nullopt;
  return parse_int(*v, name, lo, hi);
}

constexpr int kMaxRanks = 1 << 20;

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // Grammar (scontrol show hostnames): host[,host]... where host = prefix[ranges]suffix and
  // ranges = a[-b][,c[-d]]...; only the first expansion of the first host is needed.
  GRPO_REQUIRE(!nodelist.empty(), "SLURM node list is empty");
  size_t i = 0;
  std::string host;
  while (i < nodelist.size() && nodelist[i] != ',') {
    if (nodelist[i] == '[') {
      size_t close = nodelist.find(']', i);
      GRPO_REQUIRE(close != std::string::npos, "SLURM node list '", nodelist, "': '[' without ']'");
      std::string first = nodelist.substr(i + 1, close - i - 1);
      first = first.substr(0, first.find_first_of(",-"));
      GRPO_REQUIRE(!first.empty(), "SLURM node list '", nodelist, "': empty range");
      for (char c : first)
        GRPO_REQUIRE(std::isdigit(static_cast<unsigned char>(c)), "SLURM node list '", nodelist,
                     "': range '", first, "' is not numeric");
      host += first;  // zero padding is kept as written ("[03-05]" -> "03")
      i = close + 1;
    } else {
      GRPO_REQUIRE(nodelist[i] != ']', "SLURM node list '", nodelist, "': ']' without '['");
      host += nodelist[i++];
    }
  }
  GRPO_REQUIRE(!host.empty(), "SLURM node list '", nodelist, "' starts with an empty host");
  return host;
}

int first_slurm_tasks_per_node(const std::string& spec) {
  std::string first = spec.substr(0, spec.find_first_of(",("));
  return parse_int(first, "SLURM_STEP_TASKS_PER_NODE", 1, kMaxRanks);
}

LaunchEnv read_launch_env(const GetEnv& getenv) {
  LaunchEnv e;
  auto rank = get_int(getenv, "RANK", 0, kMaxRanks);
  auto world = get_int(getenv, "WORLD_SIZE", 1, kMaxRanks);
  GRPO_REQUIRE(rank.has_value() == world.has_value(), "environment variable ",
               rank ? "RANK is set but WORLD_SIZE is not" : "WORLD_SIZE is set but RANK is not",
               " (torchrun and grpo launch set both)");
  if (rank) {
    e.source = "torchrun";
    e.rank = *rank;
    e.world_size = *world;
    e.local_rank = get_int(getenv, "LOCAL_RANK", 0, kMaxRanks).value_or(e.rank);
    e.local_world_size = get_int(getenv, "LOCAL_WORLD_SIZE", 1, kMaxRanks).value_or(e.world_size);
    e.master_addr = get(getenv, "MASTER_ADDR").value_or("127.0.0.1");
    e.master_port = get_int(getenv, "MASTER_PORT", 1, 65535).value_or(29500);
    auto agent = get(getenv, "TORCHELASTIC_USE_AGENT_STORE");
    e.agent_store = agent && (*agent == "True" || *agent == "true" || *agent == "1");
    e.restart_count = get_int(getenv, "TORCHELASTIC_RESTART_COUNT", 0, kMaxRanks).value_or(0);
  } else if (auto procid = get_int(getenv, "SLURM_PROCID", 0, kMaxRanks)) {
    e.source = "slurm";
    e.rank = *procid;
    auto ntasks = get_int(getenv, "SLURM_NTASKS", 1, kMaxRanks);
    GRPO_REQUIRE(ntasks.has_value(), "environment variable SLURM_PROCID is set but SLURM_NTASKS is not");
    e.world_size = *ntasks;
    e.local_rank = get_int(getenv, "SLURM_LOCALID", 0, kMaxRanks).value_or(0);
    e.local_world_size = e.world_size;
    for (const char* name : {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
      if (auto v = get(getenv, name)) {
        e.local_world_size = first_slurm_tasks_per_node(*v);
        break;
      }
    }
    if (auto addr = get(getenv, "MASTER_ADDR")) {
      e.master_addr = *addr;
    } else if (auto nodes = get(getenv, "SLURM_STEP_NODELIST")) {
      e.master_addr = first_slurm_host(*nodes);
    } else if (auto jnodes = get(getenv, "SLURM_JOB_NODELIST")) {
      e.master_addr = first_slurm_host(*jnodes);
    }
    e.master_port = get_int(getenv, "MASTER_PORT", 1, 65535).value_or(29500);
  }
  const char* rank_var = e.source == "slurm" ? "SLURM_PROCID" : "RANK";
  GRPO_REQUIRE(e.rank < e.world_size, "environment variable ", rank_var, "=", e.rank,
               " is not below the world size ", e.world_size);
  GRPO_REQUIRE(e.local_rank < e.local_world_size, "local rank ", e.local_rank,
               " is not below the local world size ", e.local_world_size, " (", e.source, " variables)");
  return e;
}

LaunchEnv read_launch_env() {
  return read_launch_env([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace grpo::dist
