//! Test support (the `test-support` feature): texts the tests of several
//! crates need alike. Not part of the API a client or server uses.

/// `len` bytes of printable ASCII that does not compress: Loro compresses
/// its snapshots, so a repeated pattern would hide a history's growth.
/// The same `seed` gives the same text (xorshift).
pub fn noise(len: usize, seed: u64) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b' ' + (x % 94) as u8)
        })
        .collect()
}

thread_local! {
    static EXPORTS_FAIL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes this thread's exports of snapshots, compactions and outgoing
/// updates fail until the guard is dropped: Loro has no input that makes an
/// export fail, and a failed export must lose nothing (issue 12).
#[must_use = "exports fail only while the guard lives"]
pub fn failing_exports() -> FailingExports {
    EXPORTS_FAIL.with(|f| f.set(true));
    FailingExports(std::marker::PhantomData)
}

/// While it lives, this thread's exports fail ([`failing_exports`]).
#[derive(Debug)]
pub struct FailingExports(std::marker::PhantomData<*const ()>);

impl Drop for FailingExports {
    fn drop(&mut self) {
        EXPORTS_FAIL.with(|f| f.set(false));
    }
}

pub(crate) fn exports_fail() -> bool {
    EXPORTS_FAIL.with(std::cell::Cell::get)
}
