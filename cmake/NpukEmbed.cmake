# cmake -DIN=file.bin -DOUT=file.cc -DSYMBOL=name -P NpukEmbed.cmake
# Writes a C++ source defining `extern "C" const uint8_t SYMBOL[]` (64-byte
# aligned) and `SYMBOL_size` with the bytes of IN.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){32})" "\\1\n" bytes "${bytes}")
if(size EQUAL 0)
  set(bytes "0")
endif()
file(WRITE "${OUT}.tmp"
"// Generated from ${IN} by cmake/NpukEmbed.cmake; do not edit.
#include <cstddef>
#include <cstdint>
extern \"C\" {
alignas(64) extern const uint8_t ${SYMBOL}[] = {
${bytes}};
extern const size_t ${SYMBOL}_size = ${size};
}
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
