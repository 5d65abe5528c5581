//! A Dense layer's weights on the host and the one matrix product every host network uses.
//!
//! Layout matches burn's `Linear`: `w` is `[d_in, d_out]` row-major (`y = x·W + b`), `b` is
//! `[d_out]` (zeros for a layer without bias). Natively the product is the `gemm` crate's SGEMM
//! (the same kernels burn's CPU backend uses, with runtime CPU-feature dispatch); in wasm it is
//! [`super::wasm_gemm`]'s register-blocked SIMD128 kernels (fused multiply-add in the
//! relaxed-SIMD module). Single-threaded: callers parallelise over independent row blocks.

/// Weights of one Dense layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// `[d_in, d_out]`, row-major.
    pub w: Vec<f32>,
    /// `[d_out]`.
    pub b: Vec<f32>,
    pub d_in: usize,
    pub d_out: usize,
}

impl Dense {
    /// A layer from its weights; `b = None` means no bias (stored as zeros).
    /// Panics when the lengths do not match `[d_in, d_out]` / `[d_out]`.
    pub fn new(w: Vec<f32>, b: Option<Vec<f32>>, d_in: usize, d_out: usize) -> Self {
        assert_eq!(
            w.len(),
            d_in * d_out,
            "Dense: weight is not [{d_in}, {d_out}]"
        );
        let b = b.unwrap_or_else(|| vec![0.0; d_out]);
        assert_eq!(b.len(), d_out, "Dense: bias is not [{d_out}]");
        Self { w, b, d_in, d_out }
    }
}

/// The rows of `s` (`[rows, o]`) and `a` (`[rows, d]`) side by side into `x` (`[rows, o + d]`),
/// the input of a net that takes `concat(s, a)`.
pub fn concat_rows(x: &mut Vec<f32>, s: &[f32], o: usize, a: &[f32], d: usize) {
    let rows = a.len().checked_div(d).unwrap_or(0);
    assert_eq!(s.len(), rows * o, "concat_rows: s is not [{rows}, {o}]");
    assert_eq!(a.len(), rows * d, "concat_rows: a is not [{rows}, {d}]");
    x.clear();
    for r in 0..rows {
        x.extend_from_slice(&s[r * o..(r + 1) * o]);
        x.extend_from_slice(&a[r * d..(r + 1) * d]);
    }
}

/// An operand of [`product`]: a `[rows, cols]` matrix inside `data`, read either row-major
/// (`transposed = false`: element `(i, j)` at `data[i * cols + j]`) or as the transpose of a
/// row-major `[cols, rows]` buffer (element `(i, j)` at `data[j * rows + i]`).
struct Operand<'a> {
    data: &'a [f32],
    transposed: bool,
}

/// `out ← lhs·rhs` (or `out ← out + lhs·rhs`): `lhs` is `[m, k]`, `rhs` is `[k, n]`, `out` is
/// `[m, n]` row-major. Every public product below is this one SGEMM call with other strides.
fn product(
    lhs: Operand,
    rhs: Operand,
    out: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    assert_eq!(lhs.data.len(), m * k, "matmul: lhs is not [{m}, {k}]");
    assert_eq!(rhs.data.len(), k * n, "matmul: rhs is not [{k}, {n}]");
    assert_eq!(out.len(), m * n, "matmul: out is not [{m}, {n}]");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return;
    }
    // (column stride, row stride) of a `[rows, cols]` operand.
    let strides = |op: &Operand, rows: usize, cols: usize| {
        if op.transposed {
            (rows as isize, 1)
        } else {
            (1, cols as isize)
        }
    };
    let (lhs_cs, lhs_rs) = strides(&lhs, m, k);
    #[cfg(target_arch = "wasm32")]
    {
        wasm_product(
            lhs.data,
            lhs_rs as usize,
            lhs_cs as usize,
            rhs,
            out,
            (m, k, n),
            accumulate,
        );
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let (rhs_cs, rhs_rs) = strides(&rhs, k, n);
        gemm_product(
            lhs.data,
            (lhs_cs, lhs_rs),
            rhs.data,
            (rhs_cs, rhs_rs),
            out,
            (m, k, n),
            accumulate,
        );
    }
}

/// The product on wasm's own kernels, the right operand in row-major `[k, n]` (a transposed one
/// is copied into that layout first, into a reused buffer).
#[cfg(target_arch = "wasm32")]
fn wasm_product(
    l: &[f32],
    l_rs: usize,
    l_cs: usize,
    rhs: Operand,
    out: &mut [f32],
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) {
    use std::cell::RefCell;
    thread_local! {
        static RHS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }
    let mut run = |r: &[f32]| {
        // SAFETY: `l` addresses `lhs(i, p)` inside its `m·k` floats with these strides (checked
        // shapes above), `r` holds `k·n` floats in row-major order, `out` holds `m·n` and is the
        // only `&mut`. The relaxed kernels exist only in the relaxed-SIMD module, which the page
        // instantiates only where the browser validates relaxed SIMD.
        unsafe {
            super::wasm_gemm::product(
                l.as_ptr(),
                l_rs,
                l_cs,
                r.as_ptr(),
                out.as_mut_ptr(),
                m,
                k,
                n,
                accumulate,
            )
        }
    };
    if rhs.transposed {
        RHS.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            buf.resize(k * n, 0.0);
            // rhs(p, j) = data[j * k + p]
            for j in 0..n {
                let col = &rhs.data[j * k..(j + 1) * k];
                for (p, &v) in col.iter().enumerate() {
                    buf[p * n + j] = v;
                }
            }
            run(&buf);
        });
    } else {
        run(rhs.data);
    }
}

