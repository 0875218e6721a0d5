# Included from src/CMakeLists.txt right after grpo_add_layer(dist ...): what grpo_dist needs
# beyond a plain LibTorch layer.
if(NOT TARGET grpo_dist)
  return()
endif()

# Build info (version + git describe) for the cross-rank consistency check, regenerated at every
# build; the header only changes when the revision does.
set(_grpo_dist_gen ${CMAKE_BINARY_DIR}/generated/grpo_dist)
add_custom_target(grpo_dist_build_info
  COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR} -DVERSION=${PROJECT_VERSION}
          -DOUT=${_grpo_dist_gen}/grpo_dist_build_info.h -P ${CMAKE_CURRENT_LIST_DIR}/build_info.cmake
  BYPRODUCTS ${_grpo_dist_gen}/grpo_dist_build_info.h
  COMMENT "grpo_dist: build info")
add_dependencies(grpo_dist grpo_dist_build_info)
target_include_directories(grpo_dist PRIVATE ${_grpo_dist_gen})

# ProcessGroupNCCL.hpp includes <nccl.h>, which the torch wheel does not ship under torch/include:
# it comes with the nvidia-nccl wheel beside it (or a system NCCL). Without it the NCCL path is
# compiled out and backend nccl is refused with a message.
find_path(GRPO_NCCL_INCLUDE_DIR nccl.h
  HINTS ${TORCH_INSTALL_PREFIX}/../nvidia/nccl/include ${CUDAToolkit_ROOT}/include /usr/local/cuda/include
  NO_CACHE)
if(GRPO_NCCL_INCLUDE_DIR)
  target_include_directories(grpo_dist SYSTEM PRIVATE ${GRPO_NCCL_INCLUDE_DIR})
  message(STATUS "grpo_dist: nccl.h at ${GRPO_NCCL_INCLUDE_DIR}")
else()
  target_compile_definitions(grpo_dist PRIVATE GRPO_DIST_NO_NCCL)
  message(STATUS "grpo_dist: nccl.h not found; the NCCL backend is compiled out")
endif()

# ProcessGroupGloo.hpp includes Gloo's headers, which the torch wheel does not ship; declare the
# few Gloo types it names (src/dist/gloo_decl/gloo/decl.h) unless LibTorch brings the real ones.
find_path(GRPO_GLOO_INCLUDE_DIR gloo/algorithm.h PATHS ${TORCH_INCLUDE_DIRS} NO_DEFAULT_PATH NO_CACHE)
if(NOT GRPO_GLOO_INCLUDE_DIR)
  target_include_directories(grpo_dist PRIVATE ${CMAKE_CURRENT_LIST_DIR}/gloo_decl)
endif()
