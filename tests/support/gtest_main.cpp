// The main() of every GoogleTest executable here. It runs the tests as gtest_main does, then
// makes skips visible:
//  - writes <FRAMESMITH_BINARY_DIR>/test-results/<executable>.counts ("passed N", "failed N",
//    "skipped N", then one "skip <Suite.Name>\t<reason>" line per skipped test), which
//    tools/run-tests.sh adds up into "N passed, N failed, N skipped";
//  - prints "framesmith-gtest: all N tests skipped" when nothing ran and nothing failed, which
//    tests/CMakeLists.txt gives CTest as SKIP_REGULAR_EXPRESSION, so such an executable is a
//    skip in CTest, not a pass. (A run with any failure never prints it: a skip cannot hide one.)
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Skipped {
  std::string name;
  std::string reason;
};

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::vector<Skipped> skipped_tests(const testing::UnitTest& unit) {
  std::vector<Skipped> out;
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const testing::TestSuite* suite = unit.GetTestSuite(i);
    for (int j = 0; j < suite->total_test_count(); ++j) {
      const testing::TestInfo* info = suite->GetTestInfo(j);
      if (!info->should_run() || !info->result()->Skipped()) continue;
      std::string reason;
      const testing::TestResult* result = info->result();
      for (int k = 0; k < result->total_part_count(); ++k) {
        const testing::TestPartResult& part = result->GetTestPartResult(k);
        if (part.skipped()) reason = part.message();
      }
      out.push_back({std::string(suite->name()) + "." + info->name(),
                     reason.empty() ? "(no reason given)" : one_line(reason)});
    }
  }
  return out;
}

void write_counts(const char* argv0, const testing::UnitTest& unit,
                  const std::vector<Skipped>& skipped) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(FRAMESMITH_BINARY_DIR) / "test-results";
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::ofstream f(dir / (fs::path(argv0).filename().string() + ".counts"));
  f << "passed " << unit.successful_test_count() << "\n"
    << "failed " << unit.failed_test_count() << "\n"
    << "skipped " << unit.skipped_test_count() << "\n";
  for (const Skipped& s : skipped) f << "skip " << s.name << "\t" << s.reason << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  const testing::UnitTest& unit = *testing::UnitTest::GetInstance();
  const std::vector<Skipped> skipped = skipped_tests(unit);
  for (const Skipped& s : skipped) std::printf("skipped: %s: %s\n", s.name.c_str(), s.reason.c_str());
  write_counts(argv[0], unit, skipped);
  if (unit.failed_test_count() == 0 && unit.successful_test_count() == 0 &&
      unit.skipped_test_count() > 0) {
    std::printf("framesmith-gtest: all %d tests skipped\n", unit.skipped_test_count());
  }
  return rc;
}
