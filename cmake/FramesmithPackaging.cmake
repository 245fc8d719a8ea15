# Installers. Included at the end of the top-level CMakeLists.txt, after every target exists.
#
#   cmake --build build --target package
#
# runs CPack and writes build/packages/: on Linux framesmith_<version>-1_<arch>.deb and
# framesmith-<version>-Linux.tar.gz; on Windows an NSIS installer and a .zip; on macOS a .dmg
# (see packaging/windows/ and packaging/macos/, and docs/packaging.md for what was verified where).
# The studio and the CLI install their own targets (app/, ui/); this file adds the desktop
# integration, the licence files and the CPack settings.

if(FRAMESMITH_INFERENCE_ONLY OR NOT FRAMESMITH_TOP_LEVEL)
  return()  # the installers are for the studio; an engine-only build has nothing to install
endif()

include(GNUInstallDirs)

set(FRAMESMITH_APP_ID "io.github.framesmith.Framesmith")
set(FRAMESMITH_HOMEPAGE "https://github.com/framesmith/framesmith" CACHE STRING
    "Project home page, written into the packages")
set(FRAMESMITH_MAINTAINER "The Framesmith developers <framesmith@users.noreply.github.com>"
    CACHE STRING "Package maintainer (name <email>)")
set(_res ${PROJECT_SOURCE_DIR}/resources)

# --- files besides the programs -------------------------------------------------------------
if(UNIX AND NOT APPLE)
  # freedesktop.org integration: menu entry, software-centre entry, icons in every size.
  install(FILES ${_res}/${FRAMESMITH_APP_ID}.desktop
          DESTINATION ${CMAKE_INSTALL_DATADIR}/applications)
  install(FILES ${_res}/${FRAMESMITH_APP_ID}.metainfo.xml
          DESTINATION ${CMAKE_INSTALL_DATADIR}/metainfo)
  install(DIRECTORY ${_res}/icons/hicolor DESTINATION ${CMAKE_INSTALL_DATADIR}/icons
          FILES_MATCHING PATTERN "*.png" PATTERN "*.svg")
  # Debian wants the licence in /usr/share/doc/<package>/copyright (DEP-5 format).
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/debian/copyright
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/framesmith)
  set(_docdir ${CMAKE_INSTALL_DATADIR}/doc/framesmith)
  set(_datadir ${CMAKE_INSTALL_DATADIR}/framesmith)
  # Manual pages and the Debian changelog, compressed as Debian wants them (gzip -9n: no name, no
  # time stamp, so the package is reproducible).
  find_program(FRAMESMITH_GZIP gzip)
  mark_as_advanced(FRAMESMITH_GZIP)
  set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
  set(_gen ${PROJECT_BINARY_DIR}/packaging)
  configure_file(${PROJECT_SOURCE_DIR}/packaging/debian/changelog.in ${_gen}/changelog.Debian @ONLY)
  if(FRAMESMITH_GZIP)
    foreach(f ${_gen}/changelog.Debian ${PROJECT_SOURCE_DIR}/packaging/man/framesmith.1
              ${PROJECT_SOURCE_DIR}/packaging/man/framesmith-cli.1)
      get_filename_component(name ${f} NAME)
      execute_process(COMMAND ${FRAMESMITH_GZIP} -9n -c ${f} OUTPUT_FILE ${_gen}/${name}.gz)
    endforeach()
    install(FILES ${_gen}/changelog.Debian.gz DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/framesmith)
    install(FILES ${_gen}/framesmith.1.gz ${_gen}/framesmith-cli.1.gz
            DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  endif()
else()
  set(_docdir doc)
  set(_datadir share)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/THIRD_PARTY_NOTICES.md
              ${PROJECT_SOURCE_DIR}/README.md
        DESTINATION ${_docdir})
# A start image, so that the first job needs nothing but the package.
install(FILES ${_res}/demo/start.png DESTINATION ${_datadir}/demo)

