/* Winograd F(2x2, 3x3) transforms (Lavin & Gray 2015) for 3x3 stride-1 convolutions; see CKernels.h.
 *
 * Why: a 3x3 convolution by im2col + sgemm costs 9 multiply-adds per input channel and output; F(2x2,3x3)
 * computes each 2x2 output tile from a 4x4 input tile with 16 (the 16 products are sgemms over all
 * tiles and channels), 2.25x fewer. The transforms only add and subtract (the filter transform halves),
 * so the rounding stays close to direct convolution in float32 (checked against im2col in the tests).
 *   U = G g G^T,  V = B^T d B,  Y = A^T M A, with
 *   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1], B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *   A^T = [1 1 1 0; 0 1 -1 -1]. */
#include "CKernels.h"
#include "dispatch.h"

#include <stdlib.h>

/* 16 input channels of one output channel at once: the 16 filters (144 contiguous floats) are
 * transposed through a small buffer so that each of the 16 results is one contiguous vector store. */
CK_INLINE void filter_16(const float *g, float *dst, long xiStride) {
    float tmp[9][16];
    for (int l = 0; l < 16; l++)
        for (int k = 0; k < 9; k++) tmp[k][l] = g[l * 9 + k];
    vf gg[9];
    for (int k = 0; k < 9; k++) gg[k] = vload(tmp[k]);
    vf t[4][3];
    for (int j = 0; j < 3; j++) {
        t[0][j] = gg[j];
        t[1][j] = (gg[j] + gg[3 + j] + gg[6 + j]) * 0.5f;
        t[2][j] = (gg[j] - gg[3 + j] + gg[6 + j]) * 0.5f;
        t[3][j] = gg[6 + j];
    }
    for (int i = 0; i < 4; i++) {
        vstore(dst + (i * 4 + 0) * xiStride, t[i][0]);
        vstore(dst + (i * 4 + 1) * xiStride, (t[i][0] + t[i][1] + t[i][2]) * 0.5f);
        vstore(dst + (i * 4 + 2) * xiStride, (t[i][0] - t[i][1] + t[i][2]) * 0.5f);
        vstore(dst + (i * 4 + 3) * xiStride, t[i][2]);
    }
}

