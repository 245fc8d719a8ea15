# The engine's small libraries besides LibTorch: nlohmann-json and CLI11 (headers) and PCRE2.
# From the system (Debian: nlohmann-json3-dev, libpcre2-dev) where they are installed; otherwise
# from FRAMESMITH_DEPS_DIR, a folder tools/bundle-engine-deps.sh fills from this machine's Debian
# packages (include/nlohmann, include/pcre2.h, lib/libpcre2-8.so.0) so that a machine with no
# -dev packages and no network (the lent GPU machine) still builds the engine. Either way the
# targets are nlohmann_json::nlohmann_json and PkgConfig::PCRE2.
set(FRAMESMITH_DEPS_DIR "" CACHE PATH "Folder with bundled nlohmann-json and PCRE2 (tools/bundle-engine-deps.sh)")

find_package(nlohmann_json 3 QUIET)
if(NOT nlohmann_json_FOUND)
  find_path(FRAMESMITH_NLOHMANN_INCLUDE nlohmann/json.hpp
            HINTS ${FRAMESMITH_DEPS_DIR}/include NO_CACHE)
  if(NOT FRAMESMITH_NLOHMANN_INCLUDE)
    message(FATAL_ERROR "nlohmann-json not found: install nlohmann-json3-dev, or set "
                        "FRAMESMITH_DEPS_DIR to a folder made by tools/bundle-engine-deps.sh")
  endif()
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
                        INTERFACE_INCLUDE_DIRECTORIES ${FRAMESMITH_NLOHMANN_INCLUDE})
  message(STATUS "nlohmann-json: bundled headers in ${FRAMESMITH_NLOHMANN_INCLUDE}")
endif()

# CLI11 (Debian: libcli11-dev): every command line of both programs.
find_package(CLI11 2 CONFIG QUIET)
if(NOT TARGET CLI11::CLI11)
  find_path(FRAMESMITH_CLI11_INCLUDE CLI/CLI.hpp HINTS ${FRAMESMITH_DEPS_DIR}/include NO_CACHE)
  if(NOT FRAMESMITH_CLI11_INCLUDE)
    message(FATAL_ERROR "CLI11 not found: install libcli11-dev, or set "
                        "FRAMESMITH_DEPS_DIR to a folder made by tools/bundle-engine-deps.sh")
  endif()
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  set_target_properties(CLI11::CLI11 PROPERTIES
                        INTERFACE_INCLUDE_DIRECTORIES ${FRAMESMITH_CLI11_INCLUDE})
  message(STATUS "CLI11: bundled headers in ${FRAMESMITH_CLI11_INCLUDE}")
endif()

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PCRE2 QUIET IMPORTED_TARGET libpcre2-8)
endif()
if(NOT TARGET PkgConfig::PCRE2)
  find_path(FRAMESMITH_PCRE2_INCLUDE pcre2.h HINTS ${FRAMESMITH_DEPS_DIR}/include NO_CACHE)
  # The runtime's versioned name too: without the -dev package there is no libpcre2-8.so link.
  find_library(FRAMESMITH_PCRE2_LIBRARY NAMES pcre2-8 libpcre2-8.so.0 NAMES_PER_DIR
               HINTS ${FRAMESMITH_DEPS_DIR}/lib NO_CACHE)
  if(NOT FRAMESMITH_PCRE2_INCLUDE OR NOT FRAMESMITH_PCRE2_LIBRARY)
    message(FATAL_ERROR "PCRE2 (8-bit) not found: install libpcre2-dev, or set "
                        "FRAMESMITH_DEPS_DIR to a folder made by tools/bundle-engine-deps.sh")
  endif()
  add_library(PkgConfig::PCRE2 UNKNOWN IMPORTED)
  set_target_properties(PkgConfig::PCRE2 PROPERTIES
                        IMPORTED_LOCATION ${FRAMESMITH_PCRE2_LIBRARY}
                        INTERFACE_INCLUDE_DIRECTORIES ${FRAMESMITH_PCRE2_INCLUDE})
  message(STATUS "PCRE2: ${FRAMESMITH_PCRE2_LIBRARY} with ${FRAMESMITH_PCRE2_INCLUDE}/pcre2.h")
endif()
