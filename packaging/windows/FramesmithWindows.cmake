# Windows: an NSIS installer and a .zip, built on Windows with MSVC, Qt 6 (windeployqt), the CUDA
# build of LibTorch and a shared FFmpeg build. Included by cmake/FramesmithPackaging.cmake.
# NOT VERIFIED on Windows yet: docs/packaging.md says what was checked where.
#
# Deploy steps (run by `cmake --build build --config Release --target package`, during CPack's
# install into its staging folder, in this order):
#   1. the programs (app/, ui/ install rules) -> bin/
#   2. windeployqt: Qt DLLs and plugins (platforms/qwindows.dll, styles, imageformats) -> bin/
#   3. every other DLL the programs load, found by file(GET_RUNTIME_DEPENDENCIES) in the folders
#      below: FFmpeg (avformat/avcodec/swscale/avutil/swresample and what they link), QCustomPlot,
#      PCRE2, and the small part of LibTorch (c10, c10_cuda, torch_cpu, torch, cudart, fbgemm,
#      asmjit, libiomp5md, uv) -> bin/
#   4. the MSVC runtime (InstallRequiredSystemLibraries) -> bin/
#   5. licence texts of the bundled libraries -> licenses/ (THIRD_PARTY_NOTICES.md says why)
#
# The 2 GB limit: NSIS cannot build installers over 2 GB, and the CUDA build of LibTorch is
# ~4 GB of DLLs (torch_cuda, cuDNN, cuBLAS, cuFFT, cuSPARSE, cuSOLVER, NVRTC). The installer
# therefore ships everything except those; they are the "CUDA add-on", a separate zip that
# fetch-cuda-addon.ps1 downloads and checks against the SHA-256 set below before unpacking it
# into <install dir>\cuda\. The installer offers it at the end, the Start menu has an entry for it
# later, and without it Framesmith runs on the CPU. For this to work the program must not import
# torch_cuda.dll at load time (MSVC drops the import when no symbol of torch.lib is referenced:
# do NOT add LibTorch's usual /INCLUDE:?warp_size@cuda@at@@YAHXZ) and must load it at start:
#   AddDllDirectory(<exe dir>\cuda); LoadLibraryExW(L"torch_cuda.dll", nullptr,
#                   LOAD_LIBRARY_SEARCH_DEFAULT_DIRS | LOAD_LIBRARY_SEARCH_USER_DIRS);
# (its static initialisers register the CUDA backend; when it is absent at::hasCUDA() is false).

set(FRAMESMITH_FFMPEG_BIN_DIR "" CACHE PATH "Folder holding the FFmpeg DLLs (shared build)")
set(FRAMESMITH_EXTRA_DLL_DIRS "" CACHE STRING
    "More folders to search for DLLs (QCustomPlot, PCRE2, vcpkg's bin)")
set(FRAMESMITH_CUDA_ADDON_URL "" CACHE STRING
    "Where the CUDA add-on zip is published (https://...framesmith-cuda-addon-<ver>-win64.zip)")
set(FRAMESMITH_CUDA_ADDON_SHA256 "" CACHE STRING "SHA-256 of that zip (64 hex digits)")
set(FRAMESMITH_CUDA_ADDON_SIZE "2.5 GB" CACHE STRING "Its download size, shown to the user")

# Which LibTorch DLLs go into the installer; the rest of LibTorch's lib\*.dll is the add-on.
set(FRAMESMITH_TORCH_CORE_DLLS c10 c10_cuda torch torch_cpu torch_global_deps fbgemm asmjit
    libiomp5md libiompstubs5md uv cudart64_110 cudart64_12 nvToolsExt64_1 zlibwapi)

# 1-4. Deploy. The install(CODE) blocks run at install time, with CMAKE_INSTALL_PREFIX the
# staging folder.
find_program(FRAMESMITH_WINDEPLOYQT windeployqt HINTS "${Qt6_DIR}/../../../bin")
if(TARGET Qt6::windeployqt)
  get_target_property(FRAMESMITH_WINDEPLOYQT Qt6::windeployqt IMPORTED_LOCATION)
