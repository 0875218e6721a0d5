# LibTorch. A user's own LibTorch wins when -DTorch_DIR=... is given; otherwise we ask the tooling
# venv's torch wheel (torch.utils.cmake_prefix_path), which scripts/setup.sh installs.
if(NOT Torch_DIR)
  if(NOT GRPO_PYTHON)
    find_program(GRPO_PYTHON NAMES python3 REQUIRED)
  endif()
  execute_process(
    COMMAND ${GRPO_PYTHON} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE _grpo_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _grpo_torch_rc ERROR_QUIET)
  if(NOT _grpo_torch_rc EQUAL 0)
    message(FATAL_ERROR "LibTorch not found: '${GRPO_PYTHON}' cannot import torch. "
                        "Run scripts/setup.sh, or pass -DTorch_DIR=/path/to/libtorch/share/cmake/Torch")
  endif()
  list(APPEND CMAKE_PREFIX_PATH ${_grpo_torch_prefix})
endif()

# The CUDA build of LibTorch looks for the CUDA toolkit; tell it where nvcc lives if it is on PATH.
find_program(GRPO_NVCC nvcc PATHS /usr/local/cuda/bin)
if(GRPO_NVCC AND NOT CUDAToolkit_ROOT)
  get_filename_component(_cuda_bin ${GRPO_NVCC} DIRECTORY)
  get_filename_component(CUDAToolkit_ROOT ${_cuda_bin} DIRECTORY)
endif()
if(NOT TORCH_CUDA_ARCH_LIST)
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0a")
endif()
find_package(Torch REQUIRED)
message(STATUS "LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX}")

# libtorch.so from the wheel exports its own (statically linked) copies of std::filesystem
# functions; when libtorch comes before libstdc++ in an executable's DT_NEEDED list, the dynamic
# linker binds our std::filesystem calls to those copies, which crash (seen with remove_all).
# Naming libstdc++ first on every link line makes the system copy win.
add_link_options("LINKER:--push-state,--no-as-needed" "-lstdc++" "LINKER:--pop-state")
