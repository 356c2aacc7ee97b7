#ifndef CKERNELS_H
#define CKERNELS_H

/* Hand-written CPU kernels for the diffusion models (see docs/architecture.md, "CKernels").
 *
 * Each kernel is compiled several times with per-function target attributes (AVX-512, AVX2+FMA,
 * and the portable baseline) and the variant is picked once at run time from cpuid, so the package
 * builds and runs on any x86-64 or arm64 machine. All functions are single-threaded: the callers
 * split the work over threads (Swift's DispatchQueue.concurrentPerform). */

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Blocked (flash-style) attention: softmax(scale * q k^T) v, one head at a time. ----
 *
 * Keys and values of one head are first packed (ck_attention_pack) into a layout the inner loops
 * stream through: k transposed in panels of 64 keys, v rows padded to a multiple of 16 floats. Then
 * any number of query rows is processed against the packed head (ck_attention_rows) in tiles of
 * query rows x key blocks with an online softmax (running max and sum per row), so the full
 * query x key score matrix is never materialised. */

/** Floats needed by ck_attention_pack for one head with `nk` keys, key width `d`, value width `dv`. */
size_t ck_attention_pack_floats(int nk, int d, int dv);

/** Packs one head: key j is k[j*ldk .. +d], value j is v[j*ldv .. +dv]. */
void ck_attention_pack(const float *k, long ldk, const float *v, long ldv, int nk, int d, int dv, float *pack);

/** Floats of scratch ck_attention_rows needs (per concurrent caller) for value width `dv`. */
size_t ck_attention_scratch_floats(int dv);

/** o[i*ldo .. +dv] = softmax_j(scale * q_i . k_j) v_j for the `rows` query rows q[i*ldq .. +d]. */
void ck_attention_rows(const float *q, long ldq, int rows, const float *pack, int nk, int d, int dv,
                       float scale, float *o, long ldo, float *scratch);

/* ---- Winograd F(2x2, 3x3) transforms for 3x3 stride-1 convolutions. ----
 *
 * The convolution becomes 16 matrix products M[xi] = U[xi] . V[xi] (xi = the 4x4 positions of a
 * transformed tile) over tiles of 2x2 outputs, which the caller does with sgemm. These functions
 * transform filters, input tiles and output tiles. */

/** U[xi*xiStride + co*cin + ci] = (G g G^T)[xi] for the 3x3 filters w[co][ci][3][3]; for co in [co0, co1). */
void ck_winograd_filter(const float *w, int cout, int cin, int co0, int co1, float *u, long xiStride);

/** Input tiles of one channel plane x[h][w] (zero padding pt/pl above/left, zero beyond the plane):
 *  tile t = ty*tilesW + tx for t in [t0, t0+count) covers rows 2ty-pt..+4 and columns 2tx-pl..+4;
 *  writes (B^T d B)[xi] to dst[xi*xiStride + (t - t0)]. */
void ck_winograd_input(const float *x, int h, int w, int pt, int pl, int tilesW,
                       int t0, int count, float *dst, long xiStride);

/** Output tiles of one channel: m[xi*xiStride + (t - t0)] for tiles t in [t0, t0+count) become the
 *  2x2 outputs A^T M A at rows 2ty, columns 2tx of y[ho][wo] (clipped at the edges), plus `add` and,
 *  when non-null, the residual plane r[ho][wo]. */
void ck_winograd_output(const float *m, long xiStride, int tilesW, int t0, int count,
                        float *y, int ho, int wo, float add, const float *r);

/* ---- Element-wise passes. ---- */

/** One (sample, group) of a group normalisation: `cg` channels of `spatial` floats at x (contiguous),
 *  normalised with the group's mean and biased variance (two passes, double accumulation), then
 *  y = x_hat * weight[c] + bias[c] (weight/bias may be null, indexed by the group's channel), then
 *  SiLU when `silu` is non-zero. y may equal x. */
void ck_group_norm(const float *x, float *y, int cg, long spatial, const float *weight, const float *bias,
                   float eps, int silu);

/** GEGLU on `rows` rows of 2d floats [a, g]: y[r][i] = a[i] * gelu(g[i]) with erf-GELU (torch's formula). */
void ck_geglu(const float *x, float *y, long rows, int d);

/** Which variant the dispatcher picked: "avx512", "avx2" or "portable" (for benchmarks and logs). */
const char *ck_variant(void);

#ifdef __cplusplus
}
#endif

#endif
