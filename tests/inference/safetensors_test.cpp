// safetensors reader/writer: round trips, zero-copy views, and every malformed-header path.
#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "framesmith/error.h"

using framesmith::Error;
using namespace framesmith::io;

namespace {

std::string temp_dir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/fs_st_XXXXXX";
    return std::string(::mkdtemp(tmpl));
  }();
  return dir;
}

// Writes a file with a raw header string and `data_bytes` zero bytes of data.
std::string write_raw(const std::string& name, const std::string& header, std::size_t data_bytes,
                      std::int64_t declared_len = -1) {
  const std::string path = temp_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t n = declared_len >= 0 ? std::uint64_t(declared_len) : header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(header.data(), header.size());
  std::string zeros(data_bytes, '\0');
  out.write(zeros.data(), zeros.size());
  return path;
}

std::string error_of(const std::string& path) {
  try {
    SafeTensorsFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SafeTensors, RoundTripAllDtypes) {
  std::vector<std::pair<std::string, at::Tensor>> ts = {
      {"f32", at::randn({3, 4})},
      {"f16", at::randn({5}).to(at::kHalf)},
      {"bf16", at::randn({2, 2, 2}).to(at::kBFloat16)},
      {"i64", at::arange(7, at::kLong)},
      {"i32", at::arange(3, at::kInt)},
      {"u8", at::arange(9, at::kByte).reshape({3, 3})},
      {"bool", at::tensor({1, 0, 1}, at::kInt).to(at::kBool)},
      {"empty", at::zeros({0, 4})},
      {"scalar", at::scalar_tensor(2.5)},
  };
  const std::string path = temp_dir() + "/rt.safetensors";
  save_safetensors(path, ts, {{"kind", "test"}});
  auto f = SafeTensorsFile::open(path);
  EXPECT_EQ(f->header().metadata.at("kind"), "test");
  for (const auto& [name, t] : ts) {
    at::Tensor r = f->tensor(name);
    EXPECT_EQ(r.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(r.sizes(), t.sizes()) << name;
    EXPECT_TRUE(at::equal(r, t)) << name;
  }
}

TEST(SafeTensors, ViewsOutliveTheFileObject) {
  const std::string path = temp_dir() + "/alive.safetensors";
  save_safetensors(path, {{"a", at::arange(1000, at::kFloat)}});
  at::Tensor t;
  {
    auto f = SafeTensorsFile::open(path);
    t = f->tensor("a");
  }
  EXPECT_FLOAT_EQ(t[999].item<float>(), 999.f);
}

TEST(SafeTensors, UnalignedDataIsCopied) {
  // A one-byte tensor first shifts the f32 tensor to an odd offset.
  const std::string path = temp_dir() + "/unaligned.safetensors";
  std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  {
    std::ofstream out(path, std::ios::binary);
    std::uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header;
    char a = 7;
    float b[2] = {1.5f, -2.f};
    out.write(&a, 1);
    out.write(reinterpret_cast<const char*>(b), 8);
  }
  auto f = SafeTensorsFile::open(path);
  at::Tensor b = f->tensor("b");
  EXPECT_FLOAT_EQ(b[0].item<float>(), 1.5f);
  EXPECT_FLOAT_EQ(b[1].item<float>(), -2.f);
}

TEST(SafeTensors, TruncatedFile) {
  const std::string path = temp_dir() + "/full.safetensors";
  save_safetensors(path, {{"weight", at::randn({64})}});
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const std::string cut = temp_dir() + "/cut.safetensors";
  std::ofstream(cut, std::ios::binary).write(bytes.data(), bytes.size() - 10);
  const std::string msg = error_of(cut);
  EXPECT_NE(msg.find("weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(SafeTensors, TooShortAndHugeHeader) {
  EXPECT_NE(error_of(write_raw("short", "", 0, -1)).find("header"), std::string::npos);
  EXPECT_NE(error_of(write_raw("huge", "{}", 0, 200000000)).find("100 MB"), std::string::npos);
  EXPECT_NE(error_of(write_raw("past", "{}", 0, 5000)).find("past the end"), std::string::npos);
}

TEST(SafeTensors, OverlappingOffsets) {
  const std::string h = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  const std::string msg = error_of(write_raw("overlap", h, 12));
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"x\""), std::string::npos) << msg;
}

// JSON parsers keep the last of two equal keys: a tensor named twice is refused, not dropped.
TEST(SafeTensors, DuplicateTensorNames) {
  const std::string h = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  const std::string msg = error_of(write_raw("dup", h, 8));
  EXPECT_NE(msg.find("names tensor \"w\" twice"), std::string::npos) << msg;
  // A nested key may repeat another tensor's name: only top-level names must be unique.
  const std::string ok = R"({"__metadata__":{"w":"x"},"w":{"dtype":"F32","shape":[1],)"
                         R"("data_offsets":[0,4]}})";
  EXPECT_EQ(error_of(write_raw("nested", ok, 4)), "");
}

TEST(SafeTensors, WrongDtypeSize) {
  const std::string h = R"({"w":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}})";
  const std::string msg = error_of(write_raw("dtsize", h, 16));
  EXPECT_NE(msg.find("\"w\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs 8 bytes"), std::string::npos) << msg;
}

TEST(SafeTensors, MalformedHeaders) {
  const char* bad[] = {
      "not json",
      "[1,2]",
      R"({"w":{"dtype":"F32","shape":[1]}})",
      R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})",
      R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})",
      R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,4]}})",
      R"({"__metadata__":{"a":1}})",
  };
  int i = 0;
  for (const char* h : bad) {
    const std::string msg = error_of(write_raw("bad" + std::to_string(i++), h, 4));
    EXPECT_FALSE(msg.empty()) << h;
  }
}

TEST(SafeTensors, RefusesPickles) {
  const std::string path = write_raw("model.ckpt", "{}", 0);
  const std::string msg = error_of(path);
  EXPECT_NE(msg.find("pickled"), std::string::npos) << msg;
  EXPECT_NE(msg.find("arbitrary code"), std::string::npos) << msg;
}

TEST(SafeTensors, ShardedIndex) {
  const std::string dir = temp_dir() + "/sharded";
  ::mkdir(dir.c_str(), 0755);
  save_safetensors(dir + "/model-00001-of-00002.safetensors", {{"a", at::ones({2})}});
  save_safetensors(dir + "/model-00002-of-00002.safetensors", {{"b", at::zeros({3})}});
  nlohmann::json idx = {
      {"metadata", {{"total_size", 20}}},
      {"weight_map",
       {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}}}};
  std::ofstream(dir + "/model.safetensors.index.json") << idx.dump();
  TensorStore s = TensorStore::open(dir);
  EXPECT_EQ(s.names().size(), 2u);
  EXPECT_EQ(s.tensor("b").numel(), 3);
  EXPECT_EQ(s.total_bytes(), 20u);

  // An index that points at a tensor its shard lacks is named precisely.
  nlohmann::json bad = {{"weight_map", {{"c", "model-00001-of-00002.safetensors"}}}};
  std::ofstream(dir + "/bad.safetensors.index.json") << bad.dump();
  try {
    TensorStore::open(dir + "/bad.safetensors.index.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"c\""), std::string::npos) << e.what();
  }
}
