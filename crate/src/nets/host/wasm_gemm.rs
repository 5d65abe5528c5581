//! The host nets' matrix product in the browser (wasm32 only): register-blocked SIMD128
//! kernels sized for this project's products (rows in the hundreds or thousands, inner and
//! output widths ≤ 256), with no packing of the left operand.
//!
//! Two builds of the same kernels ([`dense`](super::dense) picks one at compile time):
//! - `plain`: multiply then add (`f32x4_mul` + `f32x4_add`), for every browser with SIMD128;
//! - `relaxed` (crate feature `relaxed-simd`): one fused multiply-add per lane
//!   (`f32x4_relaxed_madd`, Chrome 114+, Firefox 146+). A module that contains it does not
//!   validate in a browser without relaxed SIMD, so it is its own module, and the page picks it
//!   by feature detection (docs/architecture.md, "Four wasm modules").
//!
//! The operands are described as in `dense`: `lhs(i, p) = l[i * l_rs + p * l_cs]`, and the
//! right operand is a row-major `[k, n]` buffer (a transposed one is copied into that layout
//! first: `k·n` moves against the product's `m·k·n` multiply-adds).

use core::arch::wasm32::{f32x4_add, f32x4_splat, v128, v128_load, v128_store};

/// Rows of `out` per register block.
const MR: usize = 4;

macro_rules! kernels {
    ($(#[$feature:meta])*, $madd:expr) => {
        /// `out ← out·[accumulate] + lhs·rhs` over the whole `[m, n]` output.
        ///
        /// # Safety
        /// `l` addresses `lhs(i, p)` for `i < m`, `p < k` inside its buffer, `r` holds `k·n`
        /// floats and `out` `m·n`; `out` aliases neither. In the relaxed build the browser must
        /// support relaxed SIMD (the module would not have been instantiated otherwise).
        $(#[$feature])*
        pub(in crate::nets::host) unsafe fn product(
            l: *const f32, l_rs: usize, l_cs: usize,
            r: *const f32, out: *mut f32,
            m: usize, k: usize, n: usize, accumulate: bool,
        ) {
            let mut i = 0;
            while i + MR <= m {
                unsafe { rows::<MR>(l.add(i * l_rs), l_rs, l_cs, r, out.add(i * n), k, n, accumulate) };
                i += MR;
            }
            while i < m {
                unsafe { rows::<1>(l.add(i * l_rs), l_rs, l_cs, r, out.add(i * n), k, n, accumulate) };
                i += 1;
            }
        }

        /// `R` consecutive rows of the output: column blocks of 8, then 4, then single columns.
        $(#[$feature])*
        #[inline]
        unsafe fn rows<const R: usize>(
            l: *const f32, l_rs: usize, l_cs: usize,
            r: *const f32, out: *mut f32,
            k: usize, n: usize, accumulate: bool,
        ) {
            let mut j = 0;
            while j + 8 <= n {
                unsafe { block::<R, 2>(l, l_rs, l_cs, r.add(j), out.add(j), k, n, accumulate) };
                j += 8;
            }
            if j + 4 <= n {
                unsafe { block::<R, 1>(l, l_rs, l_cs, r.add(j), out.add(j), k, n, accumulate) };
                j += 4;
            }
            while j < n {
                for row in 0..R {
                    let mut acc = 0.0f32;
                    for p in 0..k {
                        acc += unsafe { *l.add(row * l_rs + p * l_cs) * *r.add(p * n + j) };
                    }
                    let o = unsafe { &mut *out.add(row * n + j) };
                    *o = if accumulate { *o + acc } else { acc };
                }
                j += 1;
            }
        }

        /// An `R × 4V` block of the output held in `R·V` vector registers over the whole
        /// inner dimension: per step, `V` loads of the right operand's row and `R` broadcasts.
        $(#[$feature])*
        #[inline]
        unsafe fn block<const R: usize, const V: usize>(
            l: *const f32, l_rs: usize, l_cs: usize,
            r: *const f32, out: *mut f32,
            k: usize, n: usize, accumulate: bool,
        ) {
            let mut acc = [[f32x4_splat(0.0); V]; R];
            for p in 0..k {
                let mut b = [f32x4_splat(0.0); V];
                for (v, bv) in b.iter_mut().enumerate() {
                    *bv = unsafe { v128_load(r.add(p * n + 4 * v) as *const v128) };
                }
                for (row, acc_row) in acc.iter_mut().enumerate() {
                    let a = f32x4_splat(unsafe { *l.add(row * l_rs + p * l_cs) });
                    for (c, bv) in acc_row.iter_mut().zip(b.iter()) {
                        *c = $madd(a, *bv, *c);
                    }
                }
            }
            for (row, acc_row) in acc.iter().enumerate() {
                for (v, c) in acc_row.iter().enumerate() {
                    let dst = unsafe { out.add(row * n + 4 * v) } as *mut v128;
                    let value = if accumulate {
                        f32x4_add(unsafe { v128_load(dst as *const v128) }, *c)
                    } else {
                        *c
                    };
                    unsafe { v128_store(dst, value) };
                }
            }
        }
    };
}

/// Multiply, then add: SIMD128 everywhere.
#[cfg(not(feature = "relaxed-simd"))]
mod plain {
    use super::*;
    use core::arch::wasm32::f32x4_mul;
    #[inline(always)]
    fn madd(a: v128, b: v128, c: v128) -> v128 {
        f32x4_add(f32x4_mul(a, b), c)
    }
    kernels!(, madd);
}
#[cfg(not(feature = "relaxed-simd"))]
pub(super) use plain::product;

/// One fused multiply-add per lane (relaxed SIMD).
#[cfg(feature = "relaxed-simd")]
mod relaxed {
    use super::*;
    use core::arch::wasm32::f32x4_relaxed_madd;
    kernels!(#[target_feature(enable = "relaxed-simd")], f32x4_relaxed_madd);
}
#[cfg(feature = "relaxed-simd")]
pub(super) use relaxed::product;
