//! Message contents: a deterministic byte pattern per connection and round trip, and the
//! check of echoed bytes against it.
//!
//! Each message is a xorshift stream seeded from the connection's id and the round-trip number,
//! so a byte echoed from another connection, from an earlier round trip, or out of order does
//! not match.

/// The seed of round trip `round` of connection `conn` (never zero: xorshift needs a non-zero
/// state).
pub fn seed(conn: u64, round: u64) -> u64 {
    let mixed = splitmix64(conn.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ splitmix64(round));
    mixed | 1
}

/// Fills `buf` with the pattern of `seed`: the xorshift64 stream, eight bytes per step.
pub fn fill(seed: u64, buf: &mut [u8]) {
    let mut state = seed | 1;
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        state = xorshift64(state);
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        state = xorshift64(state);
        tail.copy_from_slice(&state.to_le_bytes()[..tail.len()]);
    }
}

/// What a chunk of echoed bytes says about the message in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The chunk matches; more bytes are due.
    Partial,
    /// The chunk matches and completes the message.
    Complete,
    /// The chunk differs from what was sent (or runs past its end) at byte `at` of the
    /// message.
    Mismatch {
        /// Offset in the message of the first wrong byte.
        at: usize,
    },
}

/// Checks `chunk`, echoed after `received` bytes of `expected` came back correctly.
pub fn check(expected: &[u8], received: usize, chunk: &[u8]) -> Check {
    let want = expected.get(received..).unwrap_or_default();
    let common = want.len().min(chunk.len());
    if chunk[..common] != want[..common] {
        let at = chunk.iter().zip(want).position(|(a, b)| a != b);
        return Check::Mismatch {
            at: received + at.unwrap_or(common),
        };
    }
    if chunk.len() > want.len() {
        // More bytes than were sent: stale or duplicated data.
        Check::Mismatch { at: expected.len() }
    } else if chunk.len() == want.len() {
        Check::Complete
    } else {
        Check::Partial
    }
}

fn xorshift64(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(conn: u64, round: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        fill(seed(conn, round), &mut buf);
        buf
    }

    #[test]
    fn deterministic() {
        assert_eq!(message(3, 7, 100), message(3, 7, 100));
        // A shorter message is a prefix of a longer one with the same seed.
        assert_eq!(message(3, 7, 13)[..], message(3, 7, 100)[..13]);
    }

    #[test]
    fn varies_per_connection_and_round() {
        let base = message(1, 1, 64);
        assert_ne!(base, message(2, 1, 64));
        assert_ne!(base, message(1, 2, 64));
        assert_ne!(
            message(0, 0, 64),
            vec![0; 64],
            "a zero seed must not give zeros"
        );
        // Every byte value shows up in a long enough message: not a constant fill.
        let long = message(5, 9, 64 * 1024);
        let mut seen = [false; 256];
        long.iter().for_each(|&b| seen[usize::from(b)] = true);
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn odd_lengths() {
        for len in [0, 1, 7, 8, 9, 15, 17] {
            assert_eq!(message(4, 4, len).len(), len);
        }
    }

    #[test]
    fn accepts_correct_bytes_in_any_chunking() {
        let msg = message(9, 3, 1000);
        assert_eq!(check(&msg, 0, &msg), Check::Complete);
        let mut received = 0;
        for chunk in msg.chunks(333) {
            let want = if received + chunk.len() == msg.len() {
                Check::Complete
            } else {
                Check::Partial
            };
            assert_eq!(check(&msg, received, chunk), want);
            received += chunk.len();
        }
    }

    #[test]
    fn finds_a_flipped_byte() {
        let msg = message(9, 3, 1000);
        let mut bad = msg.clone();
        bad[600] ^= 0x01;
        assert_eq!(check(&msg, 0, &bad), Check::Mismatch { at: 600 });
        assert_eq!(check(&msg, 500, &bad[500..]), Check::Mismatch { at: 600 });
        assert_eq!(check(&msg, 0, &bad[..500]), Check::Partial);
    }

    #[test]
    fn finds_stale_misordered_and_extra_bytes() {
        let msg = message(9, 3, 64);
        let previous = message(9, 2, 64);
        assert!(matches!(check(&msg, 0, &previous), Check::Mismatch { .. }));
        let other_conn = message(8, 3, 64);
        assert!(matches!(
            check(&msg, 0, &other_conn),
            Check::Mismatch { .. }
        ));
        let mut swapped = msg.clone();
        swapped[..32].copy_from_slice(&msg[32..]);
        swapped[32..].copy_from_slice(&msg[..32]);
        assert!(matches!(check(&msg, 0, &swapped), Check::Mismatch { .. }));
        let mut extra = msg.clone();
        extra.push(0);
        assert_eq!(check(&msg, 0, &extra), Check::Mismatch { at: 64 });
        assert_eq!(check(&msg, 64, b"x"), Check::Mismatch { at: 64 });
    }
}
