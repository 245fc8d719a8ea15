// Unit tests of the sampling pieces against numbers computed by FramePack's own Python functions
// (PyTorch 1.13, float32 CPU): flux sigmas, the CPU generator, UniPC bh1 on a toy flow model, CFG
// rescale, the section schedule and soft_append.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <framesmith/error.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <vector>

#include "pipeline/preview.h"
#include "pipeline/section_schedule.h"
#include "sampling/flow_sigmas.h"
#include "sampling/guidance.h"
#include "sampling/sample_hunyuan.h"
#include "sampling/unipc.h"

namespace fs = framesmith;
namespace sampling = framesmith::sampling;
namespace pipeline = framesmith::pipeline;

namespace {

at::Tensor floats(const std::vector<float>& v) {
  return at::tensor(at::ArrayRef<float>(v), at::kFloat);
}

void expect_close(const at::Tensor& actual, const std::vector<float>& expected, double tol,
                  const char* what) {
  const at::Tensor a = actual.to(at::kFloat).contiguous().flatten();
  ASSERT_EQ(a.numel(), static_cast<std::int64_t>(expected.size())) << what;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(a[static_cast<std::int64_t>(i)].item<float>(), expected[i],
                tol * std::max(1.0f, std::fabs(expected[i])))
        << what << " element " << i;
  }
}

// The toy flow model of the reference run: tanh(0.7 x + sigma) / 2 + x / 10.
at::Tensor toy_flow(const at::Tensor& x, const at::Tensor& sigma) {
  return at::tanh(0.7 * x + sigma.view({-1, 1, 1, 1, 1})) * 0.5 + 0.1 * x;
}

}  // namespace

TEST(FlowSigmas, MuFollowsFramePack) {
  EXPECT_DOUBLE_EQ(sampling::calculate_flux_mu(48), 0.46479166666666666);
  EXPECT_DOUBLE_EQ(sampling::calculate_flux_mu(14400), std::log(7.0));  // capped
  EXPECT_NEAR(sampling::calculate_flux_mu(256), 0.5, 1e-15);
  EXPECT_NEAR(sampling::calculate_flux_mu(4096), 1.15, 1e-15);
  EXPECT_EQ(sampling::flux_seq_len(3, 8, 8), 48);
  EXPECT_EQ(sampling::flux_seq_len(9, 80, 60), 10800);
  EXPECT_DOUBLE_EQ(sampling::flux_mu_from_shift(3.0), std::log(3.0));
  EXPECT_THROW(sampling::flux_mu_from_shift(0.0), fs::Error);
}

TEST(FlowSigmas, ValuesEqualFramePack) {
  // get_flux_sigmas_from_mu(n, calculate_flux_mu(L)) printed by PyTorch. To float32 rounding:
  // one step at 1.0 (2^-23), which LibTorch 2.14's CPU exp and 1.13's differ by on some values.
  constexpr double kSigmaTol = 1.2e-7;
  const at::Tensor s4 = sampling::flux_sigmas_for_latent(4, 3, 8, 8);
  expect_close(s4, {1.f, 0.826841235f, 0.614150286f, 0.346644729f, 0.f}, kSigmaTol, "steps 4");
  EXPECT_EQ(s4.scalar_type(), at::kFloat);
  EXPECT_EQ(s4[4].item<float>(), 0.0f);
  EXPECT_EQ(s4[0].item<float>(), 1.0f);
  expect_close(sampling::flux_sigmas_for_latent(6, 3, 8, 8),
               {1.f, 0.888373017f, 0.760957956f, 0.614150286f, 0.443157911f, 0.241468325f, 0.f},
               kSigmaTol, "steps 6");
  expect_close(sampling::flux_sigmas(25, sampling::calculate_flux_mu(14400)),
               {1.f,          0.994082749f, 0.987730086f, 0.980891705f, 0.973509967f, 0.965517223f,
                0.956834555f, 0.947368443f, 0.937007844f, 0.925619781f, 0.913043499f, 0.899082541f,
                0.883495152f, 0.865979433f, 0.846153855f, 0.823529422f, 0.797468364f, 0.767123282f,
                0.731343269f, 0.688524544f, 0.636363626f, 0.571428537f, 0.488372058f, 0.378378391f,
                0.225806445f, 0.f},
               kSigmaTol, "steps 25, capped mu");
  expect_close(sampling::flux_sigmas_for_latent(5, 9, 80, 80, 3.0),
               {1.f, 0.923076987f, 0.818181872f, 0.666666687f, 0.428571463f, 0.f}, kSigmaTol,
               "shift 3");
  // Hand check of the formula itself.
  const double mu = sampling::calculate_flux_mu(48);
  EXPECT_NEAR(sampling::flux_time_shift(0.75, mu), std::exp(mu) / (std::exp(mu) + 1.0 / 3.0),
              1e-15);
  EXPECT_THROW(sampling::flux_sigmas(0, mu), fs::Error);
}

