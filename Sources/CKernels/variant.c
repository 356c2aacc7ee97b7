#include "CKernels.h"
#include "dispatch.h"

const char *ck_variant(void) {
    switch (ck_level()) {
    case 2: return "avx512";
    case 1: return "avx2";
    default: return "portable";
    }
}
