# Warnings on for project code; third-party headers come in as SYSTEM includes and stay quiet.
# FRAMESMITH_WERROR (cmake/FramesmithTorch.cmake) makes them errors: the LibTorch 2.x check
# builds that way.
function(framesmith_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  # GCC 12 in C++20 mode (LibTorch 2.x) reports -Wstringop-overflow / -Warray-bounds /
  # -Wrestrict inside libstdc++'s char_traits for every `"literal" + std::to_string(n)` once
  # std::string is constexpr: GCC bugs 105329 and 105651, fixed in GCC 13. The C++17 build (Debian's
  # LibTorch) keeps all three on.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13 AND
     CMAKE_CXX_STANDARD GREATER_EQUAL 20)
    target_compile_options(${target} PRIVATE -Wno-stringop-overflow -Wno-array-bounds
                                             -Wno-restrict)
  endif()
  if(FRAMESMITH_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(FRAMESMITH_REQUIRE_CUDA)
    # torch_compat.h stops the build when its CUDA paths would compile out.
    target_compile_definitions(${target} PRIVATE FRAMESMITH_REQUIRE_CUDA=1)
  endif()
endfunction()