TEST(CpuGenerator, DrawsAsPyTorch) {
  // torch.manual_seed(0); torch.randn(3)
  at::Generator g = at::detail::createCPUGenerator(0);
  expect_close(at::randn({3}, g), {1.54099607f, -0.293428898f, -2.17878938f}, 1e-7, "randn(3)");
  // torch.Generator('cpu').manual_seed(0): randn(20) (vectorised path for >= 16), then the
  // same generator continues with randn(2, 3).
  at::Generator g2 = at::detail::createCPUGenerator(0);
  expect_close(at::randn({20}, g2),
               {-1.12583983f,  -1.15236020f,  -0.250578582f, -0.433878809f, 0.598839462f,
                -1.55509508f,  -0.341360390f, 1.85300612f,   0.468096405f,  -0.157712445f,
                1.44366014f,   0.266049415f,  1.38936615f,   1.58633423f,   0.946298361f,
                -0.843676746f, 0.931826591f,  1.25900924f,   2.00498056f,   0.0537369028f},
               1e-7, "randn(20)");
  expect_close(at::randn({2, 3}, g2),
               {-0.891995311f, -1.50910771f, 0.370393544f, 1.45650256f, 0.939809918f, 0.774848819f},
               1e-7, "randn(2, 3) continued");
}

TEST(UniPC, MatchesFramePackOnToyModel) {
  // FramePack's sample_unipc on k_model(x, t) = x - toy_flow(x, t) * t, noise randn((1,2,1,2,2))
  // from Generator('cpu').manual_seed(0), sigmas for a 3x8x8 latent. Orders 0, 1, 2, 3, 3.
  const std::vector<std::pair<int, std::vector<float>>> expected = {
      {1,
       {0.902303636f, -0.594589472f, -1.72007692f, 0.0691394806f, -1.09421194f, -1.26922596f,
        -0.065541774f, 0.294409096f}},
      {2,
       {0.935994923f, -0.481568158f, -1.67717826f, 0.136209562f, -0.97641778f, -1.1680603f,
        0.0101370364f, 0.349144191f}},
      {3,
       {0.965126514f, -0.40116787f, -1.64704585f, 0.190685451f, -0.897568703f, -1.09998298f,
        0.070197247f, 0.394989848f}},
      {4,
       {0.975414038f, -0.386891425f, -1.65404606f, 0.210141212f, -0.902276516f, -1.10894036f,
        0.0903527141f, 0.41232267f}},
      {6,
       {0.980842113f, -0.386841089f, -1.6562835f, 0.217200756f, -0.905885398f, -1.11229575f,
        0.0966407508f, 0.419811696f}}};
  const std::vector<std::pair<int, std::vector<float>>> expected_last_x = {
      {4,
       {1.15577507f, -0.391602516f, -1.8431102f, 0.304512948f, -0.992513537f, -1.23003364f,
        0.166571647f, 0.534367323f}},
      {6,
       {1.10089779f, -0.394052505f, -1.78759658f, 0.274982989f, -0.969497859f, -1.19700086f,
        0.142094359f, 0.496941715f}}};
  for (const auto& [steps, values] : expected) {
    at::Generator g = at::detail::createCPUGenerator(0);
    const at::Tensor noise = at::randn({1, 2, 1, 2, 2}, g);
    int calls = 0, callbacks = 0;
    at::Tensor last_x;
    const sampling::FlowModel model = [&](const at::Tensor& x, const at::Tensor& s) {
      ++calls;
      return toy_flow(x, s);
    };
    const at::Tensor out =
        sampling::sample_unipc(model, noise, sampling::flux_sigmas_for_latent(steps, 3, 8, 8),
                               [&](int i, const at::Tensor& x, const at::Tensor&) {
                                 EXPECT_EQ(i, callbacks++);
                                 last_x = x;
                               });
    EXPECT_EQ(calls, steps);
    EXPECT_EQ(callbacks, steps);
    expect_close(out, values, 2e-6, "unipc result");
    for (const auto& [s2, xs] : expected_last_x) {
      if (s2 == steps) expect_close(last_x, xs, 2e-6, "unipc last x");
    }
  }
}

