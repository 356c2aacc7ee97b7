/* Run-time choice between per-function target variants (see CKernels.h).
 *
 * A kernel body is written once as a `static inline __attribute__((always_inline))` function on
 * 16-float vector-extension types; CK_VARIANTS defines thin wrappers compiled for AVX-512, AVX2+FMA
 * and the baseline. Inlining the body into a wrapper compiles it for the wrapper's instruction set
 * (16-float vectors become one zmm, two ymm or four xmm/NEON registers). */
#ifndef CK_DISPATCH_H
#define CK_DISPATCH_H

#include <stdlib.h>
#include <string.h>

/* The 64-byte vector helpers are always inlined into the per-target wrappers, so no vector crosses a
 * call boundary and the ABI note clang gives for the baseline variant does not apply. */
#pragma clang diagnostic ignored "-Wpsabi"

#define CK_INLINE static inline __attribute__((always_inline))

typedef float vf __attribute__((vector_size(64)));
typedef int vi __attribute__((vector_size(64)));

CK_INLINE vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
CK_INLINE void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }
CK_INLINE vf vsplat(float s) { return (vf){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }

/* e^x, about 1 ulp (Cephes expf: Cody-Waite reduction, degree-5 polynomial); 0 below -87.3, clamped above at
 * e^88.38. Shared by the attention softmax and the SiLU/GELU kernels. */
CK_INLINE vf vexp(vf x) {
    vi under = x < -87.33654f;
    x = __builtin_elementwise_min(__builtin_elementwise_max(x, vsplat(-87.33654f)), vsplat(88.3762626647949f));
    const vf magic = vsplat(12582912.0f);
    vf shifted = x * 1.44269504088896341f + magic;
    vf n = shifted - magic;
    vf r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    vf r2 = r * r;
    vf y = vsplat(1.9875691500E-4f);
    y = y * r + 1.3981999507E-3f;
    y = y * r + 8.3334519073E-3f;
    y = y * r + 4.1665795894E-2f;
    y = y * r + 1.6666665459E-1f;
    y = y * r + 5.0000001201E-1f;
    y = y * r2 + r + 1.0f;
    vi nb = (vi)shifted - (vi)magic;
    vf res = y * (vf)((nb + 127) << 23);
    return (vf)((vi)res & ~under);
}

#if defined(__x86_64__) || defined(__i386__)
#define CK_X86 1
#define CK_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,f16c")))
#define CK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))

/* 2 = AVX-512, 1 = AVX2+FMA, 0 = baseline; decided once. */
static int ck_level(void) {
    static int level = -1;
    if (level < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl")) level = 2;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = 1;
        else level = 0;
        /* CKERNELS_VARIANT=avx2|portable forces a lower variant (to test them on an AVX-512 machine). */
        const char *force = getenv("CKERNELS_VARIANT");
        if (force && strcmp(force, "avx2") == 0 && level > 1) level = 1;
        if (force && strcmp(force, "portable") == 0) level = 0;
    }
    return level;
}

/* Defines `name` dispatching to name##_avx512 / name##_avx2 / name##_base, each calling `body`. */
#define CK_VARIANTS(ret, name, params, args, body)                                   \
    CK_TARGET_AVX512 static ret name##_avx512 params { return body args; }          \
    CK_TARGET_AVX2 static ret name##_avx2 params { return body args; }              \
    static ret name##_base params { return body args; }                             \
    ret name params {                                                               \
        switch (ck_level()) {                                                       \
        case 2: return name##_avx512 args;                                          \
        case 1: return name##_avx2 args;                                            \
        default: return name##_base args;                                           \
        }                                                                           \
    }
#else
#define CK_X86 0
static int ck_level(void) { return 0; }
#define CK_VARIANTS(ret, name, params, args, body) \
    ret name params { return body args; }
#endif

#endif
