#include "grpo/model/cpu_bf16_decode_attention.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "grpo/util/error.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GRPO_DECODE_ATTN_AVX512 1
#endif

namespace grpo::model {

namespace {

std::atomic<int64_t> g_calls{0}, g_avx512_calls{0};

// bf16 <-> float32 on raw bits, c10::BFloat16's own conversions: widening is exact; narrowing
// rounds to nearest even.
float widen(uint16_t b) { return c10::detail::f32_from_bits(b); }
uint16_t narrow(float f) { return c10::detail::round_to_nearest_even(f); }
float round_bf16(float f) { return widen(narrow(f)); }

// One call's geometry: pointers and element strides of q [B, H, 1, D], k/v [B, Hkv, S, D] (D unit
// stride), the mask's row stride (0 when one row serves every batch row) and the output [B, H, 1, D].
struct Problem {
  const uint16_t *q, *k, *v;
  const bool* mask;  // [B or 1, S] or null
  uint16_t* out;
  int64_t B, H, Hkv, S, D;
  int64_t q_sb, q_sh, k_sb, k_sh, k_ss, v_sb, v_sh, v_ss, m_sb;
  float scale;
};

// Per-thread buffers of one (row, kv head).
struct Scratch {
  std::vector<float> s, kf, vf;
};

// The plain loop: query heads g = 0..G-1 of kv head (b, kvh), the header's formulas.
void attend_reference(const Problem& p, int64_t b, int64_t kvh, Scratch& w) {
  std::vector<float>& s = w.s;
  const int64_t G = p.H / p.Hkv, S = p.S, D = p.D;
  const uint16_t* kb = p.k + b * p.k_sb + kvh * p.k_sh;
  const uint16_t* vb = p.v + b * p.v_sb + kvh * p.v_sh;
  const bool* m = p.mask ? p.mask + b * p.m_sb : nullptr;
  s.resize(static_cast<size_t>(S));
  for (int64_t g = 0; g < G; ++g) {
    const int64_t h = kvh * G + g;
    const uint16_t* qh = p.q + b * p.q_sb + h * p.q_sh;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < S; ++j) {
      if (m && !m[j]) {
        s[j] = -std::numeric_limits<float>::infinity();
        continue;
      }
      float dot = 0.f;
      for (int64_t d = 0; d < D; ++d) dot += widen(qh[d]) * widen(kb[j * p.k_ss + d]);
      s[j] = dot * p.scale;
      mx = std::max(mx, s[j]);
    }
    uint16_t* o = p.out + (b * p.H + h) * D;
    if (mx == -std::numeric_limits<float>::infinity()) {  // no key allowed
      std::memset(o, 0, static_cast<size_t>(D) * sizeof(uint16_t));
      continue;
    }
    float l = 0.f;
    std::vector<float> acc(static_cast<size_t>(D), 0.f);
    for (int64_t j = 0; j < S; ++j) {
      if (s[j] == -std::numeric_limits<float>::infinity()) continue;
      const float e = std::exp(s[j] - mx);
      l += e;
      const float pe = round_bf16(e);
      for (int64_t d = 0; d < D; ++d) acc[d] += pe * widen(vb[j * p.v_ss + d]);
    }
    const float r = 1.f / l;
    for (int64_t d = 0; d < D; ++d) o[d] = narrow(acc[d] * r);
  }
}

#ifdef GRPO_DECODE_ATTN_AVX512
// GCC 12 flags the _mm512_undefined_*() inside its own reduce/max/extract intrinsics (GCC PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

__attribute__((target("avx512f"))) inline __m512 widen16(const uint16_t* p) {
  // The zero-masked forms: GCC 12 warns about the unmasked ones' _mm512_undefined_epi32().
  const __m512i w = _mm512_maskz_cvtepu16_epi32(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, w, 16));
}

// x <= 0 -> exp(x) in float32 (Cephes expf's reduction and polynomial, ~1 ulp), 0 below -87.
__attribute__((target("avx512f"))) inline __m512 exp_nonpos(__m512 x) {
  const __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(_mm512_mul_ps(y, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~tiny), _mm512_scalef_ps(y, n));
}

// bf16 round to nearest even of 16 floats, kept as floats.
__attribute__((target("avx512f"))) inline __m512 round_bf16_16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_maskz_srli_epi32(0xFFFF, u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb);
  return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// Four dot products at once: a0..a3 hold 16 partial sums each; returns their four totals in
// lanes 0, 4, 8 and 12 (two shuffles per total where _mm512_reduce_add_ps takes four).
__attribute__((target("avx512f"))) inline __m512 sum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m512 x = _mm512_add_ps(_mm512_shuffle_f32x4(a0, a1, 0x44), _mm512_shuffle_f32x4(a0, a1, 0xEE));
  const __m512 y = _mm512_add_ps(_mm512_shuffle_f32x4(a2, a3, 0x44), _mm512_shuffle_f32x4(a2, a3, 0xEE));
  __m512 z = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xDD));
  z = _mm512_add_ps(z, _mm512_shuffle_ps(z, z, 0x4E));
  return _mm512_add_ps(z, _mm512_shuffle_ps(z, z, 0xB1));
}