TEST(UniPC, FailedStepLeavesStateForRetry) {
  const sampling::UniPCSampler sampler(sampling::flux_sigmas_for_latent(4, 3, 8, 8));
  EXPECT_EQ(sampler.order(), 3);
  at::Generator g = at::detail::createCPUGenerator(0);
  sampling::UniPCState state = sampler.start(at::randn({1, 2, 1, 2, 2}, g));
  const sampling::FlowModel good = toy_flow;
  int failures = 0;
  const sampling::FlowModel flaky = [&](const at::Tensor& x, const at::Tensor& s) {
    if (failures++ % 2 == 0) throw std::runtime_error("out of memory (simulated)");
    return toy_flow(x, s);
  };
  while (!sampler.finished(state)) {
    const at::Tensor x_before = state.x.clone();
    EXPECT_THROW(sampler.step(state, flaky), std::runtime_error);
    EXPECT_TRUE(state.x.equal(x_before));
    state = sampler.step(state, flaky);  // the retry succeeds
  }
  at::Generator g2 = at::detail::createCPUGenerator(0);
  const at::Tensor direct =
      sampling::sample_unipc(good, at::randn({1, 2, 1, 2, 2}, g2), sampler.sigmas());
  EXPECT_TRUE(sampling::UniPCSampler::result(state).equal(direct));
}

TEST(UniPC, CancelStopsBetweenSteps) {
  std::atomic<bool> cancel{false};
  int calls = 0;
  const sampling::FlowModel model = [&](const at::Tensor& x, const at::Tensor& s) {
    ++calls;
    return toy_flow(x, s);
  };
  EXPECT_THROW(sampling::sample_unipc(
                   model, at::zeros({1, 2, 1, 2, 2}), sampling::flux_sigmas(5, 0.5),
                   [&](int i, const at::Tensor&, const at::Tensor&) {
                     if (i == 1) cancel = true;
                   },
                   &cancel),
               fs::Cancelled);
  EXPECT_EQ(calls, 2);
}

TEST(UniPC, RejectsBadModelOutput) {
  const sampling::FlowModel bad = [](const at::Tensor& x, const at::Tensor&) {
    return x.slice(1, 0, 1);
  };
  EXPECT_THROW(
      sampling::sample_unipc(bad, at::zeros({1, 2, 1, 2, 2}), sampling::flux_sigmas(3, 0.5)),
      fs::Error);
}

TEST(Guidance, RescaleEqualsFramePack) {
  const at::Tensor pos = floats({-0.486780763f, -0.603821576f, -0.55809623f, 0.667524278f,
                                 -0.197415099f, 1.94278347f, -1.40170205f, -0.762557149f})
                             .view({1, 2, 1, 2, 2});
  const at::Tensor neg = floats({0.631213427f, -0.899135172f, -0.557793438f, 0.69071877f,
                                 0.222458586f, -0.666225255f, 0.684642196f, 0.57400161f})
                             .view({1, 2, 1, 2, 2});
  expect_close(sampling::apply_cfg(pos, neg, 2.5, 0.3),
               {-1.73301029f, -0.128829077f, -0.447354674f, 0.506768703f, -0.662542224f,
                4.69043016f, -3.62914705f, -2.21646476f},
               1e-6, "cfg 2.5 rescale 0.3");
  EXPECT_TRUE(sampling::apply_cfg(pos, at::Tensor(), 1.0, 0.0).equal(pos));
  EXPECT_THROW(sampling::apply_cfg(pos, at::Tensor(), 2.0, 0.0), fs::Error);
}

