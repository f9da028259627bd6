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
