# Compiles a text file into the library byte for byte (the sandbox's Python harness:
# src/reward/sandbox_harness.py). Run at build time by the custom command in src/CMakeLists.txt,
# which re-runs it whenever the file changes:
#   cmake -DINPUT=<file> -DOUTPUT=<file.cpp> -DSYMBOL=<name> -DNAMESPACE=<ns> -P embed_file.cmake
# OUTPUT defines, in NAMESPACE, `const unsigned char SYMBOL[]` (the bytes, then a NUL that is not
# counted) and `const std::size_t SYMBOL##Size` (the byte count). Bytes as hex, not a raw string
# literal, so that no content can end the literal early.
foreach(v INPUT OUTPUT SYMBOL NAMESPACE)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "embed_file.cmake: -D${v}=... is required")
  endif()
endforeach()
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REPEAT "[0-9a-f]" 32 line_of_hex)
string(REGEX REPLACE "(${line_of_hex})" "\\1\n" hex "${hex}")  # 16 bytes a line
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(input_name "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp"
     "// Generated from ${input_name} by src/reward/embed_file.cmake at build time: do not edit.\n"
     "#include <cstddef>\n\n"
     "namespace ${NAMESPACE} {\n\n"
     "extern const unsigned char ${SYMBOL}[];\n"
     "extern const std::size_t ${SYMBOL}Size;\n\n"
     "const unsigned char ${SYMBOL}[] = {\n${bytes}0x00};\n"
     "const std::size_t ${SYMBOL}Size = ${size};\n\n"
     "}  // namespace ${NAMESPACE}\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