TEST(SectionSchedule, SectionCount) {
  EXPECT_EQ(pipeline::total_latent_sections(5.0, 9), 4);  // 150 / 36 = 4.17
  EXPECT_EQ(pipeline::total_latent_sections(0.1, 9), 1);  // at least one
  EXPECT_EQ(pipeline::total_latent_sections(6.0, 9), 5);  // 5.0
  EXPECT_EQ(pipeline::total_latent_sections(3.0, 4), 6);  // 5.625
  EXPECT_EQ(pipeline::total_latent_sections(2.0, 8), 2);  // 1.875
  EXPECT_EQ(pipeline::total_latent_sections(1.0, 4), 2);  // 1.875
  EXPECT_EQ(pipeline::total_latent_sections(1.0, 6), 1);  // 1.25
  EXPECT_EQ(pipeline::total_latent_sections(2.4, 8), 2);  // 2.25
  EXPECT_EQ(pipeline::total_latent_sections(2.0, 6), 2);  // 2.5 -> 2 (halves to even)
  EXPECT_EQ(pipeline::total_latent_sections(4.4, 8), 4);  // 4.125
  EXPECT_EQ(pipeline::total_latent_sections(1.2, 8), 1);  // 1.125
  EXPECT_EQ(pipeline::total_latent_sections(1.4, 4), 3);  // 2.625
  EXPECT_EQ(pipeline::total_latent_sections(1.0, 1), 8);  // 7.5 -> 8 (halves to even)
  EXPECT_THROW(pipeline::total_latent_sections(5.0, 0), fs::Error);
}

TEST(SectionSchedule, PaddingsForOneToSeven) {
  const std::vector<std::vector<int>> expected = {{0},
                                                  {1, 0},
                                                  {2, 1, 0},
                                                  {3, 2, 1, 0},
                                                  {3, 2, 2, 1, 0},
                                                  {3, 2, 2, 2, 1, 0},
                                                  {3, 2, 2, 2, 2, 1, 0}};
  for (int n = 1; n <= 7; ++n) {
    EXPECT_EQ(pipeline::latent_paddings(n), expected[static_cast<std::size_t>(n - 1)]) << n;
  }
  EXPECT_THROW(pipeline::latent_paddings(0), fs::Error);
}

TEST(SectionSchedule, Indices) {
  const auto vec = [](const at::Tensor& t) {
    EXPECT_EQ(t.dim(), 2);
    EXPECT_EQ(t.scalar_type(), at::kLong);
    const at::Tensor c = t.contiguous();
    return std::vector<std::int64_t>(c.data_ptr<std::int64_t>(),
                                     c.data_ptr<std::int64_t>() + c.numel());
  };
  // padding 2, window 3: [0 | 1..6 blank | 7 8 9 | 10 | 11 12 | 13..28]
  const auto o = pipeline::original_section_indices(2, 3);
  EXPECT_EQ(vec(o.latent_indices), (std::vector<std::int64_t>{7, 8, 9}));
  EXPECT_EQ(vec(o.clean_latent_indices), (std::vector<std::int64_t>{0, 10}));
  EXPECT_EQ(vec(o.clean_latent_indices_2x), (std::vector<std::int64_t>{11, 12}));
  EXPECT_EQ(vec(o.clean_latent_indices_4x).front(), 13);
  EXPECT_EQ(vec(o.clean_latent_indices_4x).back(), 28);
  const auto z = pipeline::original_section_indices(0, 9);
  EXPECT_EQ(vec(z.latent_indices).front(), 1);
  EXPECT_EQ(vec(z.clean_latent_indices), (std::vector<std::int64_t>{0, 10}));
  // F1, window 3: [0 | 1..16 (4x) | 17 18 (2x) | 19 (1x) | 20 21 22]
  const auto f = pipeline::f1_section_indices(3);
  EXPECT_EQ(vec(f.clean_latent_indices), (std::vector<std::int64_t>{0, 19}));
  EXPECT_EQ(vec(f.clean_latent_indices_2x), (std::vector<std::int64_t>{17, 18}));
  EXPECT_EQ(vec(f.clean_latent_indices_4x).size(), 16u);
  EXPECT_EQ(vec(f.clean_latent_indices_4x).front(), 1);
  EXPECT_EQ(vec(f.latent_indices), (std::vector<std::int64_t>{20, 21, 22}));
}

