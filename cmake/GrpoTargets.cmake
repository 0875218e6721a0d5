# One static library per layer of the house (src/<layer>/*.cpp -> grpo_<layer>). Linking only
# downward (DEPS) is what keeps the layers honest: a lower layer cannot see a higher one's symbols.
#   grpo_add_layer(<layer> [TORCH] DEPS <targets...>)
# TORCH layers get LibTorch and share one precompiled <torch/torch.h>.
set(GRPO_LAYERS "" CACHE INTERNAL "")

# Every LibTorch TU and the PCH are compiled with -pthread: GCC uses a PCH only when the macros
# match, -pthread defines _REENTRANT, and some dependencies (re2's pkg-config) add -pthread.
function(grpo_enable_torch target)
  target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES} Threads::Threads)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wno-unused-parameter -pthread>)
  if(GRPO_PCH)
    target_precompile_headers(${target} REUSE_FROM grpo_torch_pch)
  endif()
endfunction()

if(GRPO_PCH)
  # Written once: rewriting it on every configure would rebuild the PCH and everything after it.
  if(NOT EXISTS ${CMAKE_BINARY_DIR}/grpo_torch_pch.cpp)
    file(WRITE ${CMAKE_BINARY_DIR}/grpo_torch_pch.cpp "// translation unit that owns the shared LibTorch PCH\n")
  endif()
  add_library(grpo_torch_pch STATIC ${CMAKE_BINARY_DIR}/grpo_torch_pch.cpp)
  target_link_libraries(grpo_torch_pch PUBLIC ${TORCH_LIBRARIES} Threads::Threads)
  target_compile_options(grpo_torch_pch PRIVATE -Wno-unused-parameter -pthread)
  target_precompile_headers(grpo_torch_pch PRIVATE <torch/torch.h>)
endif()

function(grpo_add_layer layer)
  cmake_parse_arguments(L "TORCH" "" "DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${layer}/*.cpp)
  if(NOT _srcs)
    return()  # a layer whose first file has not been written yet
  endif()
  add_library(grpo_${layer} STATIC ${_srcs})
  target_include_directories(grpo_${layer} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_compile_options(grpo_${layer} PRIVATE -Wall -Wextra)
  set(_deps "")
  foreach(d ${L_DEPS})
    if(TARGET ${d} OR NOT d MATCHES "^grpo_")
      list(APPEND _deps ${d})
    endif()
  endforeach()
  target_link_libraries(grpo_${layer} PUBLIC ${_deps})
  if(L_TORCH)
    grpo_enable_torch(grpo_${layer})
  endif()
  set(GRPO_LAYERS ${GRPO_LAYERS} grpo_${layer} CACHE INTERNAL "")
endfunction()
