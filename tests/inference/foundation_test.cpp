// Units, events, request JSON and model-set location (folder and Hugging Face cache).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "framesmith/error.h"
#include "framesmith/events.h"
#include "framesmith/generation_options.h"
#include "framesmith/model_set.h"
#include "framesmith/request_json.h"
#include "framesmith/units.h"
#include "framesmith/utf8.h"
#include "test_support.h"

using namespace framesmith;
using framesmith::test::error_of;

namespace {

std::string make_temp_dir() {
  char tmpl[] = "/tmp/fs_found_XXXXXX";
  return ::mkdtemp(tmpl);
}

void mkdirs(const std::string& path) {
  std::string partial;
  for (std::size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!partial.empty()) ::mkdir(partial.c_str(), 0755);
    }
    if (i < path.size()) partial += path[i];
  }
}

void touch(const std::string& path, const std::string& text = "{}") {
  std::ofstream(path) << text;
}

}  // namespace

TEST(Units, ParseSize) {
  EXPECT_EQ(parse_size("50331648"), 50331648);
  EXPECT_EQ(parse_size("6GiB"), 6LL << 30);
  EXPECT_EQ(parse_size("512MiB"), 512LL << 20);
  EXPECT_EQ(parse_size("1.5 GiB"), 3LL << 29);
  EXPECT_EQ(parse_size("2GB"), 2000000000LL);
  EXPECT_EQ(parse_size("64k"), 65536);
  for (const char* bad : {"", "GiB", "-5", "6 parsecs", "1e400", "12abc"})
    EXPECT_THROW(parse_size(bad), Error) << bad;
}

// Seeds are exact 64-bit integers: the old parser went through a double, so 2^64 - 1 and 2^70
// became 0, 2^53 + 1 became 2^53 and 1.5 became 1.
TEST(Units, ParseSeedIsExact) {
  EXPECT_EQ(parse_seed("0").seed, 0u);
  EXPECT_EQ(parse_seed("31337").seed, 31337u);
  EXPECT_EQ(parse_seed("9007199254740993").seed, 9007199254740993ull);        // 2^53 + 1
  EXPECT_EQ(parse_seed("9223372036854775807").seed, 9223372036854775807ull);  // 2^63 - 1
  EXPECT_EQ(parse_seed("18446744073709551615").seed, UINT64_MAX);             // 2^64 - 1
  EXPECT_EQ(parse_seed(" 42 ").seed, 42u);
  EXPECT_FALSE(parse_seed("42").random);
  EXPECT_TRUE(parse_seed("-1").random);
  for (const char* bad : {"18446744073709551616", "1180591620717411303424", "1.5", "1e3", "-2",
                          "+5", "", "0x10", "12abc", "-1.0"}) {
    EXPECT_THROW(parse_seed(bad), Error) << bad;
  }
}

TEST(Utf8, MalformedBytesAreFoundAndEscaped) {
  EXPECT_TRUE(is_valid_utf8("a cat \xC3\xA9 \xE2\x86\x92 \xF0\x9F\x90\x88"));
  EXPECT_EQ(invalid_utf8_offset("ab\xFF"), 2u);
  for (const char* bad : {"\xFF", "\xC0\xAF" /* overlong */, "\xED\xA0\x80" /* surrogate */,
                          "\xF4\x90\x80\x80" /* > U+10FFFF */, "\xE2\x86" /* cut short */}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << bad;
  }
  EXPECT_EQ(escape_invalid_utf8("a\xFF"
                                "b\xC3\xA9"),
            "a\\xFFb\xC3\xA9");
}

