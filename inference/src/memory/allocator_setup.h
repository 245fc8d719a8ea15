// CUDA caching-allocator configuration, decided before CUDA starts (the allocator reads its
// environment variable once, at its first use). With LibTorch >= 2.1, expandable segments let
// the cache grow and shrink in place instead of fragmenting into fixed blocks, which is what lets
// long video jobs run close to the budget; a variable the user set always wins.
#pragma once
#include <string>

#include "framesmith/events.h"

namespace framesmith::memory {

struct AllocatorChoice {
  bool expandable_segments = false;  // in effect (as far as the configuration says)
  bool user_override = false;        // the user's own variable was left as it was
  bool changed_environment = false;  // this process set PYTORCH_CUDA_ALLOC_CONF
  std::string variable;              // the variable in effect ("" = none)
  std::string conf;                  // its value ("" = LibTorch defaults)
  std::string description;           // one sentence for the log and the `allocator` event
  // How the configuration reached LibTorch: "api" (its settings API, besides the environment
  // for child processes), "environment" (read by LibTorch at CUDA's first allocation) or ""
  // (nothing to apply).
  std::string applied_by;
  // Expandable segments as LibTorch's own configuration reports them after applying: 1 on, 0 off,
  // -1 not readable (no settings API in this LibTorch).
  int read_back_expandable = -1;
};

// The decision alone, for tests: the values of PYTORCH_CUDA_ALLOC_CONF and PYTORCH_ALLOC_CONF
// (nullptr or "" = unset) and whether this LibTorch has expandable segments.
AllocatorChoice choose_allocator_conf(const char* cuda_alloc_conf, const char* alloc_conf,
                                      bool torch_has_expandable_segments);

// Reads the environment, sets PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True when chosen (or
// the user's PYTORCH_ALLOC_CONF, which older releases do not read), applies the configuration
// in effect through LibTorch's settings API where it has one (so a configuration object built
// before the variable was set still gets it), reads it back and returns the choice. A setting
// LibTorch refuses is an Error naming the variable.
AllocatorChoice configure_cuda_allocator();
// configure_cuda_allocator() once per process, at the first call. The CUDA probe calls it before
// it starts CUDA, so it runs before the allocator reads its variable; the governor reports it.
const AllocatorChoice& cuda_allocator_choice();

// The `allocator` event describing the choice (phase "setup").
Event allocator_event(const AllocatorChoice& choice, double t_s = 0.0);

}  // namespace framesmith::memory
