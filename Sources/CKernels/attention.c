/* Blocked (flash-style) attention; see CKernels.h.
 *
 * Why: the UNet's 64x64 self-attention has head width 40, so with BLAS the score product Q K^T has
 * an inner dimension of 40 and P V an output width of 40; OpenBLAS runs both at about a quarter of
 * its peak, and the 4096 x 4096 scores go through memory twice. Here a tile of QB query rows meets
 * a block of KB keys in registers-sized micro-kernels, the tile's scores stay in a cache-sized
 * buffer, and the softmax is folded in online (running max m and sum l per row; when the max grows
 * the partial output and sum are rescaled by exp(m_old - m_new)). */
#include <math.h>
#include "CKernels.h"
#include "dispatch.h"

enum {
    PANEL = 64, /* keys per packed k panel (4 vectors of 16) */
    QB = 64,    /* query rows per tile (a multiple of 4) */
    KB = 128,   /* keys per block (a multiple of PANEL) */
};

static int round16(int n) { return (n + 15) & ~15; }

size_t ck_attention_pack_floats(int nk, int d, int dv) {
    size_t panels = (size_t)(nk + PANEL - 1) / PANEL;
    return panels * PANEL * (size_t)d + panels * PANEL * (size_t)round16(dv);
}

/* Layout: panel p holds keys [64p, 64p+64) transposed, kt[p][t][j] (zero beyond nk); then the
 * values, one row of round16(dv) floats per key (zero-padded), rows up to the padded key count. */
void ck_attention_pack(const float *k, long ldk, const float *v, long ldv, int nk, int d, int dv, float *pack) {
    int panels = (nk + PANEL - 1) / PANEL, dvp = round16(dv);
    float *kt = pack, *vp = pack + (size_t)panels * PANEL * d;
    for (int p = 0; p < panels; p++) {
        float *dst = kt + (size_t)p * PANEL * d;
        for (int j = 0; j < PANEL; j++) {
            int key = p * PANEL + j;
            if (key < nk) {
                const float *src = k + (size_t)key * ldk;
                for (int t = 0; t < d; t++) dst[t * PANEL + j] = src[t];
            } else {
                for (int t = 0; t < d; t++) dst[t * PANEL + j] = 0;
            }
        }
    }
    for (int key = 0; key < panels * PANEL; key++) {
        float *dst = vp + (size_t)key * dvp;
        int n = key < nk ? dv : 0;
        if (n) memcpy(dst, v + (size_t)key * ldv, sizeof(float) * (size_t)dv);
        for (int c = n; c < dvp; c++) dst[c] = 0;
    }
}

size_t ck_attention_scratch_floats(int dv) {
    return (size_t)QB * KB + (size_t)QB * round16(dv) + 2 * QB;
}

CK_INLINE float hsum(vf v) { float s = 0; for (int i = 0; i < 16; i++) s += v[i]; return s; }
CK_INLINE float hmax(vf v) { float m = v[0]; for (int i = 1; i < 16; i++) m = v[i] > m ? v[i] : m; return m; }

/* s[r*KB + 0..64) = q_r . kt-panel for 4 query rows (row pointers q0..q3). */
CK_INLINE void scores_4x64(const float *q0, const float *q1, const float *q2, const float *q3,
                           const float *kt, int d, float *s) {
    vf a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0};
    vf a20 = {0}, a21 = {0}, a22 = {0}, a23 = {0}, a30 = {0}, a31 = {0}, a32 = {0}, a33 = {0};
    for (int t = 0; t < d; t++) {
        const float *kr = kt + t * PANEL;
        vf k0 = vload(kr), k1 = vload(kr + 16), k2 = vload(kr + 32), k3 = vload(kr + 48);
        vf b;
        b = vsplat(q0[t]); a00 += b * k0; a01 += b * k1; a02 += b * k2; a03 += b * k3;
        b = vsplat(q1[t]); a10 += b * k0; a11 += b * k1; a12 += b * k2; a13 += b * k3;
        b = vsplat(q2[t]); a20 += b * k0; a21 += b * k1; a22 += b * k2; a23 += b * k3;
        b = vsplat(q3[t]); a30 += b * k0; a31 += b * k1; a32 += b * k2; a33 += b * k3;
    }
    vstore(s, a00); vstore(s + 16, a01); vstore(s + 32, a02); vstore(s + 48, a03);
    s += KB; vstore(s, a10); vstore(s + 16, a11); vstore(s + 32, a12); vstore(s + 48, a13);
    s += KB; vstore(s, a20); vstore(s + 16, a21); vstore(s + 32, a22); vstore(s + 48, a23);
    s += KB; vstore(s, a30); vstore(s + 16, a31); vstore(s + 32, a32); vstore(s + 48, a33);
}