endif()
install(CODE "
  execute_process(COMMAND \"${FRAMESMITH_WINDEPLOYQT}\" --release --no-translations
                          --no-system-d3d-compiler --no-opengl-sw --compiler-runtime
                          --dir \"\${CMAKE_INSTALL_PREFIX}/bin\"
                          \"\${CMAKE_INSTALL_PREFIX}/bin/framesmith.exe\"
                          \"\${CMAKE_INSTALL_PREFIX}/bin/framesmith-cli.exe\"
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR \"windeployqt failed (\${rc})\")
  endif()")

set(_dll_dirs "${TORCH_INSTALL_PREFIX}/lib" ${FRAMESMITH_FFMPEG_BIN_DIR} ${FRAMESMITH_EXTRA_DLL_DIRS})
set(_torch_core "")
foreach(n ${FRAMESMITH_TORCH_CORE_DLLS})
  if(EXISTS "${TORCH_INSTALL_PREFIX}/lib/${n}.dll")
    list(APPEND _torch_core "${TORCH_INSTALL_PREFIX}/lib/${n}.dll")
  endif()
endforeach()
install(FILES ${_torch_core} DESTINATION bin)
install(CODE "
  file(GET_RUNTIME_DEPENDENCIES
       EXECUTABLES \"\${CMAKE_INSTALL_PREFIX}/bin/framesmith.exe\"
                   \"\${CMAKE_INSTALL_PREFIX}/bin/framesmith-cli.exe\"
       DIRECTORIES ${_dll_dirs}
       PRE_EXCLUDE_REGEXES \"^api-ms-\" \"^ext-ms-\" \"^Qt6\" \"^torch_cuda\" \"^cudnn\" \"^cublas\"
                           \"^cufft\" \"^curand\" \"^cusparse\" \"^cusolver\" \"^nvrtc\" \"^nvfuser\"
       POST_EXCLUDE_REGEXES \"[Ss][Yy][Ss][Tt][Ee][Mm]32\"
       RESOLVED_DEPENDENCIES_VAR found
       UNRESOLVED_DEPENDENCIES_VAR missing)
  if(missing)
    message(FATAL_ERROR \"DLLs not found (set FRAMESMITH_FFMPEG_BIN_DIR / FRAMESMITH_EXTRA_DLL_DIRS): \${missing}\")
  endif()
  file(INSTALL \${found} DESTINATION \"\${CMAKE_INSTALL_PREFIX}/bin\")")
set(CMAKE_INSTALL_SYSTEM_RUNTIME_DESTINATION bin)
include(InstallRequiredSystemLibraries)

# 5. Licence texts of what the installer bundles (collected by hand into packaging/windows/licenses
# when the bundled builds are chosen: Qt, FFmpeg + its configure line, LibTorch, QCustomPlot,
# PCRE2). THIRD_PARTY_NOTICES.md and LICENSE come from FramesmithPackaging.cmake.
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/licenses)
  install(DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/licenses/ DESTINATION licenses)
endif()

# The CUDA add-on: `cmake --build build --target cuda-addon` zips it from the CUDA LibTorch and
# prints its SHA-256; the fetcher and its settings go into the installer.
add_custom_target(cuda-addon
  COMMAND ${CMAKE_COMMAND} -DTORCH_LIB=${TORCH_INSTALL_PREFIX}/lib
          "-DCORE=${FRAMESMITH_TORCH_CORE_DLLS}"
          -DOUT=${PROJECT_BINARY_DIR}/packages/framesmith-cuda-addon-${PROJECT_VERSION}-win64.zip
          -P ${CMAKE_CURRENT_LIST_DIR}/make-cuda-addon.cmake
  VERBATIM)
if(NOT FRAMESMITH_CUDA_ADDON_URL OR NOT FRAMESMITH_CUDA_ADDON_SHA256)
  message(WARNING "FRAMESMITH_CUDA_ADDON_URL/_SHA256 are not set: the installer will not be able "
                  "to add NVIDIA GPU support (build the zip with the cuda-addon target).")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/fetch-cuda-addon.ps1
               ${PROJECT_BINARY_DIR}/packaging/fetch-cuda-addon.ps1 COPYONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/cuda-addon.json.in
               ${PROJECT_BINARY_DIR}/packaging/cuda-addon.json @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/fetch-cuda-addon.ps1
              ${PROJECT_BINARY_DIR}/packaging/cuda-addon.json DESTINATION .)

# The program icon inside framesmith.exe (Explorer, taskbar).
if(TARGET framesmith)
  target_sources(framesmith PRIVATE ${CMAKE_CURRENT_LIST_DIR}/framesmith.rc)
endif()

# CPack: NSIS installer and zip.
set(CPACK_GENERATOR NSIS ZIP)
set(CPACK_NSIS_PACKAGE_NAME "Framesmith")
set(CPACK_NSIS_DISPLAY_NAME "Framesmith ${PROJECT_VERSION}")
set(CPACK_NSIS_MUI_ICON ${CMAKE_CURRENT_LIST_DIR}/framesmith.ico)
set(CPACK_NSIS_MUI_UNIICON ${CMAKE_CURRENT_LIST_DIR}/framesmith.ico)
set(CPACK_NSIS_INSTALLED_ICON_NAME bin\\framesmith.exe)
set(CPACK_NSIS_URL_INFO_ABOUT "${FRAMESMITH_HOMEPAGE}")
set(CPACK_NSIS_CONTACT "${FRAMESMITH_MAINTAINER}")
set(CPACK_NSIS_ENABLE_UNINSTALL_BEFORE_INSTALL ON)
set(CPACK_NSIS_MODIFY_PATH OFF)
set(CPACK_NSIS_EXECUTABLES_DIRECTORY bin)
set(CPACK_NSIS_MUI_FINISHPAGE_RUN framesmith.exe)
# The add-on offer at the end of the installation; its Start menu entry; its removal on uninstall
# (its files are not in the installer's list). CPACK_VERBATIM_VARIABLES is ON: "\\" here is one
# backslash in the NSIS script.
set(_fetch "powershell.exe -NoProfile -ExecutionPolicy Bypass -File \"$INSTDIR\\fetch-cuda-addon.ps1\"")
set(CPACK_NSIS_EXTRA_INSTALL_COMMANDS "
  MessageBox MB_YESNO|MB_ICONQUESTION 'Download NVIDIA GPU support now (${FRAMESMITH_CUDA_ADDON_SIZE})? Without it Framesmith runs on the CPU, which is far too slow for the real models. The Start menu has an entry to add it later.' /SD IDNO IDNO +2
  nsExec::ExecToLog '${_fetch}'
")
set(CPACK_NSIS_CREATE_ICONS_EXTRA "
  CreateShortCut \"$SMPROGRAMS\\$STARTMENU_FOLDER\\Add NVIDIA GPU support.lnk\" \"powershell.exe\" '-NoProfile -ExecutionPolicy Bypass -File \"$INSTDIR\\fetch-cuda-addon.ps1\"'
")
set(CPACK_NSIS_DELETE_ICONS_EXTRA "
  Delete \"$SMPROGRAMS\\$MUI_TEMP\\Add NVIDIA GPU support.lnk\"
")
set(CPACK_NSIS_EXTRA_UNINSTALL_COMMANDS "
  RMDir /r \"$INSTDIR\\cuda\"
")