CK_INLINE void filter_body(const float *w, int cout, int cin, int co0, int co1, float *u, long xiStride) {
    (void)cout;
    for (int co = co0; co < co1; co++) {
        int ci = 0;
        for (; ci + 16 <= cin; ci += 16) filter_16(w + ((size_t)co * cin + ci) * 9, u + (size_t)co * cin + ci, xiStride);
        for (; ci < cin; ci++) {
            const float *g = w + ((size_t)co * cin + ci) * 9;
            float t[4][3];
            for (int j = 0; j < 3; j++) {
                t[0][j] = g[j];
                t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
                t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
                t[3][j] = g[6 + j];
            }
            float *dst = u + (size_t)co * cin + ci;
            for (int i = 0; i < 4; i++) {
                float r[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
                for (int j = 0; j < 4; j++) dst[(i * 4 + j) * xiStride] = r[j];
            }
        }
    }
}

CK_VARIANTS(void, ck_winograd_filter, (const float *w, int cout, int cin, int co0, int co1, float *u, long xiStride),
            (w, cout, cin, co0, co1, u, xiStride), filter_body)

#define EVENS 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define ODDS 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31

/* Columns 0..3 of 16 neighbouring tiles in one input row p (tile k starts at p + 2k; reads p[0..34)). */
CK_INLINE void tile_columns(const float *p, vf c[4]) {
    vf a = vload(p), b = vload(p + 16), a2 = vload(p + 2), b2 = vload(p + 18);
    c[0] = __builtin_shufflevector(a, b, EVENS);
    c[1] = __builtin_shufflevector(a, b, ODDS);
    c[2] = __builtin_shufflevector(a2, b2, EVENS);
    c[3] = __builtin_shufflevector(a2, b2, ODDS);
}

/* 16 neighbouring tiles of one tile row from 4 zero-padded input rows (tile k starts at column 2k of
 * each row): the stride-2 tile columns are split out of contiguous loads with shuffles, and each
 * transformed position xi is one 16-float vector; lanes [lo, hi) are stored to o[xi*xiStride + lane]. */
CK_INLINE void input_16(const float *rows, long ld, float *o, long xiStride, int lo, int hi) {
    vf d[4][4];
    for (int i = 0; i < 4; i++) tile_columns(rows + i * ld, d[i]);
    for (int j = 0; j < 4; j++) {
        vf t0 = d[0][j] - d[2][j], t1 = d[1][j] + d[2][j], t2 = d[2][j] - d[1][j], t3 = d[1][j] - d[3][j];
        d[0][j] = t0; d[1][j] = t1; d[2][j] = t2; d[3][j] = t3;
    }
    vf r[16];
    for (int i = 0; i < 4; i++) {
        r[i * 4 + 0] = d[i][0] - d[i][2];
        r[i * 4 + 1] = d[i][1] + d[i][2];
        r[i * 4 + 2] = d[i][2] - d[i][1];
        r[i * 4 + 3] = d[i][1] - d[i][3];
    }
    if (lo == 0 && hi == 16) {
        for (int xi = 0; xi < 16; xi++) vstore(o + xi * xiStride, r[xi]);
    } else {
        for (int xi = 0; xi < 16; xi++) {
            float lanes[16];
            vstore(lanes, r[xi]);
            for (int l = lo; l < hi; l++) o[xi * xiStride + l] = lanes[l];
        }
    }
}

/* Tiles are taken tile row by tile row: the 4 input rows a tile row needs are copied once into a
 * zero-padded buffer (padding and the plane's edges become zeros), so every tile goes through the
 * vector path, 16 at a time. */
CK_INLINE void input_body(const float *x, int h, int w, int pt, int pl, int tilesW, int t0, int count,
                          float *dst, long xiStride) {
    const int groups = (tilesW + 15) / 16;
    const long ld = 32L * groups + 2 + 16;
    float *rows = malloc(sizeof(float) * 4 * (size_t)ld);
    int t = t0;
    const int tEnd = t0 + count;
    while (t < tEnd) {
        const int ty = t / tilesW, rowStart = ty * tilesW;
        const int txLo = t - rowStart, txHi = (tEnd - rowStart < tilesW ? tEnd - rowStart : tilesW);
        for (int i = 0; i < 4; i++) {
            float *p = rows + i * ld;
            const int r = 2 * ty - pt + i;
            for (long c = 0; c < ld; c++) p[c] = 0;
            if (r >= 0 && r < h) {
                /* padded column q holds input column q - pl */
                const int qLo = pl, qHi = pl + w < ld ? pl + w : (int)ld;
                if (qHi > qLo) memcpy(p + qLo, x + (size_t)r * w, sizeof(float) * (size_t)(qHi - qLo));
            }
        }
        for (int g = txLo / 16; g * 16 < txHi; g++) {
            const int lo = txLo > g * 16 ? txLo - g * 16 : 0, hi = txHi < g * 16 + 16 ? txHi - g * 16 : 16;
            input_16(rows + 32 * g, ld, dst + (rowStart + g * 16 - t0), xiStride, lo, hi);
        }
        t = rowStart + txHi;
    }
    free(rows);
}

CK_VARIANTS(void, ck_winograd_input,
            (const float *x, int h, int w, int pt, int pl, int tilesW, int t0, int count, float *dst, long xiStride),
            (x, h, w, pt, pl, tilesW, t0, count, dst, xiStride), input_body)

#define INTERLEAVE_LO 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define INTERLEAVE_HI 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31

/* 16 tiles of one tile row at once (all 2x32 outputs inside the plane). */
CK_INLINE void output_16(const float *m, long xiStride, float *y, int wo, float add, const float *r) {
    vf mm[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) mm[i][j] = vload(m + (i * 4 + j) * xiStride);
    for (int i = 0; i < 2; i++) {
        vf s[4];
        for (int j = 0; j < 4; j++) s[j] = i == 0 ? mm[0][j] + mm[1][j] + mm[2][j] : mm[1][j] - mm[2][j] - mm[3][j];
        vf v0 = s[0] + s[1] + s[2] + add, v1 = s[1] - s[2] - s[3] + add;
        vf lo = __builtin_shufflevector(v0, v1, INTERLEAVE_LO), hi = __builtin_shufflevector(v0, v1, INTERLEAVE_HI);
        float *row = y + (size_t)i * wo;
        if (r) {
            const float *rr = r + (size_t)i * wo;
            lo += vload(rr);
            hi += vload(rr + 16);
        }
        vstore(row, lo);
        vstore(row + 16, hi);
    }
}

CK_INLINE void output_body(const float *m, long xiStride, int tilesW, int t0, int count, float *y, int ho, int wo,
                           float add, const float *r) {
    for (int k = 0; k < count; k++) {
        const int t = t0 + k, ty = t / tilesW, tx = t % tilesW;
        if (k + 16 <= count && tx + 16 <= tilesW && 2 * ty + 2 <= ho && 2 * tx + 32 <= wo) {
            const size_t at = (size_t)(2 * ty) * wo + 2 * tx;
            output_16(m + k, xiStride, y + at, wo, add, r ? r + at : 0);
            k += 15;
            continue;
        }
        const float *mp = m + k;
        float mm[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) mm[i][j] = mp[(i * 4 + j) * xiStride];
        float s[2][4];
        for (int j = 0; j < 4; j++) {
            s[0][j] = mm[0][j] + mm[1][j] + mm[2][j];
            s[1][j] = mm[1][j] - mm[2][j] - mm[3][j];
        }
        const int oy = 2 * ty, ox = 2 * tx;
        for (int i = 0; i < 2; i++) {
            if (oy + i >= ho) break;
            const float v0 = s[i][0] + s[i][1] + s[i][2] + add, v1 = s[i][1] - s[i][2] - s[i][3] + add;
            const size_t at = (size_t)(oy + i) * wo + ox;
            y[at] = r ? v0 + r[at] : v0;
            if (ox + 1 < wo) y[at + 1] = r ? v1 + r[at + 1] : v1;
        }
    }
}

CK_VARIANTS(void, ck_winograd_output,
            (const float *m, long xiStride, int tilesW, int t0, int count, float *y, int ho, int wo, float add, const float *r),
            (m, xiStride, tilesW, t0, count, y, ho, wo, add, r), output_body)