// The same as attend_reference with the products and exp in 16-lane vectors, head_dim = 16 C (C a
// compile-time constant: a query row and an output row stay in C registers). This kv head's keys
// and values are widened to float32 once (kf, vf: [S4, D], S4 = S rounded up to 4, zero tail) for
// its G query heads. s: [G, S16] scores, then bf16-rounded probabilities (S16 = S rounded up to
// 16; masked keys and the tail hold -inf, then 0).
template <int C>
__attribute__((target("avx512f"))) void attend_avx512(const Problem& p, int64_t b, int64_t kvh, Scratch& w) {
  constexpr int64_t D = 16 * C;
  const int64_t G = p.H / p.Hkv, S = p.S, S4 = (S + 3) / 4 * 4, S16 = (S + 15) / 16 * 16;
  const float ninf = -std::numeric_limits<float>::infinity();
  const uint16_t* kb = p.k + b * p.k_sb + kvh * p.k_sh;
  const uint16_t* vb = p.v + b * p.v_sb + kvh * p.v_sh;
  const bool* m = p.mask ? p.mask + b * p.m_sb : nullptr;
  w.s.resize(static_cast<size_t>(G * S16));
  w.kf.resize(static_cast<size_t>(S4 * D));
  w.vf.resize(static_cast<size_t>(S4 * D));
  float* kf = w.kf.data();
  float* vf = w.vf.data();
  for (int64_t j = 0; j < S4; ++j)
    for (int c = 0; c < C; ++c) {
      const bool in = j < S;
      _mm512_storeu_ps(kf + j * D + 16 * c, in ? widen16(kb + j * p.k_ss + 16 * c) : _mm512_setzero_ps());
      _mm512_storeu_ps(vf + j * D + 16 * c, in ? widen16(vb + j * p.v_ss + 16 * c) : _mm512_setzero_ps());
    }
  for (int64_t g = 0; g < G; ++g) {
    const uint16_t* qh = p.q + b * p.q_sb + (kvh * G + g) * p.q_sh;
    float* sg = &w.s[g * S16];
    __m512 qv[C];
    for (int c = 0; c < C; ++c) qv[c] = widen16(qh + 16 * c);
    // Scores, four keys at a time; masked keys and the tail to -inf.
    for (int64_t j = 0; j < S4; j += 4) {
      __m512 a[4];
      for (int t = 0; t < 4; ++t) {
        const float* kj = kf + (j + t) * D;
        a[t] = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kj));
        for (int c = 1; c < C; ++c) a[t] = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kj + 16 * c), a[t]);
      }
      const __m512 tot = _mm512_mul_ps(sum4(a[0], a[1], a[2], a[3]), _mm512_set1_ps(p.scale));
      _mm_storeu_ps(sg + j, _mm512_castps512_ps128(_mm512_maskz_compress_ps(0x1111, tot)));
    }
    for (int64_t j = 0; j < S16; ++j)
      if (j >= S || (m && !m[j])) sg[j] = ninf;
    // The softmax numerators, their float32 sum and the bf16-rounded probabilities that the
    // second product takes.
    __m512 mv = _mm512_set1_ps(ninf);
    for (int64_t j = 0; j < S16; j += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(sg + j));
    const float mx = _mm512_reduce_max_ps(mv);
    uint16_t* o = p.out + (b * p.H + kvh * G + g) * D;
    if (mx == ninf) {  // no key allowed
      std::memset(o, 0, static_cast<size_t>(D) * sizeof(uint16_t));
      continue;
    }
    __m512 lv = _mm512_setzero_ps();
    const __m512 mxv = _mm512_set1_ps(mx);
    for (int64_t j = 0; j < S16; j += 16) {
      const __m512 e = exp_nonpos(_mm512_sub_ps(_mm512_loadu_ps(sg + j), mxv));
      lv = _mm512_add_ps(lv, e);
      _mm512_storeu_ps(sg + j, round_bf16_16(e));
    }
    const float inv_l = 1.f / _mm512_reduce_add_ps(lv);
    // Values: masked keys have probability 0 (their rows add nothing).
    __m512 acc[C];
    for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
    for (int64_t j = 0; j < S; ++j) {
      const __m512 pj = _mm512_set1_ps(sg[j]);
      const float* vj = vf + j * D;
      for (int c = 0; c < C; ++c) acc[c] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + 16 * c), acc[c]);
    }
    alignas(64) float of[D];
    for (int c = 0; c < C; ++c) _mm512_store_ps(of + 16 * c, _mm512_mul_ps(acc[c], _mm512_set1_ps(inv_l)));
    for (int64_t d = 0; d < D; ++d) o[d] = narrow(of[d]);
  }
}

