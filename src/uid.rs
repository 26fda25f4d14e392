//! Public ids for stored entities: time-ordered 128-bit values in the UUID version 7
//! layout (48 bits of milliseconds, then 74 other bits), written as the usual
//! hyphenated hex. Time order keeps index inserts local. Within one process the ids
//! are also strictly increasing (RFC 9562, 6.2 method 2): an id in the same
//! millisecond as the previous one (or earlier, when the clock steps back) is the
//! previous one plus a small random step, so an import that stamps a million rows
//! with one moment appends to the uid index instead of inserting at random. The
//! random parts come from the process's hash keys, which std seeds from the
//! operating system.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

/// The last id given out: its milliseconds and its 74 counter/random bits.
static LAST: Mutex<(u64, u128)> = Mutex::new((0, 0));

const TAIL_BITS: u32 = 74;

/// A new id for the time `unix_ms`.
pub fn new(unix_ms: i64) -> String {
    let (a, b) = random_pair();
    let ms = (unix_ms.max(0) as u64) & 0xffff_ffff_ffff;
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (ms, tail) = if ms > last.0 {
        // A fresh millisecond: random, with the top bit clear so that about 2^73
        // increments fit before the millisecond would have to advance.
        let r = ((u128::from(a) << 64) | u128::from(b)) & ((1u128 << (TAIL_BITS - 1)) - 1);
        (ms, r)
    } else {
        let step = 1 + u128::from(b & 0xffff_ffff);
        match last
            .1
            .checked_add(step)
            .filter(|t| *t < (1u128 << TAIL_BITS))
        {
            Some(t) => (last.0, t),
            // Out of room in this millisecond (never in practice): borrow the next.
            None => (last.0 + 1, u128::from(a) & ((1u128 << (TAIL_BITS - 1)) - 1)),
        }
    };
    *last = (ms, tail);
    drop(last);
    // 12 bits of the tail after the version nibble, then the variant, then 62 bits.
    let hi: u64 = (ms << 16) | 0x7000 | ((tail >> 62) as u64 & 0x0fff);
    let lo: u64 = (tail as u64 & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// Two random words, different at every call.
fn random_pair() -> (u64, u64) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = SEED.get_or_init(RandomState::new);
    let mut h = seed.build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let a = h.finish();
    h.write_u64(a);
    (a, h.finish())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_time_ordered_and_version_7() {
        let a = super::new(1_700_000_000_000);
        let b = super::new(1_700_000_000_001);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "variant: {a}");
        assert!(a < b);
    }

    #[test]
    fn ids_increase_within_one_millisecond_and_when_the_clock_steps_back() {
        let mut prev = super::new(1_800_000_000_000);
        for i in 0..10_000 {
            let at = if i % 100 == 0 {
                1_700_000_000_000
            } else {
                1_800_000_000_000
            };
            let id = super::new(at);
            assert!(id > prev, "{id} after {prev}");
            prev = id;
        }
    }
}
