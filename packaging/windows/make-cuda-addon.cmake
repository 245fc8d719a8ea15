# Builds the CUDA add-on zip from a CUDA LibTorch: every DLL of its lib\ that the installer does
# not ship (FRAMESMITH_TORCH_CORE_DLLS in FramesmithWindows.cmake), and prints its SHA-256 for
# FRAMESMITH_CUDA_ADDON_SHA256. Publish the zip at FRAMESMITH_CUDA_ADDON_URL, then build the
# installer. Run on the build machine:
#   cmake -DTORCH_LIB=C:/libtorch/lib -DCORE="c10;c10_cuda;..." -DOUT=build/packages/x.zip
#         -P packaging/windows/make-cuda-addon.cmake
# (the `cuda-addon` target runs it with the right values).
cmake_minimum_required(VERSION 3.22)
foreach(v TORCH_LIB CORE OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "make-cuda-addon.cmake: -D${v}=... is missing")
  endif()
endforeach()
file(GLOB dlls "${TORCH_LIB}/*.dll")
set(addon "")
foreach(dll ${dlls})
  get_filename_component(name "${dll}" NAME_WE)
  if(NOT name IN_LIST CORE)
    list(APPEND addon "${dll}")
  endif()
endforeach()
if(NOT addon MATCHES "torch_cuda")
  message(FATAL_ERROR "${TORCH_LIB} has no torch_cuda.dll: not a CUDA build of LibTorch")
endif()
get_filename_component(stage "${OUT}.d" ABSOLUTE)
file(REMOVE_RECURSE "${stage}")
file(COPY ${addon} DESTINATION "${stage}")
file(GLOB staged RELATIVE "${stage}" "${stage}/*")
get_filename_component(out "${OUT}" ABSOLUTE)
execute_process(COMMAND ${CMAKE_COMMAND} -E tar cf "${out}" --format=zip ${staged}
                WORKING_DIRECTORY "${stage}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cannot write ${out}")
endif()
file(REMOVE_RECURSE "${stage}")
file(SHA256 "${out}" sum)
file(SIZE "${out}" size)
message(STATUS "CUDA add-on: ${out} (${size} bytes)\n  FRAMESMITH_CUDA_ADDON_SHA256=${sum}")
