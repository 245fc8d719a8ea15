#include "io/float8.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "framesmith/error.h"

namespace framesmith::io {
namespace {

// One code's value from its fields: `mantissa_bits` of mantissa, exponent bias `bias`.
float decode_code(std::uint8_t code, int mantissa_bits, int bias, bool has_infinity) {
  const int exponent_bits = 7 - mantissa_bits;
  const int max_exponent = (1 << exponent_bits) - 1;
  const int mantissa = code & ((1 << mantissa_bits) - 1);
  const int exponent = (code >> mantissa_bits) & max_exponent;
  const float sign = (code & 0x80) ? -1.0f : 1.0f;
  if (exponent == max_exponent) {
    if (has_infinity)  // e5m2: all-ones exponent is inf (mantissa 0) or NaN
      return mantissa == 0 ? sign * std::numeric_limits<float>::infinity()
                           : std::numeric_limits<float>::quiet_NaN();
    if (mantissa == (1 << mantissa_bits) - 1)  // e4m3fn: only S.1111.111 is NaN
      return std::numeric_limits<float>::quiet_NaN();
  }
  const float fraction = static_cast<float>(mantissa) / static_cast<float>(1 << mantissa_bits);
  if (exponent == 0) return sign * std::ldexp(fraction, 1 - bias);  // subnormal
  return sign * std::ldexp(1.0f + fraction, exponent - bias);
}

std::array<float, 256> make_table(Float8Format f) {
  std::array<float, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[static_cast<std::size_t>(c)] = f == Float8Format::kE4M3Fn
                                         ? decode_code(static_cast<std::uint8_t>(c), 3, 7, false)
                                         : decode_code(static_cast<std::uint8_t>(c), 2, 15, true);
  return t;
}

void require_codes(const at::Tensor& codes) {
  if (codes.scalar_type() != at::kByte)
    throw Error(std::string("float8 decode: expected raw bytes (uint8), got ") +
                c10::toString(codes.scalar_type()));
}

// CPU: a table lookup per element, in parallel; `out` is contiguous and of the table's type.
template <typename T>
void decode_cpu(const std::uint8_t* in, T* out, std::int64_t n, const std::array<float, 256>& f) {
  std::array<T, 256> table{};
  for (std::size_t c = 0; c < 256; ++c) table[c] = static_cast<T>(f[c]);
  at::parallel_for(0, n, 1 << 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) out[i] = table[in[i]];
  });
}

// Elsewhere (CUDA): the table on the device, gathered in slices so that the int32 indices a
// gather needs stay small next to the weight.
at::Tensor decode_on_device(const at::Tensor& codes, const std::array<float, 256>& f,
                            at::ScalarType dtype) {
  const at::Tensor table =
      at::from_blob(const_cast<float*>(f.data()), {256}, at::TensorOptions().dtype(at::kFloat))
          .to(codes.device(), dtype);
  const at::Tensor flat = codes.contiguous().view({-1});
  at::Tensor out = at::empty({flat.numel()}, table.options());
  constexpr std::int64_t kSlice = std::int64_t{1} << 24;
  for (std::int64_t s = 0; s < flat.numel(); s += kSlice) {
    const std::int64_t n = std::min(kSlice, flat.numel() - s);
    out.narrow(0, s, n).copy_(table.index_select(0, flat.narrow(0, s, n).to(at::kInt)));
  }
  return out.view(codes.sizes());
}

}  // namespace

std::optional<Float8Format> float8_format(const std::string& dtype) {
  if (dtype == "F8_E4M3") return Float8Format::kE4M3Fn;
  if (dtype == "F8_E5M2") return Float8Format::kE5M2;
  return std::nullopt;
}

const char* float8_name(Float8Format f) {
  return f == Float8Format::kE4M3Fn ? "F8_E4M3" : "F8_E5M2";
}

const std::array<float, 256>& float8_table(Float8Format f) {
  static const std::array<float, 256> e4m3 = make_table(Float8Format::kE4M3Fn);
  static const std::array<float, 256> e5m2 = make_table(Float8Format::kE5M2);
  return f == Float8Format::kE4M3Fn ? e4m3 : e5m2;
}

std::int64_t count_float8_nonfinite(const at::Tensor& codes, Float8Format f) {
  require_codes(codes);
  const at::Tensor c = codes.contiguous();
  const std::uint8_t* p = c.data_ptr<std::uint8_t>();
  // e4m3fn: only S.1111.111 is NaN; e5m2: the all-ones exponent (inf and NaN).
  const std::uint8_t mask = f == Float8Format::kE4M3Fn ? 0x7F : 0x7C;
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < c.numel(); ++i) bad += (p[i] & mask) == mask;
  return bad;
}

at::Tensor decode_float8(const at::Tensor& codes, Float8Format f, at::ScalarType dtype) {
  require_codes(codes);
  const std::array<float, 256>& table = float8_table(f);
  if (!codes.device().is_cpu()) return decode_on_device(codes, table, dtype);
  const at::Tensor in = codes.contiguous();
  at::Tensor out = at::empty(in.sizes(), at::TensorOptions().dtype(dtype));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "decode_float8", [&] {
    decode_cpu<scalar_t>(in.data_ptr<std::uint8_t>(), out.data_ptr<scalar_t>(), in.numel(), table);
  });
  return out;
}

at::Tensor encode_float8(const at::Tensor& values, Float8Format f) {
  if (!values.device().is_cpu() || !at::isFloatingType(values.scalar_type()))
    throw Error("float8 encode: expected a CPU floating tensor");
  const std::array<float, 256>& table = float8_table(f);
  // Codes 0 .. top are the non-negative finite values in increasing order (sign-magnitude).
  const int top = f == Float8Format::kE4M3Fn ? 0x7E : 0x7B;
  const std::uint8_t nan_code = f == Float8Format::kE4M3Fn ? 0x7F : 0x7E;
  const at::Tensor in = values.to(at::kFloat).contiguous();
  at::Tensor out = at::empty(in.sizes(), at::TensorOptions().dtype(at::kByte));
  const float* x = in.data_ptr<float>();
  std::uint8_t* y = out.data_ptr<std::uint8_t>();
  const float* first = table.data();
  const float* last = table.data() + top + 1;
  at::parallel_for(0, in.numel(), 1 << 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      const float v = x[i];
      if (std::isnan(v)) {
        y[i] = nan_code;
        continue;
      }
      const float a = std::fabs(v);
      // The first code above |v|; the nearest is it or the one below.
      const int up = static_cast<int>(std::upper_bound(first, last, a) - first);
      int c = top;
      if (up <= top) {
        const int down = up - 1;  // up >= 1: table[0] is 0 and a >= 0
        const float below = a - table[static_cast<std::size_t>(down)];
        const float above = table[static_cast<std::size_t>(up)] - a;
        c = below < above ? down : (above < below ? up : (down % 2 == 0 ? down : up));
      }
      y[i] = static_cast<std::uint8_t>(c | (std::signbit(v) ? 0x80 : 0));
    }
  });
  return out;
}

}  // namespace framesmith::io
