#include "memory/allocator_setup.h"

#include <cstdlib>

#include "compat/torch_compat.h"
#include "framesmith/error.h"

namespace framesmith::memory {

namespace {
constexpr const char* kCudaConfVar = "PYTORCH_CUDA_ALLOC_CONF";
constexpr const char* kConfVar = "PYTORCH_ALLOC_CONF";  // the device-generic name of newer releases
constexpr const char* kExpandable = "expandable_segments:True";

bool is_set(const char* v) {
  return v != nullptr && v[0] != '\0';
}

void set_env(const char* name, const char* value) {
#ifdef _WIN32
  const int rc = _putenv_s(name, value);
#else
  const int rc = setenv(name, value, /*overwrite=*/1);
#endif
  if (rc != 0) throw Error(std::string("cannot set environment variable ") + name);
}
}  // namespace

AllocatorChoice choose_allocator_conf(const char* cuda_alloc_conf, const char* alloc_conf,
                                      bool torch_has_expandable_segments) {
  AllocatorChoice c;
  if (is_set(cuda_alloc_conf) || is_set(alloc_conf)) {
    c.user_override = true;
    c.variable = is_set(cuda_alloc_conf) ? kCudaConfVar : kConfVar;
    c.conf = is_set(cuda_alloc_conf) ? cuda_alloc_conf : alloc_conf;
    c.expandable_segments = c.conf.find(kExpandable) != std::string::npos;
    c.description = c.variable + "=" + c.conf + " set by the user; left as it is";
    if (!is_set(cuda_alloc_conf)) {
      // Releases before the device-generic name read only the CUDA one: the user's value is
      // copied there, so every LibTorch sees it (newer ones read the same value twice).
      c.changed_environment = true;
      c.description += " (also given as " + std::string(kCudaConfVar) + ")";
    }
    return c;
  }
  if (!torch_has_expandable_segments) {
    c.description = std::string("LibTorch ") + compat::torch_version_string() +
                    " has no expandable segments (2.1+); default caching allocator";
    return c;
  }
  c.expandable_segments = true;
  c.changed_environment = true;
  c.variable = kCudaConfVar;
  c.conf = kExpandable;
  c.description = std::string(kCudaConfVar) + "=" + kExpandable +
                  " (expandable segments: less fragmentation on long jobs)";
  return c;
}

AllocatorChoice configure_cuda_allocator() {
  AllocatorChoice c = choose_allocator_conf(std::getenv(kCudaConfVar), std::getenv(kConfVar),
                                            FRAMESMITH_HAS_EXPANDABLE_SEGMENTS);
  if (c.changed_environment) set_env(kCudaConfVar, c.conf.c_str());
  if (c.conf.empty()) return c;
  c.applied_by = "environment";
  try {
    if (compat::set_allocator_settings(c.conf)) c.applied_by = "api";
  } catch (const c10::Error& e) {
    throw Error(c.variable + "=" + c.conf + " is not a configuration LibTorch " +
                compat::torch_version_string() + " accepts: " + e.what_without_backtrace());
  }
  c.read_back_expandable = compat::allocator_expandable_segments();
  if (c.read_back_expandable >= 0) {
    // LibTorch's word over our reading of the string.
    c.expandable_segments = c.read_back_expandable == 1;
    c.description += std::string("; LibTorch's allocator configuration reads back expandable ") +
                     "segments " + (c.expandable_segments ? "on" : "off");
  }
  return c;
}

const AllocatorChoice& cuda_allocator_choice() {
  static const AllocatorChoice choice = configure_cuda_allocator();
  return choice;
}

Event allocator_event(const AllocatorChoice& choice, double t_s) {
  Event e;
  e.type = EventType::kAllocator;
  e.t_s = t_s;
  e.phase = "setup";
  e.numbers["expandable_segments"] = choice.expandable_segments ? 1 : 0;
  e.texts["action"] = choice.user_override         ? "user configuration"
                      : choice.changed_environment ? "expandable segments"
                                                   : "defaults";
  if (!choice.variable.empty()) e.texts["conf"] = choice.variable + "=" + choice.conf;
  if (!choice.applied_by.empty()) e.texts["applied_by"] = choice.applied_by;
  e.numbers["read_back_expandable"] = choice.read_back_expandable;
  e.texts["message"] = choice.description;
  return e;
}

}  // namespace framesmith::memory
