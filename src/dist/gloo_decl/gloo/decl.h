#pragma once
// Declarations of the Gloo types that torch/csrc/distributed/c10d/ProcessGroupGloo.hpp names.
// The torch wheel ships that header but not Gloo's (Gloo is linked into libtorch_cpu), so without
// these the Gloo backend cannot be constructed from C++. Only src/dist/gloo_backend.cpp includes
// ProcessGroupGloo.hpp and it uses no Gloo type beyond these opaque pointers: every Gloo object
// is created and used inside libtorch. src/dist/dist.cmake adds this directory only when
// LibTorch's own include directories lack gloo/algorithm.h.
#include <chrono>
#include <string>
#include <vector>

namespace gloo {

// ProcessGroupGloo::setTimeout (inline in the c10d header) calls this; it is never called from
// our code, so only the declaration is needed.
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};

namespace transport {
class Device;
class UnboundBuffer;
}  // namespace transport

namespace rendezvous {
// The key-value interface ProcessGroupGloo::GlooStore implements (Gloo before its "store v2"
// extension: GLOO_STORE_HAS_STORE_V2 stays undefined, so GlooStore declares only these).
class Store {
 public:
  virtual ~Store() = default;
  virtual void set(const std::string& key, const std::vector<char>& data) = 0;
  virtual std::vector<char> get(const std::string& key) = 0;
  virtual void wait(const std::vector<std::string>& keys) = 0;
  virtual void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) = 0;
};
}  // namespace rendezvous

}  // namespace gloo
