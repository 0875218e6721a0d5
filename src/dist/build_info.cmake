# Run at build time (cmake -P): writes OUT with the version and `git describe` of SRC, touching the
# file only when its text changes so that an unchanged tree rebuilds nothing.
execute_process(COMMAND git -C "${SRC}" describe --always --dirty --tags
                OUTPUT_VARIABLE _git OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
if(NOT _rc EQUAL 0 OR _git STREQUAL "")
  set(_git "unknown")
endif()
set(_text "#pragma once\n#define GRPO_DIST_VERSION \"${VERSION}\"\n#define GRPO_DIST_GIT_DESCRIBE \"${_git}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" _old)
else()
  set(_old "")
endif()
if(NOT _old STREQUAL _text)
  file(WRITE "${OUT}" "${_text}")
endif()
