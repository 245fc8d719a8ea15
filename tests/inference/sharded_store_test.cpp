// Sharded checkpoints (io/sharded_store.h): an index.json and its shards must agree, and every
// way they can disagree is refused with the index, shard and tensor named; and the streaming
// safetensors writer (io/safetensors_stream.h) that writes them.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "framesmith/error.h"
#include "inference/test_support.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "io/safetensors_stream.h"

namespace framesmith {
namespace {

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

class ShardedIndex : public ::testing::Test {
 protected:
  void SetUp() override {
    io::save_safetensors(dir_.path() + "/s1.safetensors", {{"a", at::ones({2})}});
    io::save_safetensors(dir_.path() + "/s2.safetensors", {{"b", at::zeros({3})}});
    io::save_safetensors(dir_.path() + "/both.safetensors", {{"a", at::ones({2})}});
  }
  // The error opening an index with this text, or "" when it opens.
  std::string error_of(const std::string& index_text) {
    const std::string p = dir_.path() + "/x.safetensors.index.json";
    std::ofstream(p) << index_text;
    try {
      io::TensorStore::open(p);
      return "";
    } catch (const Error& e) {
      return e.what();
    }
  }
  test::TempDir dir_;
};

TEST_F(ShardedIndex, AGoodIndexOpens) {
  EXPECT_EQ(error_of(R"({"metadata": {"total_size": 20},
                         "weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})"),
            "");
}

TEST_F(ShardedIndex, BadIndexesAreRefusedByName) {
  struct Case {
    const char* text;
    std::vector<const char*> said;
  };
  const Case cases[] = {
      {R"({"weight_map": {"a": "s1.safetensors", "b": "missing.safetensors"}})",
       {"missing.safetensors", "cannot"}},
      {R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors", "a": "s2.safetensors"}})",
       {"\"a\"", "twice"}},
      {R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors"}})",
       {"\"b\"", "s1.safetensors", "not there"}},
      {R"({"weight_map": {"a": "both.safetensors", "b": "s2.safetensors", "c": "s1.safetensors"}})",
       {"\"c\""}},
      {R"({"weight_map": {"b": "s2.safetensors"}, "x": {"a": "s1.safetensors"}})", {}},
      {R"({"weight_map": {"a": "../s1.safetensors"}})", {"plain file name"}},
      {R"({"weight_map": {"a": "s1.bin"}})", {"s1.bin"}},
      {R"({"weight_map": {}})", {"no tensors"}},
      {R"({"weight_map": ["a"]})", {"weight_map"}},
      {R"({"metadata": {"total_size": "big"}, "weight_map": {"a": "s1.safetensors"}})",
       {"total_size"}},
      {R"([1, 2])", {"not a JSON object"}},
      {R"({"weight_map": {"a": 7}})", {"\"a\"", "not a file name"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string msg = error_of(c.text);
    if (c.said.empty()) {
      EXPECT_EQ(msg, "");  // unknown top-level keys are ignored
      continue;
    }
    EXPECT_NE(msg, "");
    for (const char* s : c.said) EXPECT_NE(msg.find(s), std::string::npos) << msg;
  }
}

TEST_F(ShardedIndex, ATensorInTwoShardsIsRefused) {
  // both.safetensors holds "a" too, while the index says "a" is in s1.
  io::save_safetensors(dir_.path() + "/both.safetensors",
                       {{"a", at::ones({2})}, {"c", at::ones({1})}});
  const std::string msg = error_of(R"({"weight_map": {"a": "s1.safetensors",
                                                     "c": "both.safetensors"}})");
  EXPECT_NE(msg.find("two shards"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"a\""), std::string::npos) << msg;
}

TEST_F(ShardedIndex, AShardWithTensorsTheIndexOmitsIsRefused) {
  const std::string msg = error_of(R"({"weight_map": {"c": "both.safetensors"}})");
  EXPECT_NE(msg.find("\"c\""), std::string::npos) << msg;
  io::save_safetensors(dir_.path() + "/both.safetensors",
                       {{"a", at::ones({2})}, {"c", at::ones({1})}});
  const std::string m2 = error_of(R"({"weight_map": {"c": "both.safetensors"}})");
  EXPECT_NE(m2.find("does not list"), std::string::npos) << m2;
  EXPECT_NE(m2.find("\"a\""), std::string::npos) << m2;
}

// ---------------------------------------------------------------------------------------------
// The streaming writer

TEST(SafetensorsStream, WritesWhatSaveSafetensorsWrites) {
  test::TempDir d;
  const at::Tensor a = at::arange(10, at::kFloat), b = at::arange(6, at::kLong).reshape({2, 3});
  {
    io::SafetensorsStreamWriter w(
        d.path() + "/s.safetensors",
        {{"a", at::kFloat, {10}}, {"e", at::kHalf, {0}}, {"b", at::kLong, {2, 3}}},
        {{"format", "pt"}}, io::SafetensorsStreamWriter::Data::kWritten);
    w.append(a.narrow(0, 0, 4));
    w.append(a.narrow(0, 4, 6));
    w.append(b);
    w.finish();
  }
  const auto f = io::SafeTensorsFile::open(d.path() + "/s.safetensors");
  EXPECT_TRUE(f->tensor("a").equal(a));
  EXPECT_TRUE(f->tensor("b").equal(b));
  EXPECT_EQ(f->tensor("e").numel(), 0);
  EXPECT_EQ(f->header().metadata.at("format"), "pt");
}

TEST(SafetensorsStream, MistakesAreErrorsAndLeaveNoFile) {
  test::TempDir d;
  const std::string p = d.path() + "/s.safetensors";
  {
    io::SafetensorsStreamWriter w(p, {{"a", at::kFloat, {4}}}, {},
                                  io::SafetensorsStreamWriter::Data::kWritten);
    EXPECT_THROW(w.append(at::ones({4}, at::kHalf)), Error);  // wrong dtype
    EXPECT_THROW(w.append(at::ones({5})), Error);             // past the shape
    w.append(at::ones({3}));
    EXPECT_THROW(w.finish(), Error);  // one element short
  }
  EXPECT_FALSE(io::is_file(p));
  EXPECT_FALSE(io::is_file(p + ".tmp"));
  const std::vector<io::PlannedTensor> twice = {{"a", at::kFloat, {4}}, {"a", at::kFloat, {1}}};
  EXPECT_THROW(
      io::SafetensorsStreamWriter(p, twice, {}, io::SafetensorsStreamWriter::Data::kSparse), Error);
  EXPECT_FALSE(io::is_file(p + ".tmp"));
}

}  // namespace
}  // namespace framesmith
