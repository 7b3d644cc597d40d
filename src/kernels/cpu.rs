//! The one CPU-feature check: what the running CPU offers the kernels,
//! detected once per process and then carried as a `Copy` token.

use std::sync::OnceLock;

/// The instruction sets the kernels may use on this CPU, detected once
/// (the first call of [`Cpu::get`]) and cached for the process.
///
/// Every kernel entry point dispatches on this token instead of asking the
/// CPU again, so one process takes one kernel path throughout (see the
/// crate's notes on determinism).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    avx512f: bool,
    avx2_fma: bool,
}

static CPU: OnceLock<Cpu> = OnceLock::new();

impl Cpu {
    /// The running CPU's features (detected on the first call).
    #[must_use]
    pub fn get() -> Cpu {
        *CPU.get_or_init(Cpu::detect)
    }

    fn detect() -> Cpu {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            Cpu {
                avx512f: has!("avx512f"),
                avx2_fma: has!("avx2") && has!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Cpu {
            avx512f: false,
            avx2_fma: false,
        }
    }

    /// AVX-512F is available.
    #[must_use]
    pub fn avx512f(self) -> bool {
        self.avx512f
    }

    /// AVX2 and FMA are both available.
    #[must_use]
    pub fn avx2_fma(self) -> bool {
        self.avx2_fma
    }
}