// A prompt byte 0xFF used to surface as "[json.exception.type_error.316] ...".
TEST(Utf8, RequestsAndEventsNeverFailToSerialise) {
  GenerationRequest r;
  r.prompt = "a cat \xFF jumps";
  try {
    validate_request(r);
    ADD_FAILURE() << "a malformed prompt was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("the prompt is not valid UTF-8 (byte 6"), std::string::npos) << m;
    EXPECT_EQ(m.find("json.exception"), std::string::npos) << m;
    EXPECT_NE(m.find("\\xFF"), std::string::npos) << m;
  }
  Event e;
  e.type = EventType::kError;
  e.phase = "text \xFE";
  e.texts = {{"message", "/models/\xFF/transformer: not found"}};
  std::string line;
  ASSERT_NO_THROW(line = to_json_line(e));
  EXPECT_EQ(event_from_json_line(line).text("message"), "/models/\\xFF/transformer: not found");
}

TEST(Units, FormatSize) {
  EXPECT_EQ(format_size(17), "17 B");
  EXPECT_EQ(format_size(3.1 * (1 << 30)), "3.1 GiB");
  EXPECT_EQ(format_size(512.0 * (1 << 20)), "512.0 MiB");
}

TEST(Events, JsonLineRoundTrip) {
  Event e;
  e.type = EventType::kOomRecovered;
  e.t_s = 12.0345;
  e.phase = "decode chunk 3";
  e.numbers = {{"requested", 3189000000.0}, {"free", 1024}};
  e.texts = {{"action", "chunk 16→4"}, {"outcome", "ok"}};
  const std::string line = to_json_line(e);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("\"type\":\"oom_recovered\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"requested\":3189000000"), std::string::npos) << line;
  const Event back = event_from_json_line(line);
  EXPECT_EQ(back.type, e.type);
  EXPECT_NEAR(back.t_s, 12.035, 1e-9);
  EXPECT_EQ(back.phase, e.phase);
  EXPECT_EQ(back.number("requested"), 3189000000.0);
  EXPECT_EQ(back.text("action"), "chunk 16→4");
  EXPECT_THROW(event_from_json_line("{\"type\":\"bogus\"}"), Error);
  EXPECT_THROW(event_from_json_line("not json"), Error);
}

TEST(RequestJson, RoundTripAndValidation) {
  GenerationRequest r;
  r.prompt = "a cat \"dances\"";
  r.seed = 42;
  r.variant = TransformerVariant::kF1;
  r.cfg = 2.5;
  r.vram_budget_bytes = 6LL << 30;
  GenerationRequest back;
  request_from_json(request_to_json(r), back);
  EXPECT_EQ(back.prompt, r.prompt);
  EXPECT_EQ(back.seed, 42u);
  EXPECT_EQ(back.variant, TransformerVariant::kF1);
  EXPECT_DOUBLE_EQ(back.cfg, 2.5);
  EXPECT_EQ(back.vram_budget_bytes, 6LL << 30);

  GenerationRequest bad;
  EXPECT_THROW(request_from_json(R"({"steps": 0})", bad), Error);
  EXPECT_THROW(request_from_json(R"({"variant": "f2"})", bad), Error);
  EXPECT_THROW(request_from_json(R"({"seed": "x"})", bad), Error);
  // A saved seed is read back exactly, and what is not a 64-bit unsigned integer is refused.
  for (const std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{9007199254740993ull},
                                   std::uint64_t{9223372036854775808ull}, UINT64_MAX}) {
    GenerationRequest s = r;
    s.seed = seed;
    GenerationRequest s_back;
    request_from_json(request_to_json(s), s_back);
    EXPECT_EQ(s_back.seed, seed);
  }
  for (const char* bad_seed : {R"({"seed": -1})", R"({"seed": 1.5})", R"({"seed": 1e30})",
                               R"({"seed": 18446744073709551616})"}) {
    EXPECT_THROW(request_from_json(bad_seed, bad), Error) << bad_seed;
  }
  EXPECT_THROW(request_from_json("[", bad), Error);
  try {
    GenerationRequest q;
    request_from_json(R"({"seconds": 500})", q);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("seconds"), std::string::npos);
  }
}