TEST(SoftAppend, FrameCountsAndBlend) {
  EXPECT_EQ(pipeline::pixel_frames_for_latents(3), 9);
  EXPECT_EQ(pipeline::pixel_frames_for_latents(7), 25);
  EXPECT_EQ(pipeline::pixel_frames_for_latents(1), 1);
  // Original loop, window 3, 5 sections: first decode 3 latents (9 frames), then 6 latents
  // (21 frames) prepended over 9 frames, and 7 latents on the last: 9, 21, 33, 45, 61.
  const std::int64_t overlap = 3 * 4 - 3;
  at::Tensor history = at::zeros({1, 3, pipeline::pixel_frames_for_latents(3), 2, 2});
  std::vector<std::int64_t> counts = {history.size(2)};
  for (std::int64_t latents : {6, 6, 6, 7}) {
    const at::Tensor current = at::ones({1, 3, pipeline::pixel_frames_for_latents(latents), 2, 2});
    history = pipeline::soft_append_bcthw(current, history, overlap);
    counts.push_back(history.size(2));
  }
  EXPECT_EQ(counts, (std::vector<std::int64_t>{9, 21, 33, 45, 61}));

  // Blend: history frames weighted 1 -> 0 across the overlap.
  const at::Tensor a = at::full({1, 1, 4, 1, 1}, 2.0);
  const at::Tensor b = at::full({1, 1, 5, 1, 1}, 10.0);
  const at::Tensor c = pipeline::soft_append_bcthw(a, b, 3);
  ASSERT_EQ(c.size(2), 6);
  expect_close(c, {2.f, 2.f, 6.f, 10.f, 10.f, 10.f}, 1e-7, "blend");
  EXPECT_EQ(pipeline::soft_append_bcthw(a, b, 0).size(2), 9);
  EXPECT_THROW(pipeline::soft_append_bcthw(a, b, 5), fs::Error);
}

TEST(Preview, FactorsAndLayout) {
  // Channel 10 alone: (0.1166, 0.1627, 0.0962) + bias (0.0259, -0.0192, -0.0761).
  at::Tensor lat = at::zeros({1, 16, 2, 1, 3});
  lat.select(1, 10).fill_(1.0);
  const at::Tensor img = pipeline::vae_decode_fake(lat);
  ASSERT_EQ(img.sizes(), (std::vector<std::int64_t>{1, 3, 2, 1, 3}));
  EXPECT_NEAR(img[0][0][0][0][0].item<float>(), 0.1166f + 0.0259f, 1e-6);
  EXPECT_NEAR(img[0][1][0][0][0].item<float>(), 0.1627f - 0.0192f, 1e-6);
  EXPECT_NEAR(img[0][2][0][0][0].item<float>(), 0.0962f - 0.0761f, 1e-6);
  EXPECT_EQ(pipeline::vae_decode_fake(at::full({1, 16, 1, 1, 1}, -100.0)).max().item<float>(),
            1.0f);
  const at::Tensor rgb = pipeline::preview_rgb8(img);
  EXPECT_EQ(rgb.scalar_type(), at::kByte);
  EXPECT_EQ(rgb.sizes(), (std::vector<std::int64_t>{1, 6, 3}));  // (b h) (t w) c
  EXPECT_EQ(rgb[0][0][0].item<std::uint8_t>(),
            static_cast<std::uint8_t>((0.1166f + 0.0259f) * 255));
  EXPECT_THROW(pipeline::vae_decode_fake(at::zeros({1, 4, 1, 1, 1})), fs::Error);
}

namespace {

sampling::HunyuanConditioning fake_conditioning(std::int64_t text_len) {
  sampling::HunyuanConditioning c;
  c.positive.embeds = at::full({1, text_len, 4}, 0.3);
  c.positive.mask = at::ones({1, text_len}, at::kBool);
  c.positive.poolers = at::full({1, 3}, 0.5);
  c.negative.embeds = at::full({1, text_len, 4}, -0.3);
  c.negative.mask = at::zeros({1, text_len}, at::kBool);
  c.negative.poolers = at::full({1, 3}, -0.5);
  c.image_embeddings = at::full({1, 2, 5}, 0.1);
  return c;
}

}  // namespace

