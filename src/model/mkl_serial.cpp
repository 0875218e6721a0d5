#include "grpo/model/mkl_serial.h"

#include <dlfcn.h>

#include <atomic>

namespace grpo::model {

namespace {

// MKL's C entry points (mkl_service.h), looked up in the process (LibTorch links MKL statically
// into libtorch_cpu and exports them). The lowercase names are the Fortran ones (int* arguments).
struct MklThreads {
  int (*set_local)(int) = nullptr;  // MKL_Set_Num_Threads_Local: returns the previous local value
  int (*get_max)() = nullptr;       // MKL_Get_Max_Threads
  MklThreads() {
    set_local = reinterpret_cast<int (*)(int)>(dlsym(RTLD_DEFAULT, "MKL_Set_Num_Threads_Local"));
    get_max = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "MKL_Get_Max_Threads"));
    if (!set_local || !get_max) set_local = nullptr, get_max = nullptr;
  }
};

const MklThreads& mkl() {
  static const MklThreads m;
  return m;
}

std::atomic<int64_t> g_opened{0};

}  // namespace

MklSerial::MklSerial(bool on) {
  if (!on || !mkl().set_local) return;
  active_ = true;
  prev_local_ = mkl().set_local(1);
  g_opened.fetch_add(1, std::memory_order_relaxed);
}

MklSerial::~MklSerial() {
  if (active_) mkl().set_local(prev_local_);
}

bool MklSerial::available() { return mkl().set_local != nullptr; }

int MklSerial::mkl_threads() { return mkl().get_max ? mkl().get_max() : -1; }

int64_t MklSerial::opened() { return g_opened.load(std::memory_order_relaxed); }

}  // namespace grpo::model