using AttendFn = void (*)(const Problem&, int64_t, int64_t, Scratch&);

// The AVX-512 loop for head_dim D (a multiple of 16 up to 256), or null.
template <int... Cs>
AttendFn pick(int64_t D, std::integer_sequence<int, Cs...>) {
  AttendFn f = nullptr;
  ((D == 16 * (Cs + 1) ? (f = attend_avx512<Cs + 1>, 0) : 0), ...);
  return f;
}
AttendFn avx512_for(int64_t D) { return pick(D, std::make_integer_sequence<int, 16>{}); }

#pragma GCC diagnostic pop
#endif

// The AVX-512 loop for head_dim D when this CPU has avx512f, else null.
AttendFn fast_path(int64_t D) {
#ifdef GRPO_DECODE_ATTN_AVX512
  static const bool has = __builtin_cpu_supports("avx512f");
  return has ? avx512_for(D) : nullptr;
#else
  (void)D;
  return nullptr;
#endif
}

// The shapes, dtypes and devices the header asks for.
bool fits(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask) {
  auto bf16_cpu = [](const torch::Tensor& t) {
    return t.defined() && t.dim() == 4 && t.is_cpu() && t.scalar_type() == torch::kBFloat16 && !t.requires_grad();
  };
  if (!bf16_cpu(q) || !bf16_cpu(k) || !bf16_cpu(v) || q.size(2) != 1) return false;
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), Hkv = k.size(1), S = k.size(2);
  if (k.sizes() != v.sizes() || k.size(0) != B || k.size(3) != D || Hkv == 0 || H % Hkv != 0 || S == 0) return false;
  if (k.stride(3) != 1 || v.stride(3) != 1) return false;
  if (!mask.defined()) return true;
  return mask.scalar_type() == torch::kBool && mask.is_cpu() && mask.dim() == 4 &&
         (mask.size(0) == B || mask.size(0) == 1) && mask.size(1) == 1 && mask.size(2) == 1 && mask.size(3) == S;
}

torch::Tensor run(const torch::Tensor& q_in, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask_in,
                  bool reference) {
  GRPO_CHECK(fits(q_in, k, v, mask_in), "cpu_bf16_decode_attention: q ", q_in.sizes(),
             " k ", k.sizes(), " v ", v.sizes(), " do not fit (see cpu_bf16_decode_attention.h)");
  auto q = q_in.contiguous();
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), Hkv = k.size(1), S = k.size(2);
  auto out = torch::empty({B, H, 1, D}, q.options());
  torch::Tensor mask;  // [B or 1, S] bool, contiguous
  if (mask_in.defined()) mask = mask_in.reshape({mask_in.size(0), S}).contiguous();
  Problem p{reinterpret_cast<const uint16_t*>(q.data_ptr()),
            reinterpret_cast<const uint16_t*>(k.data_ptr()),
            reinterpret_cast<const uint16_t*>(v.data_ptr()),
            mask.defined() ? mask.data_ptr<bool>() : nullptr,
            reinterpret_cast<uint16_t*>(out.data_ptr()),
            B, H, Hkv, S, D,
            q.stride(0), q.stride(1), k.stride(0), k.stride(1), k.stride(2), v.stride(0), v.stride(1), v.stride(2),
            mask.defined() && mask.size(0) == B ? S : 0,
            static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)))};
  const AttendFn fast = reference ? nullptr : fast_path(D);
  g_calls.fetch_add(1, std::memory_order_relaxed);
  if (fast) g_avx512_calls.fetch_add(1, std::memory_order_relaxed);
  at::parallel_for(0, B * Hkv, 1, [&](int64_t begin, int64_t end) {
    Scratch w;
    for (int64_t i = begin; i < end; ++i) (fast ? fast : attend_reference)(p, i / Hkv, i % Hkv, w);
  });
  return out;
}

}  // namespace

bool cpu_bf16_decode_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       const torch::Tensor& mask) {
  // Only where the AVX-512 loop runs: the reference loop alone is slower than LibTorch's SDPA.
  return fits(q, k, v, mask) && fast_path(q.size(3));
}

torch::Tensor cpu_bf16_decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        const torch::Tensor& mask) {
  return run(q, k, v, mask, /*reference=*/false);
}

torch::Tensor cpu_bf16_decode_attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                                  const torch::Tensor& mask) {
  return run(q, k, v, mask, /*reference=*/true);
}

int64_t cpu_bf16_decode_attention_calls() { return g_calls.load(std::memory_order_relaxed); }
int64_t cpu_bf16_decode_attention_avx512_calls() { return g_avx512_calls.load(std::memory_order_relaxed); }

}  // namespace grpo::model
