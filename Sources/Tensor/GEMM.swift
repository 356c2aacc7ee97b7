import CBLAS

/// Row-major single-precision matrix multiply through OpenBLAS:
/// C[m×n] = alpha · op(A) · op(B) + beta · C, with leading dimensions in elements.
public enum GEMM {
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched only for beta == 1; make k == 0 mean "scale C by beta".
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    /// Throws when a dimension does not fit OpenBLAS's 32-bit integers.
    static func checkDims(_ dims: Int...) throws(TensorError) {
        for d in dims where d > Int(Int32.max) {
            throw TensorError("matrix dimension \(d) exceeds the BLAS limit of \(Int32.max)")
        }
    }

    /// The number of threads OpenBLAS uses.
    public static var threadCount: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }
}
