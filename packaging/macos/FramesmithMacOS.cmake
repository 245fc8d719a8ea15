# macOS: a drag-and-drop disk image (CPack DragNDrop) holding Framesmith.app, built on a Mac with
# Qt 6 (macdeployqt), LibTorch for macOS and FFmpeg/QCustomPlot/PCRE2 from Homebrew or vcpkg.
# Included by cmake/FramesmithPackaging.cmake. NOT VERIFIED on macOS yet (see docs/packaging.md).
#
# Deploy steps (run by `cmake --build build --target package`, during CPack's install):
#   1. Framesmith.app (the studio as an app bundle) with framesmith-cli beside it in
#      Contents/MacOS, the icon, licence texts and the demo image in Contents/Resources
#   2. macdeployqt: Qt frameworks and plugins (platforms/libqcocoa), and every non-system dylib
#      the two programs load (FFmpeg, QCustomPlot, PCRE2, LibTorch's libc10/libtorch/libtorch_cpu
#      and libomp, found through -libpath) -> Contents/Frameworks, install names rewritten
#   3. signing: ad hoc by default (arm64 code must carry a signature); set FRAMESMITH_CODESIGN_ID
#      to a "Developer ID Application" identity for a release, then notarise the .dmg
#      (xcrun notarytool submit --wait, xcrun stapler staple).
# No CUDA on macOS, so the 2 GB question does not arise: LibTorch's CPU dylibs are ~250 MB.
#
# The top-level install rules (ui/, app/) put the programs into bin/; on macOS they belong inside
# the bundle, so the disk image takes only the component "bundle" defined here.

set(FRAMESMITH_CODESIGN_ID "-" CACHE STRING "codesign identity for the app (\"-\": ad hoc)")
set(_bundle Framesmith.app)
set(_icns ${CMAKE_CURRENT_LIST_DIR}/framesmith.icns)

if(TARGET framesmith)
  target_sources(framesmith PRIVATE ${_icns})
  set_source_files_properties(${_icns} TARGET_DIRECTORY framesmith
                              PROPERTIES MACOSX_PACKAGE_LOCATION Resources)
  set_target_properties(framesmith PROPERTIES
    MACOSX_BUNDLE ON
    OUTPUT_NAME Framesmith
    MACOSX_BUNDLE_BUNDLE_NAME Framesmith
    MACOSX_BUNDLE_GUI_IDENTIFIER ${FRAMESMITH_APP_ID}
    MACOSX_BUNDLE_ICON_FILE framesmith.icns
    MACOSX_BUNDLE_BUNDLE_VERSION ${PROJECT_VERSION}
    MACOSX_BUNDLE_SHORT_VERSION_STRING ${PROJECT_VERSION}
    MACOSX_BUNDLE_COPYRIGHT "GPL-3.0-or-later")
  install(TARGETS framesmith BUNDLE DESTINATION . COMPONENT bundle)
endif()
if(TARGET framesmith-cli)
  install(TARGETS framesmith-cli RUNTIME DESTINATION ${_bundle}/Contents/MacOS COMPONENT bundle)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/THIRD_PARTY_NOTICES.md
        DESTINATION ${_bundle}/Contents/Resources COMPONENT bundle)
install(FILES ${PROJECT_SOURCE_DIR}/resources/demo/start.png
        DESTINATION ${_bundle}/Contents/Resources/demo COMPONENT bundle)

find_program(FRAMESMITH_MACDEPLOYQT macdeployqt HINTS "${Qt6_DIR}/../../../bin")
if(TARGET Qt6::macdeployqt)
  get_target_property(FRAMESMITH_MACDEPLOYQT Qt6::macdeployqt IMPORTED_LOCATION)
endif()
install(CODE "
  set(app \"\${CMAKE_INSTALL_PREFIX}/${_bundle}\")
  execute_process(COMMAND \"${FRAMESMITH_MACDEPLOYQT}\" \"\${app}\"
                          \"-executable=\${app}/Contents/MacOS/framesmith-cli\"
                          \"-libpath=${TORCH_INSTALL_PREFIX}/lib\"
                          -always-overwrite \"-codesign=${FRAMESMITH_CODESIGN_ID}\"
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR \"macdeployqt failed (\${rc})\")
  endif()" COMPONENT bundle)

set(CPACK_GENERATOR DragNDrop)
set(CPACK_COMPONENTS_ALL bundle)  # not the top-level rules' bin/ and share/
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DMG_VOLUME_NAME Framesmith)
set(CPACK_DMG_FORMAT UDBZ)
set(CPACK_PACKAGE_ICON ${_icns})
