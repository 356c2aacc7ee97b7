/* Group normalisation (+ SiLU) and GEGLU; see CKernels.h.
 *
 * Why: written with Swift SIMD types these passes ran at 3-10 ns per element here (Double statistics
 * scalar, exp/erf not fully vectorised); on vector-extension types they are memory-bound. The
 * arithmetic is the same as Tensor's Ops.groupNorm (two-pass mean and variance in double) and
 * SIMDMath (Cephes expf, Abramowitz-Stegun erf as torch's CPU kernels), so results stay within
 * float rounding of the Swift versions. */
#include "CKernels.h"
#include "dispatch.h"

typedef double vd __attribute__((vector_size(64)));
typedef float vf8 __attribute__((vector_size(32)));

CK_INLINE vd vload8d(const float *p) { vf8 v; memcpy(&v, p, sizeof v); return __builtin_convertvector(v, vd); }

CK_INLINE vf vsilu(vf x) { return x / (1.0f + vexp(-x)); }

/* x * Phi(x) with erf as in SIMDMath.erf (A-S 7.1.26): sign(z)(1 - t r(t) e^(-z^2)), t = 1/(1 + 0.3275911|z|). */
CK_INLINE vf vgelu(vf x) {
    vf z = x * 0.70710678118654752f;
    vi sign = (vi)z & (int)0x80000000;
    vf a = (vf)((vi)z & 0x7fffffff);
    vf t = 1.0f / (a * 0.3275911f + 1.0f);
    vf r = t * 1.061405429f + -1.453152027f;
    r = r * t + 1.421413741f;
    r = r * t + -0.284496736f;
    r = r * t + 0.254829592f;
    vf e = vexp(-(z * z));
    vf v = 1.0f - e * t * r;
    vf erf = (vf)((vi)v ^ sign);
    return x * 0.5f * (1.0f + erf);
}

CK_INLINE void group_norm_body(const float *x, float *y, int cg, long spatial, const float *weight, const float *bias,
                               float eps, int silu) {
    const long count = (long)cg * spatial;
    /* Mean, then the centred sum of squares, both accumulated in double. */
    vd s0 = {0}, s1 = {0};
    long i = 0;
    for (; i + 16 <= count; i += 16) { s0 += vload8d(x + i); s1 += vload8d(x + i + 8); }
    double sum = 0;
    for (int l = 0; l < 8; l++) sum += s0[l] + s1[l];
    for (; i < count; i++) sum += x[i];
    const double mean = count > 0 ? sum / (double)count : 0;
    vd v0 = {0}, v1 = {0};
    i = 0;
    for (; i + 16 <= count; i += 16) {
        vd a = vload8d(x + i) - mean, b = vload8d(x + i + 8) - mean;
        v0 += a * a;
        v1 += b * b;
    }
    double var = 0;
    for (int l = 0; l < 8; l++) var += v0[l] + v1[l];
    for (; i < count; i++) { double a = x[i] - mean; var += a * a; }
    var = count > 0 ? var / (double)count : 0;
    const float fmean = (float)mean, rstd = (float)(1.0 / __builtin_sqrt(var + (double)eps));
    for (int c = 0; c < cg; c++) {
        const float scale = rstd * (weight ? weight[c] : 1.0f);
        const float shift = (bias ? bias[c] : 0.0f) - fmean * scale;
        const float *s = x + (long)c * spatial;
        float *d = y + (long)c * spatial;
        long j = 0;
        for (; j + 16 <= spatial; j += 16) {
            vf v = vload(s + j) * scale + shift;
            vstore(d + j, silu ? vsilu(v) : v);
        }
        if (j < spatial) {
            float tmp[16] = {0};
            for (long k = j; k < spatial; k++) tmp[k - j] = s[k];
            vf v = vload(tmp) * scale + shift;
            vstore(tmp, silu ? vsilu(v) : v);
            for (long k = j; k < spatial; k++) d[k] = tmp[k - j];
        }
    }
}

CK_VARIANTS(void, ck_group_norm,
            (const float *x, float *y, int cg, long spatial, const float *weight, const float *bias, float eps, int silu),
            (x, y, cg, spatial, weight, bias, eps, silu), group_norm_body)

CK_INLINE void geglu_body(const float *x, float *y, long rows, int d) {
    for (long r = 0; r < rows; r++) {
        const float *a = x + r * 2 * d, *g = a + d;
        float *o = y + r * d;
        int i = 0;
        for (; i + 16 <= d; i += 16) vstore(o + i, vload(a + i) * vgelu(vload(g + i)));
        if (i < d) {
            float ta[16] = {0}, tg[16] = {0};
            for (int k = i; k < d; k++) { ta[k - i] = a[k]; tg[k - i] = g[k]; }
            vstore(ta, vload(ta) * vgelu(vload(tg)));
            for (int k = i; k < d; k++) o[k] = ta[k - i];
        }
    }
}

CK_VARIANTS(void, ck_geglu, (const float *x, float *y, long rows, int d), (x, y, rows, d), geglu_body)
