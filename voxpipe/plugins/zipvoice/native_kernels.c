/* Element-wise chains of the Zipformer's fused kernels, each in one pass (voxpipe `kernels: fused`;
 * loaded by voxpipe/plugins/zipvoice/native_kernels.py, compiled by voxpipe/core/native.py).
 *
 * Swoosh (swoosh_bf16, swoosh_f32):
 *   y = softplus(x - offset) - slope * x     (Swoosh-L: offset 4, Swoosh-R: offset 1; slope 0.08;
 *                                             the activation's constant is folded into the next bias)
 * computed in float32 as max(z, 0) + log1p(e^-|z|) - slope x with z = x - offset, and rounded once
 * to the output type. e^-|z| never overflows, so large inputs need no overflow check (the official
 * code replaces an infinite log(1 + e^z) by z; this form gives z + 0 there). exp and log are
 * polynomials (Cephes' expf and logf coefficients): every finite bf16 input gives the correctly
 * rounded bf16 Swoosh; float32 output is within 1e-7 + 2^-22 |y| (two roundings) of the exact value
 * (tests/test_native_kernels.py). NaN in, NaN out; +-inf as the official float32 code.
 *
 * Relative-position attention weights (rel_softmax_bf16, rel_softmax_f32), row by row:
 *   w[h,b,i,j] = softmax_j(s[h,b,i,j] + sum_d p[h,b,i,d] pos[h,d,T-1+j-i]), padded keys at -1000
 * s (H,B,T,T) the content scores q.k, p (H,B,T,D) the position queries, pos (H,D,2T-1) the projected
 * relative encodings (column T-1+k: offset k), pad (B,T) one byte per key (nonzero = padded) or NULL.
 * The sum, the softmax and its exponentials in float32, the weights rounded once; a row with a NaN
 * or +inf score is NaN, as torch's softmax makes it.
 *
 * Written as plain loops for the compiler to vectorize (-O3 -march=native: AVX-512 or AVX2 on x86,
 * NEON/SVE on ARM); rows or blocks are shared out over `threads` OpenMP threads.
 */
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <stdlib.h>

#define BLOCK 8192

static inline float bits_to_float(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t float_to_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

static inline float bf16_to_float(uint16_t h) { return bits_to_float((uint32_t)h << 16); }

/* Round to nearest even, NaN -> the quiet NaN 0x7fc0 (torch's conversion). */
static inline uint16_t float_to_bf16(float f) {
    uint32_t u = float_to_bits(f);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(f != f ? 0x7fc0u : rounded);
}

/* e^-a for a >= 0 (0 for a >= 86: below float32's normal range, and the vector units stay off
 * subnormals; a NaN a gives 0 too, so callers test for NaN themselves). */
static inline float exp_neg(float a) {
    float x = a < 86.0f ? -a : -86.0f;
    float n = rintf(x * 1.44269504088896341f);          /* x = n ln2 + r, |r| <= ln2 / 2 */
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;
    float e = p * bits_to_float((uint32_t)((int32_t)n + 127) << 23);   /* p * 2^n, n in [-124, 0] */
    return a < 86.0f ? e : 0.0f;
}

/* log(1 + w) for w in [0, 1]: log(u) of u = 1 + w, minus u's rounding error (log1p(w) =
 * log(u) - ((u - 1) - w) / u, and u is within a factor 2 of 1). */
static inline float log1p_unit(float w) {
    float u = 1.0f + w;
    float rounding = (u - 1.0f) - w;
    int upper = u > 1.41421356f;
    float x = (upper ? 0.5f * u : u) - 1.0f;            /* log(u) = upper ln2 + log(1 + x), |x| <= 0.414 */
    float z = x * x;
    float p = 7.0376836292e-2f;
    p = fmaf(p, x, -1.1514610310e-1f);
    p = fmaf(p, x, 1.1676998740e-1f);
    p = fmaf(p, x, -1.2420140846e-1f);
    p = fmaf(p, x, 1.4249322787e-1f);
    p = fmaf(p, x, -1.6668057665e-1f);
    p = fmaf(p, x, 2.0000714765e-1f);
    p = fmaf(p, x, -2.4999993993e-1f);
    p = fmaf(p, x, 3.3333331174e-1f);
    float log_1px = fmaf(x * z, p, fmaf(-0.5f, z, x));
    return fmaf(upper ? 1.0f : 0.0f, 0.693147181f, log_1px) - rounding;
}

static inline float swoosh(float x, float offset, float slope) {
    float z = x - offset;
    float softplus = (z > 0.0f ? z : 0.0f) + log1p_unit(exp_neg(fabsf(z)));
    float y = fmaf(-slope, x, softplus);
    return x != x ? x : y;
}

void swoosh_bf16(const uint16_t *restrict x, uint16_t *restrict y, int64_t n, float offset, float slope,
                 int threads) {
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && blocks > 1)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t end = (b + 1) * BLOCK < n ? (b + 1) * BLOCK : n;
        for (int64_t i = b * BLOCK; i < end; i++)
            y[i] = float_to_bf16(swoosh(bf16_to_float(x[i]), offset, slope));
    }
}

