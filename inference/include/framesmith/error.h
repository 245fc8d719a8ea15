// Errors inside the engine are exceptions carrying one readable sentence; the public entry points
// turn them into a Status (see status.h). Plain C++: app/ and ui/ include this.
#pragma once
#include <stdexcept>
#include <string>

namespace framesmith {

// Thrown for bad input (files, configs, parameters). The message names the file, tensor or value.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Thrown when a job was cancelled through its cancel flag.
class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("cancelled") {}
};

}  // namespace framesmith