TEST(SampleHunyuan, FeedsTheTransformerAsFramePack) {
  sampling::SampleHunyuanParams p;
  p.width = 16;   // latent 2 wide
  p.height = 24;  // latent 3 high
  p.frames = 5;   // (5 + 3) / 4 = 2 latent frames
  p.num_inference_steps = 1;
  p.distilled_guidance_scale = 10.0;
  p.dtype = at::kBFloat16;
  sampling::SectionContext ctx;
  ctx.latent_indices = at::arange(2, at::kLong).unsqueeze(0);
  ctx.clean_latents = at::full({1, 16, 2, 3, 2}, 0.1);
  std::vector<framesmith::TransformerInputs> seen;
  const sampling::TransformerForward forward = [&](const framesmith::TransformerInputs& in) {
    seen.push_back(in);
    return at::zeros(in.hidden_states.sizes(), at::kFloat);
  };
  at::Generator g = at::detail::createCPUGenerator(1234);
  const at::Tensor out = sampling::sample_hunyuan(forward, p, fake_conditioning(7), ctx, g);
  ASSERT_EQ(seen.size(), 1u);
  const auto& in = seen[0];
  EXPECT_EQ(in.hidden_states.scalar_type(), at::kBFloat16);
  EXPECT_EQ(in.hidden_states.sizes(), (std::vector<std::int64_t>{1, 16, 2, 3, 2}));
  EXPECT_EQ(in.timestep.scalar_type(), at::kBFloat16);
  EXPECT_EQ(in.timestep.item<float>(), 1000.0f);
  // 10 * 1000 in bfloat16 is 9984, as FramePack feeds it.
  EXPECT_EQ(in.guidance.scalar_type(), at::kBFloat16);
  EXPECT_EQ(in.guidance.item<float>(), 9984.0f);
  EXPECT_EQ(in.encoder_hidden_states.scalar_type(), at::kBFloat16);
  EXPECT_EQ(in.encoder_attention_mask.scalar_type(), at::kBool);
  EXPECT_EQ(in.clean_latents.scalar_type(), at::kBFloat16);
  EXPECT_EQ(in.latent_indices.scalar_type(), at::kLong);
  EXPECT_EQ(in.pooled_projections[0][0].item<float>(), 0.5f);
  // A zero flow at sigma 1 leaves x0 = the noise as the model saw it (rounded to bfloat16); the
  // noise is the generator's first draw, shape (1, 16, 2, 3, 2).
  at::Generator g2 = at::detail::createCPUGenerator(1234);
  const at::Tensor noise = at::randn({1, 16, 2, 3, 2}, g2);
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_TRUE(out.equal(noise.to(at::kBFloat16).to(at::kFloat)));
  // The generator advanced by exactly that draw.
  EXPECT_TRUE(at::randn({4}, g).equal(at::randn({4}, g2)));
}

TEST(SampleHunyuan, RealCfgRunsNegativeAndCombines) {
  sampling::SampleHunyuanParams p;
  p.width = p.height = 16;
  p.frames = 1;
  p.num_inference_steps = 3;
  p.real_guidance_scale = 2.0;
  p.guidance_rescale = 0.0;
  p.dtype = at::kFloat;
  int positive_calls = 0, negative_calls = 0;
  const sampling::TransformerForward forward = [&](const framesmith::TransformerInputs& in) {
    const bool negative = in.pooled_projections[0][0].item<float>() < 0;
    (negative ? negative_calls : positive_calls)++;
    return at::full(in.hidden_states.sizes(), negative ? 3.0 : 1.0, at::kFloat);
  };
  std::vector<at::Tensor> denoised;
  sampling::SampleHooks hooks;
  hooks.on_step = [&](int, const at::Tensor&, const at::Tensor& d) { denoised.push_back(d); };
  at::Generator g = at::detail::createCPUGenerator(3);
  sampling::sample_hunyuan(forward, p, fake_conditioning(5), {}, g, hooks);
  EXPECT_EQ(positive_calls, 3);
  EXPECT_EQ(negative_calls, 3);
  // pred = 3 + 2 * (1 - 3) = -1, so x0 = noise + sigma0 at step 0 (sigma0 = 1).
  at::Generator g2 = at::detail::createCPUGenerator(3);
  const at::Tensor noise = at::randn({1, 16, 1, 2, 2}, g2);
  ASSERT_EQ(denoised.size(), 3u);
  EXPECT_TRUE(at::allclose(denoised[0], noise + 1.0));
  // cfg == 1 never runs the negative prompt.
  p.real_guidance_scale = 1.0;
  positive_calls = negative_calls = 0;
  sampling::sample_hunyuan(forward, p, fake_conditioning(5), {}, g);
  EXPECT_EQ(positive_calls, 3);
  EXPECT_EQ(negative_calls, 0);
  EXPECT_THROW(sampling::sample_hunyuan(forward, p, {}, {}, g), fs::Error);
}