/* o[r*ldo + c0 .. + 16*NV) += sum_j p[r*KB + j] * v[j*dvp + c0 ..] for 4 rows and n keys. */
#define PV_KERNEL(NV)                                                                                  \
    CK_INLINE void pv_4x##NV(const float *p, const float *v, int dvp, int n, float *o, int ldo) {     \
        vf acc[4][NV];                                                                                 \
        for (int r = 0; r < 4; r++)                                                                    \
            for (int c = 0; c < NV; c++) acc[r][c] = vload(o + r * ldo + 16 * c);                      \
        for (int j = 0; j < n; j++) {                                                                  \
            vf vv[NV];                                                                                 \
            for (int c = 0; c < NV; c++) vv[c] = vload(v + (size_t)j * dvp + 16 * c);                  \
            for (int r = 0; r < 4; r++) {                                                              \
                vf b = vsplat(p[r * KB + j]);                                                          \
                for (int c = 0; c < NV; c++) acc[r][c] += b * vv[c];                                   \
            }                                                                                          \
        }                                                                                              \
        for (int r = 0; r < 4; r++)                                                                    \
            for (int c = 0; c < NV; c++) vstore(o + r * ldo + 16 * c, acc[r][c]);                      \
    }
PV_KERNEL(1)
PV_KERNEL(2)
PV_KERNEL(3)
PV_KERNEL(4)

CK_INLINE void attention_rows_body(const float *q, long ldq, int rows, const float *pack, int nk, int d, int dv,
                                   float scale, float *o, long ldo, float *scratch) {
    const int dvp = round16(dv), panels = (nk + PANEL - 1) / PANEL;
    const float *kt = pack, *vp = pack + (size_t)panels * PANEL * d;
    float *s = scratch, *acc = s + QB * KB, *mrow = acc + QB * dvp, *lrow = mrow + QB;
    for (int i0 = 0; i0 < rows; i0 += QB) {
        const int m = rows - i0 < QB ? rows - i0 : QB, m4 = (m + 3) & ~3;
        for (int i = 0; i < m4 * dvp; i++) acc[i] = 0;
        for (int i = 0; i < m; i++) { mrow[i] = -INFINITY; lrow[i] = 0; }
        for (int j0 = 0; j0 < nk; j0 += KB) {
            const int n = nk - j0 < KB ? nk - j0 : KB, np = (n + PANEL - 1) / PANEL;
            /* Scores of the tile; rows past m repeat the last row (results unused). */
            for (int r = 0; r < m4; r += 4) {
                const float *qr[4];
                for (int u = 0; u < 4; u++) qr[u] = q + (size_t)(i0 + (r + u < m ? r + u : m - 1)) * ldq;
                for (int p = 0; p < np; p++)
                    scores_4x64(qr[0], qr[1], qr[2], qr[3], kt + (size_t)(j0 / PANEL + p) * PANEL * d, d,
                                s + r * KB + p * PANEL);
            }
            /* Online softmax: p = exp(scale*s - m_new), rescale the partial rows by exp(m_old - m_new). */
            const vi lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
            for (int r = 0; r < m; r++) {
                float *sr = s + r * KB;
                vf mx = vsplat(-INFINITY);
                for (int j = 0; j < n; j += 16) {
                    vf x = vload(sr + j) * scale;
                    vi valid = (lane + j) < n;
                    x = (vf)(((vi)x & valid) | ((vi)vsplat(-INFINITY) & ~valid));
                    vstore(sr + j, x);
                    mx = __builtin_elementwise_max(mx, x);
                }
                const float mOld = mrow[r], bm = hmax(mx), mNew = bm > mOld ? bm : mOld;
                vf sum = {0};
                const vf mb = vsplat(mNew);
                for (int j = 0; j < n; j += 16) {
                    vf e = vexp(vload(sr + j) - mb);
                    vstore(sr + j, e);
                    sum += e;
                }
                /* Keys beyond n in the last vector are zero already (exp(-inf) = 0). */
                if (mNew > mOld) {
                    const float corr = mOld == -INFINITY ? 0.0f : expf(mOld - mNew);
                    lrow[r] *= corr;
                    float *ar = acc + r * dvp;
                    for (int c = 0; c < dvp; c++) ar[c] *= corr;
                }
                mrow[r] = mNew;
                lrow[r] += hsum(sum);
            }
            /* acc += P V for this key block, in column passes of at most 4 vectors. */
            const float *vb = vp + (size_t)j0 * dvp;
            for (int r = 0; r < m4; r += 4) {
                int c = 0, left = dvp / 16;
                while (left > 0) {
                    int w = left == 5 ? 3 : (left > 4 ? 4 : left);
                    float *ar = acc + r * dvp + 16 * c;
                    const float *pr = s + r * KB;
                    switch (w) {
                    case 4: pv_4x4(pr, vb + 16 * c, dvp, n, ar, dvp); break;
                    case 3: pv_4x3(pr, vb + 16 * c, dvp, n, ar, dvp); break;
                    case 2: pv_4x2(pr, vb + 16 * c, dvp, n, ar, dvp); break;
                    default: pv_4x1(pr, vb + 16 * c, dvp, n, ar, dvp); break;
                    }
                    c += w;
                    left -= w;
                }
            }
        }
        for (int r = 0; r < m; r++) {
            const float inv = 1.0f / lrow[r];
            float *dst = o + (size_t)(i0 + r) * ldo;
            const float *ar = acc + r * dvp;
            for (int c = 0; c < dv; c++) dst[c] = ar[c] * inv;
        }
    }
}

CK_VARIANTS(void, ck_attention_rows,
            (const float *q, long ldq, int rows, const float *pack, int nk, int d, int dv, float scale, float *o,
             long ldo, float *scratch),
            (q, ldq, rows, pack, nk, d, dv, scale, o, ldo, scratch), attention_rows_body)
