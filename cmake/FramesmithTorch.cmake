# Checks on the LibTorch that find_package(Torch) found, and the C++ standard it needs. Included
# right after find_package(Torch), before any target exists.
#
# Debian's LibTorch 1.13 builds as C++17; LibTorch 2.x headers from 2.10 or so on refuse anything
# below C++20 (ATen.h: "#error C++20 or later compatible compiler is required"). The requirement is
# read from ATen.h itself rather than from a version table, so a LibTorch that moves it again still
# configures right. The engine's sources compile as either.
option(FRAMESMITH_REQUIRE_CUDA
       "Fail the build unless LibTorch has CUDA and the engine's CUDA paths compile in" OFF)
option(FRAMESMITH_WERROR "Treat warnings in project code as errors" OFF)

# A LibTorch found by its config file but linked from another install (Debian's libtorch-dev in
# /usr/lib wins find_library's search over the PATHS hint TorchConfig.cmake gives) crashes at
# the first call, or worse, half works: refuse the mix here.
foreach(_lib TORCH_LIBRARY c10_LIBRARY C10_CUDA_LIBRARY)
  if(${_lib} AND TORCH_INSTALL_PREFIX)
    get_filename_component(_real "${${_lib}}" REALPATH)
    get_filename_component(_prefix "${TORCH_INSTALL_PREFIX}" REALPATH)
    string(FIND "${_real}" "${_prefix}/" _at)
    if(NOT _at EQUAL 0)
      message(FATAL_ERROR "LibTorch headers come from ${TORCH_INSTALL_PREFIX} but ${_lib} is "
                          "${${_lib}}: another LibTorch is installed. Put "
                          "${TORCH_INSTALL_PREFIX} first in CMAKE_PREFIX_PATH or set ${_lib}.")
    endif()
  endif()
endforeach()

set(_aten_h "")
foreach(_dir ${TORCH_INCLUDE_DIRS})
  if(NOT _aten_h AND EXISTS "${_dir}/ATen/ATen.h")
    set(_aten_h "${_dir}/ATen/ATen.h")
  endif()
endforeach()
if(NOT _aten_h)
  message(FATAL_ERROR "ATen/ATen.h not found in TORCH_INCLUDE_DIRS (${TORCH_INCLUDE_DIRS})")
endif()
file(STRINGS "${_aten_h}" _needs_cxx20 REGEX "__cplusplus < 202002L")
if(_needs_cxx20)
  set(CMAKE_CXX_STANDARD 20)
endif()
message(STATUS "LibTorch ${Torch_VERSION} from ${TORCH_INSTALL_PREFIX}: C++${CMAKE_CXX_STANDARD}, "
               "CUDA ${CAFFE2_USE_CUDA}")

if(FRAMESMITH_REQUIRE_CUDA AND NOT CAFFE2_USE_CUDA)
  message(FATAL_ERROR "FRAMESMITH_REQUIRE_CUDA: the LibTorch at ${TORCH_INSTALL_PREFIX} was found "
                      "without CUDA (a CPU build, or CUDA toolkit not found: see the warnings "
                      "above; set CUDA_TOOLKIT_ROOT_DIR)")
endif()
