#include "grpo/dist/rank_rng.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

namespace grpo::dist {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t derive_seed(uint64_t seed, int64_t rank, uint64_t stream) {
  uint64_t s = seed;
  uint64_t h = splitmix64(s);
  s = h ^ static_cast<uint64_t>(rank);
  h = splitmix64(s);
  s = h ^ stream;
  return splitmix64(s);
}

at::Generator make_rank_generator(uint64_t seed, int64_t rank, uint64_t stream, torch::Device device) {
  const uint64_t s = derive_seed(seed, rank, stream);
  if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(s);
  // A new generator of the device's backend (CUDA), not the shared default one.
  auto gen = at::globalContext().getAcceleratorHooksInterface(device.type()).getNewGenerator(device.index());
  gen.set_current_seed(s);
  return gen;
}

}  // namespace grpo::dist