# --- CPack: common settings ------------------------------------------------------------------
set(CPACK_PACKAGE_NAME framesmith)
set(CPACK_PACKAGE_VENDOR "The Framesmith developers")
set(CPACK_PACKAGE_CONTACT "${FRAMESMITH_MAINTAINER}")
set(CPACK_PACKAGE_HOMEPAGE_URL "${FRAMESMITH_HOMEPAGE}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "image-to-video studio for FramePack (LibTorch, Qt)")
# Lines of at most 80 columns: the .deb's extended description is shown as written.
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "Framesmith turns a still image and a prompt into a video with the FramePack"
  "models (HunyuanVideo packed transformer, next-frame-section sampling). The"
  "studio shows per-step previews, the video growing section by section and a"
  "live GPU-memory graph with every out-of-memory recovery marked on it;"
  "framesmith-cli runs the same jobs from scripts."
  "."
  "On first start it writes a tiny model with random weights, so that everything"
  "can be tried at once (its videos are noise); the real weights (about 40 GB)"
  "are downloaded separately.")
set(CPACK_PACKAGE_INSTALL_DIRECTORY Framesmith)
set(CPACK_PACKAGE_EXECUTABLES framesmith Framesmith)
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_RESOURCE_FILE_README ${PROJECT_SOURCE_DIR}/README.md)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)  # RelWithDebInfo binaries carry ~10x their size in debug info
set(CPACK_VERBATIM_VARIABLES ON)
# Licence fields where a generator has one (DEB has none: it reads the copyright file above).
set(CPACK_RPM_PACKAGE_LICENSE "GPL-3.0-or-later")
set(CPACK_FREEBSD_PACKAGE_LICENSE "GPL3")

# --- Linux: .deb and .tar.gz ------------------------------------------------------------------
if(UNIX AND NOT APPLE)
  set(CPACK_GENERATOR DEB TGZ)
  set(CPACK_DEBIAN_PACKAGE_NAME framesmith)
  set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # framesmith_0.1.0-1_amd64.deb
  set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${FRAMESMITH_MAINTAINER}")
  set(CPACK_DEBIAN_PACKAGE_SECTION graphics)
  set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
  set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
  # Not in the ELF files, so no tool finds them:
  # - OpenBLAS: Debian's LibTorch calls the system BLAS through the alternatives system
  #   (libblas.so.3). With only the reference BLAS (libblas3, what apt picks for LibTorch's
  #   "libblas3 | libblas.so.3") matmuls run ~19x slower (3 vs 57 GFLOP/s for 3000x512x2048
  #   here); the OpenBLAS alternative has the higher priority, so installing it is enough.
  # - qt6-qpa-plugins: Qt loads its platform plugins (xcb, wayland) at run time; without them
  #   the studio cannot open a window.
  set(_runtime_extras "libopenblas0-pthread, qt6-qpa-plugins")
  find_program(FRAMESMITH_DPKG_SHLIBDEPS dpkg-shlibdeps)
  mark_as_advanced(FRAMESMITH_DPKG_SHLIBDEPS)
  if(FRAMESMITH_DPKG_SHLIBDEPS)
    # dpkg-shlibdeps reads the binaries' DT_NEEDED entries and the shlibs/symbols files of the
    # packages that provide them: LibTorch (libtorch1.13), Qt 6, QCustomPlot, FFmpeg, PCRE2 and
    # the C++ runtime, each with the minimum version the binaries need.
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
    set(CPACK_DEBIAN_PACKAGE_DEPENDS "${_runtime_extras}")
  else()
    # Building on a non-Debian system: the same list, written out for Debian 12 (bookworm).
    set(CPACK_DEBIAN_PACKAGE_DEPENDS
        "libtorch1.13, ${_runtime_extras}, libqt6core6 (>= 6.4), libqt6gui6 (>= 6.4), \
libqt6widgets6 (>= 6.4), libqt6printsupport6 (>= 6.4), libqcustomplot2.1-qt6, libavformat59, \
libavcodec59, libswscale6, libavutil57, libpcre2-8-0, libstdc++6 (>= 12), libgcc-s1, libc6")
  endif()
  # Fonts need no entry: libfontconfig1 -> fontconfig-config depends on fonts-dejavu-core | ...
elseif(WIN32)
  include(${PROJECT_SOURCE_DIR}/packaging/windows/FramesmithWindows.cmake)
elseif(APPLE)
  include(${PROJECT_SOURCE_DIR}/packaging/macos/FramesmithMacOS.cmake)
endif()

include(CPack)

# --- the clean-system install test (label "install": not part of the default test run) --------
if(FRAMESMITH_BUILD_TESTS)
  add_subdirectory(${PROJECT_SOURCE_DIR}/packaging ${PROJECT_BINARY_DIR}/packaging)
endif()
