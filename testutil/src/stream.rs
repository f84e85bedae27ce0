//! Verifiable bytes: a pseudo-random stream named by a seed, which can be regenerated from any
//! offset, so that a receiver checks what it gets without keeping a copy.

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Fills `buf` with bytes `offset..` of the pseudo-random stream named by `seed`.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let word = splitmix64(seed ^ (pos / 8).wrapping_mul(0x2545_f491_4f6c_dd1d)).to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

/// `len` bytes of the stream named by `seed`.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill(seed, 0, &mut v);
    v
}

/// A fresh random seed (printed, so that a failure can be replayed).
pub fn seed() -> u64 {
    let seed = rand::random();
    eprintln!("seed {seed:#x}");
    seed
}

/// Checks that `got` is bytes `offset..` of the stream named by `seed`.
///
/// # Panics
/// At the first wrong byte, naming its stream offset.
#[track_caller]
pub(crate) fn check_stream(seed: u64, offset: u64, got: &[u8], what: &str) {
    let mut want = vec![0; got.len()];
    fill(seed, offset, &mut want);
    if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
        panic!("{what}: wrong byte at stream offset {}", offset + at as u64);
    }
}

/// Index of the first byte where `got` differs from `want` (or where the shorter ends), for
/// failure messages.
fn first_difference(got: &[u8], want: &[u8]) -> Option<usize> {
    got.iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .or_else(|| (got.len() != want.len()).then(|| got.len().min(want.len())))
}

/// Asserts that `got` is `want`, naming the first differing offset rather than dumping bytes.
#[track_caller]
pub fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if let Some(at) = first_difference(got, want) {
        panic!(
            "{what}: got {} bytes, want {}; first difference at offset {at}",
            got.len(),
            want.len()
        );
    }
}