/// The product on the `gemm` crate's SGEMM.
#[cfg(not(target_arch = "wasm32"))]
fn gemm_product(
    l: &[f32],
    (lhs_cs, lhs_rs): (isize, isize),
    r: &[f32],
    (rhs_cs, rhs_rs): (isize, isize),
    out: &mut [f32],
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) {
    // SAFETY: the three buffers hold exactly the shapes passed (checked above) and the strides
    // address only elements inside them (row-major, or the transpose of a row-major buffer of
    // the same size); `out` does not alias `lhs` or `rhs` (it is the only `&mut`). gemm computes
    // `dst ← alpha·dst + beta·lhs·rhs`, reading `dst` only when asked.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            l.as_ptr(),
            lhs_cs,
            lhs_rs,
            r.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn plain(data: &[f32]) -> Operand<'_> {
    Operand {
        data,
        transposed: false,
    }
}

fn transposed(data: &[f32]) -> Operand<'_> {
    Operand {
        data,
        transposed: true,
    }
}

/// `out ← x·w` (or `out ← out + x·w` when `accumulate`): `x` is `[rows, k]`, `w` is `[k, n]`,
/// `out` is `[rows, n]`, all row-major and contiguous. `k = 0` leaves `out` (zeroed unless
/// accumulating).
pub fn matmul(x: &[f32], w: &[f32], out: &mut [f32], k: usize, n: usize, accumulate: bool) {
    let rows = out.len() / n.max(1);
    product(plain(x), plain(w), out, rows, k, n, accumulate);
}

/// `out ← x·wᵀ` (or `out ← out + x·wᵀ` when `accumulate`): `x` is `[rows, k]`, `w` is `[n, k]`
/// row-major (so `wᵀ` is `[k, n]`), `out` is `[rows, n]`. The backward pass of `y = x·W`
/// through its input uses it with `W` itself.
pub fn matmul_bt(x: &[f32], w: &[f32], out: &mut [f32], k: usize, n: usize, accumulate: bool) {
    let rows = out.len() / n.max(1);
    product(plain(x), transposed(w), out, rows, k, n, accumulate);
}

/// `out ← aᵀ·b`: `a` is `[r, m]`, `b` is `[r, n]`, `out` is `[m, n]`, all row-major. The
/// weight gradient of `y = x·W` is `xᵀ·δ`.
pub fn matmul_at(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize) {
    let r = a.len().checked_div(m).unwrap_or(0);
    product(transposed(a), plain(b), out, m, r, n, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], w: &[f32], k: usize, n: usize) -> Vec<f32> {
        let rows = x.len() / k;
        let mut out = vec![0.0f32; rows * n];
        for r in 0..rows {
            for j in 0..n {
                out[r * n + j] = (0..k).map(|i| x[r * k + i] * w[i * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn matmul_matches_the_definition_and_accumulates() {
        let (rows, k, n) = (37, 13, 9);
        let x: Vec<f32> = (0..rows * k).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let w: Vec<f32> = (0..k * n)
            .map(|i| ((i * 5) % 7) as f32 * 0.5 - 1.0)
            .collect();
        let want = naive(&x, &w, k, n);
        let mut out = vec![f32::NAN; rows * n];
        matmul(&x, &w, &mut out, k, n, false);
        assert_eq!(out, want, "small integers are exact");
        let mut acc = vec![1.0f32; rows * n];
        matmul(&x, &w, &mut acc, k, n, true);
        for (a, b) in acc.iter().zip(&want) {
            assert_eq!(*a, b + 1.0);
        }
        // x·wᵀ with w stored as [n, k].
        let mut wt = vec![0.0f32; n * k];
        for i in 0..k {
            for j in 0..n {
                wt[j * k + i] = w[i * n + j];
            }
        }
        let mut bt = vec![f32::NAN; rows * n];
        matmul_bt(&x, &wt, &mut bt, k, n, false);
        assert_eq!(bt, want);
        let mut bt1 = vec![1.0f32; rows * n];
        matmul_bt(&x, &wt, &mut bt1, k, n, true);
        for (a, b) in bt1.iter().zip(&want) {
            assert_eq!(*a, b + 1.0);
        }
        // xᵀ·y with x [rows, k] and y [rows, n]: the naive product of the transposed x.
        let y: Vec<f32> = (0..rows * n).map(|i| ((i * 3) % 5) as f32 - 2.0).collect();
        let mut xt = vec![0.0f32; k * rows];
        for r in 0..rows {
            for i in 0..k {
                xt[i * rows + r] = x[r * k + i];
            }
        }
        let want_at = naive(&xt, &y, rows, n);
        let mut at = vec![f32::NAN; k * n];
        matmul_at(&x, &y, &mut at, k, n);
        assert_eq!(at, want_at);
        // k = 0: x·w is the zero matrix.
        let mut z = vec![3.0f32; 4];
        matmul(&[], &[], &mut z, 0, 2, false);
        assert_eq!(z, vec![0.0; 4]);
    }
}
