// float8 weights (safetensors F8_E4M3 and F8_E5M2, e.g. Kijai's FramePackI2V_HY_fp8_e4m3fn).
// LibTorch before 2.1 has no float8 dtype: there a float8 tensor is its raw bytes (kByte), and
// these functions decode it through a 256-entry table, at use, straight into the compute dtype.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace framesmith::io {

// The two float8 encodings safetensors names (OCP FP8): e4m3fn (bias 7, no infinities, S.1111.111
// is NaN) and e5m2 (bias 15, IEEE-like with infinities).
enum class Float8Format { kE4M3Fn = 1, kE5M2 };

// "F8_E4M3" / "F8_E5M2" -> their format; nullopt for every other dtype name.
std::optional<Float8Format> float8_format(const std::string& dtype);
const char* float8_name(Float8Format f);  // "F8_E4M3", "F8_E5M2"

// The value of each of the 256 codes (NaN codes are NaN; e5m2 also has +-inf).
const std::array<float, 256>& float8_table(Float8Format f);

// How many codes of a CPU kByte tensor are NaN or infinite (one pass over the bytes, nothing
// allocated: a damaged checkpoint is found at load without a copy of the weights).
std::int64_t count_float8_nonfinite(const at::Tensor& codes, Float8Format f);

// A new tensor of `dtype` (a floating type) with the values of `codes` (kByte, any device, any
// shape), made on codes' device in the caller's allocation context (inside a simulated-device
// scope it counts against the budget). Every float8 value is exact in float32, bfloat16 and half.
at::Tensor decode_float8(const at::Tensor& codes, Float8Format f, at::ScalarType dtype);

// The nearest code of each value of a CPU floating tensor (ties to the even code), as kByte of
// the same shape: what a float8 checkpoint converter writes. Magnitudes past the largest finite
// value saturate to it (as converters clamp; e4m3fn has no infinity), NaN becomes a NaN code.
// For writing float8 checkpoints (make-random-model) where LibTorch has no float8 dtype.
at::Tensor encode_float8(const at::Tensor& values, Float8Format f);

}  // namespace framesmith::io