// The cache choice: kept in job files, read from files written before it existed ("teacache":
// true / false), and set from the command line with the same spelling as the CLI's.
// Job files carry their format: a file of today's says 3, one from before says nothing and still
// loads with today's defaults for what it lacks, one from a newer Framesmith is refused.
TEST(RequestJson, JobFormatIsVersionedOldFilesLoadNewerAreRefused) {
  GenerationRequest r;
  r.prompt = "[0s: a cat sits] [2s: it jumps]";
  r.blend_sections = 3;
  r.loras = {{"/l/style.safetensors", 0.5}};
  r.end_frame_strength = 0.4;
  const nlohmann::json j = nlohmann::json::parse(request_to_json(r));
  EXPECT_EQ(j.at("job_format"), 3);
  GenerationRequest back;
  request_from_json(request_to_json(r), back);
  EXPECT_EQ(back.blend_sections, 3);
  EXPECT_EQ(back.end_frame_strength, 0.4);
  ASSERT_EQ(back.loras.size(), 1u);
  // A format-1 file, as the first releases wrote it.
  GenerationRequest old;
  request_from_json(R"({"framesmith_version": "0.1", "prompt": "a cat", "seconds": 3,
                        "teacache": true, "window": 9})",
                    old);
  EXPECT_EQ(old.prompt, "a cat");
  EXPECT_TRUE(old.loras.empty());
  EXPECT_EQ(old.blend_sections, 0);
  EXPECT_EQ(old.end_frame_strength, 1.0);
  EXPECT_TRUE(old.cache == StepCache::kTeaCache);
  GenerationRequest newer;
  EXPECT_NE(error_of([&] {
              request_from_json(R"({"job_format": 4})", newer);
            }).find("newer than this Framesmith reads (3)"),
            std::string::npos);
  EXPECT_THROW(request_from_json(R"({"job_format": "two"})", newer), Error);
  EXPECT_THROW(request_from_json(R"({"blend_sections": -1})", newer), Error);
  EXPECT_THROW(request_from_json(R"({"end_frame_strength": 2})", newer), Error);
  EXPECT_THROW(request_from_json(R"({"prompt": "[0s: a] [9s: b]", "seconds": 5})", newer), Error);
}

TEST(RequestJson, StepCacheChoiceRoundTripsAndReadsOldFiles) {
  GenerationRequest r;
  r.cache = StepCache::kMagCache;
  r.magcache_threshold = 0.2;
  r.magcache_max_skips = 3;
  r.magcache_retention = 0.5;
  r.teacache_threshold = 0.3;
  GenerationRequest back;
  request_from_json(request_to_json(r), back);
  EXPECT_EQ(back.cache, StepCache::kMagCache);
  EXPECT_EQ(back.magcache_threshold, 0.2);
  EXPECT_EQ(back.magcache_max_skips, 3);
  EXPECT_EQ(back.magcache_retention, 0.5);
  EXPECT_EQ(back.teacache_threshold, 0.3);

  GenerationRequest old;
  request_from_json(R"({"teacache": false})", old);
  EXPECT_EQ(old.cache, StepCache::kNone);
  request_from_json(R"({"teacache": true})", old);
  EXPECT_EQ(old.cache, StepCache::kTeaCache);
  GenerationRequest bad;
  EXPECT_THROW(request_from_json(R"({"cache": "fastcache"})", bad), Error);
  EXPECT_THROW(request_from_json(R"({"cache": 1})", bad), Error);
  EXPECT_THROW(request_from_json(R"({"magcache": {"retention": 2}})", bad), Error);
  EXPECT_THROW(request_from_json(R"({"magcache": {"max_skips": "two"}})", bad), Error);
  EXPECT_THROW(request_from_json(R"({"teacache_threshold": 0})", bad), Error);

  auto options = [](const std::vector<std::string>& args) {
    GenerationRequest q;
    apply_generation_options(
        parse_command_options(args, 0, generation_value_options(), generation_flag_options()), q);
    return q;
  };
  EXPECT_EQ(options({}).cache, StepCache::kTeaCache);  // FramePack's default
  EXPECT_EQ(options({"--no-teacache"}).cache, StepCache::kNone);
  const GenerationRequest m = options({"--cache", "magcache", "--magcache-threshold", "0.05",
                                       "--magcache-max-skips", "4", "--magcache-retention", "0.3"});
  EXPECT_EQ(m.cache, StepCache::kMagCache);
  EXPECT_EQ(m.magcache_threshold, 0.05);
  EXPECT_EQ(m.magcache_max_skips, 4);
  EXPECT_EQ(m.magcache_retention, 0.3);
  EXPECT_EQ(options({"--cache", "none"}).cache, StepCache::kNone);
  EXPECT_EQ(options({"--teacache-threshold", "0.2"}).teacache_threshold, 0.2);
  EXPECT_THROW(options({"--cache", "TeaCache"}), Error);
  EXPECT_THROW(options({"--magcache-max-skips", "many"}), Error);
}

