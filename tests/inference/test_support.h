// Helpers shared by the engine's tests.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "framesmith/error.h"
#include "golden/golden.h"

namespace framesmith::test {

// A fresh folder under /tmp, removed with everything in it at the end of the scope.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/framesmith-test-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    if (!p) throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What framesmith::Error `f()` throws, "" when it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A golden case's outputs: each printed with its numbers, each expected to pass; none at all is
// a failure too.
inline void expect_all_pass(const std::vector<golden::CaseResult>& results) {
  ASSERT_FALSE(results.empty());
  for (const golden::CaseResult& r : results) {
    std::printf("%s/%s: rel-L2 %.3e, max-abs %.3e (tolerance %.0e)%s%s\n", r.case_name.c_str(),
                r.output.c_str(), r.rel_l2, r.max_abs, r.tolerance, r.error.empty() ? "" : ": ",
                r.error.c_str());
    EXPECT_TRUE(r.passed) << r.case_name << "/" << r.output << " rel-L2 " << r.rel_l2 << " max-abs "
                          << r.max_abs << " (tolerance " << r.tolerance << ") " << r.error;
  }
}

}  // namespace framesmith::test