void swoosh_f32(const float *restrict x, float *restrict y, int64_t n, float offset, float slope, int threads) {
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && blocks > 1)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t end = (b + 1) * BLOCK < n ? (b + 1) * BLOCK : n;
        for (int64_t i = b * BLOCK; i < end; i++)
            y[i] = swoosh(x[i], offset, slope);
    }
}

/* One row of attention weights: buf (T floats) holds the scores plus the position terms. */
static inline void softmax_row(float *restrict buf, int64_t T) {
    float top = -INFINITY;
    int bad = 0;
#pragma omp simd reduction(max : top) reduction(| : bad)
    for (int64_t j = 0; j < T; j++) {
        top = buf[j] > top ? buf[j] : top;
        bad |= buf[j] != buf[j];
    }
    if (bad || top == INFINITY) {
        for (int64_t j = 0; j < T; j++)
            buf[j] = NAN;
        return;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < T; j++) {
        buf[j] = exp_neg(top - buf[j]);
        sum += buf[j];
    }
    float scale = 1.0f / sum;
    for (int64_t j = 0; j < T; j++)
        buf[j] *= scale;
}

#define MAX_POS_DIM 64

/* Returns 0, or -1 if a thread could not allocate its row buffer (the caller then uses torch). */
#define REL_SOFTMAX(NAME, T_IN, TO_FLOAT, FROM_FLOAT)                                                      \
int NAME(const T_IN *restrict s, const T_IN *restrict p, const T_IN *restrict pos, const uint8_t *restrict pad, \
         T_IN *restrict w, int64_t H, int64_t B, int64_t T, int64_t D, int threads) {                     \
    int64_t rows = H * B * T, width = 2 * T - 1;                                                         \
    int failed = 0;                                                                                      \
    if (D > MAX_POS_DIM) return -1;                                                                      \
    _Pragma("omp parallel num_threads(threads) if (threads > 1 && rows > 1) reduction(| : failed)")     \
    {                                                                                                    \
        float *buf = malloc((size_t)T * sizeof(float));                                                  \
        if (buf == NULL) failed = 1;                                                                     \
        _Pragma("omp for schedule(static)")                                                              \
        for (int64_t row = 0; row < rows; row++) {                                                       \
            if (buf == NULL) continue;                                                                   \
            int64_t i = row % T, head = row / (B * T), batch = (row / T) % B;                            \
            const T_IN *srow = s + row * T;                                                              \
            for (int64_t j = 0; j < T; j++) buf[j] = TO_FLOAT(srow[j]);                                  \
            for (int64_t d = 0; d < D; d++) {                                                            \
                float pd = TO_FLOAT(p[row * D + d]);                                                     \
                const T_IN *posd = pos + (head * D + d) * width + (T - 1 - i);                           \
                for (int64_t j = 0; j < T; j++) buf[j] = fmaf(pd, TO_FLOAT(posd[j]), buf[j]);            \
            }                                                                                            \
            if (pad != NULL) {                                                                           \
                const uint8_t *padrow = pad + batch * T;                                                 \
                for (int64_t j = 0; j < T; j++) buf[j] = padrow[j] ? -1000.0f : buf[j];                  \
            }                                                                                            \
            softmax_row(buf, T);                                                                         \
            T_IN *wrow = w + row * T;                                                                    \
            for (int64_t j = 0; j < T; j++) wrow[j] = FROM_FLOAT(buf[j]);                                \
        }                                                                                                \
        free(buf);                                                                                       \
    }                                                                                                    \
    return failed ? -1 : 0;                                                                              \
}

static inline float same_float(float x) { return x; }

REL_SOFTMAX(rel_softmax_bf16, uint16_t, bf16_to_float, float_to_bf16)
REL_SOFTMAX(rel_softmax_f32, float, same_float, same_float)