TEST(ModelSet, DiffusersFolder) {
  const std::string root = make_temp_dir();
  mkdirs(root + "/transformer");
  touch(root + "/transformer/config.json");
  mkdirs(root + "/tokenizer_2");
  touch(root + "/tokenizer_2/vocab.json");  // merges.txt missing: not found
  const ModelSet set = locate_model_set(root);
  ASSERT_NE(set.find(Component::kTransformer), nullptr);
  EXPECT_EQ(set.find(Component::kTransformer)->path, root + "/transformer");
  EXPECT_EQ(set.find(Component::kTokenizer2), nullptr);
  EXPECT_EQ(set.missing.size(), all_components().size() - 1);
  EXPECT_THROW(locate_model_set(root + "/nope"), Error);
}

TEST(ModelSet, HubCacheFollowsRefsMain) {
  const std::string cache = make_temp_dir();
  const std::string fp = cache + "/models--lllyasviel--FramePackI2V_HY";
  mkdirs(fp + "/refs");
  mkdirs(fp + "/snapshots/abc123");
  mkdirs(fp + "/snapshots/old999");
  touch(fp + "/snapshots/abc123/config.json");
  touch(fp + "/snapshots/old999/config.json");
  touch(fp + "/refs/main", "abc123");
  const std::string hv = cache + "/models--hunyuanvideo-community--HunyuanVideo";
  mkdirs(hv + "/refs");
  mkdirs(hv + "/snapshots/r1/vae");
  touch(hv + "/snapshots/r1/vae/config.json");
  touch(hv + "/refs/main", "r1\n");

  ::setenv("HF_HUB_CACHE", cache.c_str(), 1);
  const ModelSet set = locate_model_set("hf");
  ::unsetenv("HF_HUB_CACHE");
  ASSERT_NE(set.find(Component::kTransformer), nullptr);
  EXPECT_EQ(set.find(Component::kTransformer)->path, fp + "/snapshots/abc123");
  EXPECT_NE(set.find(Component::kTransformer)->origin.find("FramePackI2V_HY"), std::string::npos);
  ASSERT_NE(set.find(Component::kVae), nullptr);
  EXPECT_EQ(set.find(Component::kVae)->path, hv + "/snapshots/r1/vae");
  EXPECT_EQ(set.find(Component::kImageEncoder), nullptr);

  // F1 looks in its own repository, which is absent here.
  const ModelSet f1 = locate_model_set("hf:" + cache, TransformerVariant::kF1);
  EXPECT_EQ(f1.find(Component::kTransformer), nullptr);
  EXPECT_NE(f1.find(Component::kVae), nullptr);
}

TEST(ModelSet, HubCacheRefusesPathTricks) {
  const std::string cache = make_temp_dir();
  const std::string fp = cache + "/models--lllyasviel--FramePackI2V_HY";
  mkdirs(fp + "/refs");
  mkdirs(fp + "/snapshots");
  touch(fp + "/refs/main", "../../../etc");
  const ModelSet set = locate_model_set("hf:" + cache);
  EXPECT_EQ(set.find(Component::kTransformer), nullptr);
}
