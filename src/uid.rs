//! Public ids for stored entities: time-ordered 128-bit values in the UUID version 7
//! layout (48 bits of milliseconds, then random bits), written as the usual hyphenated
//! hex. Time order keeps index inserts local; the random part comes from the
//! process's hash keys, which std seeds from the operating system.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A new id for the time `unix_ms`.
pub fn new(unix_ms: i64) -> String {
    static SEED: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = SEED.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = seed.build_hasher();
    h.write_u64(n);
    let a = h.finish();
    h.write_u64(a);
    let b = h.finish();
    let ms = (unix_ms.max(0) as u64) & 0xffff_ffff_ffff;
    let hi: u64 = (ms << 16) | 0x7000 | (a & 0x0fff);
    let lo: u64 = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_time_ordered_and_version_7() {
        let a = super::new(1_700_000_000_000);
        let b = super::new(1_700_000_000_001);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!(a < b);
        let many: std::collections::HashSet<String> =
            (0..10_000).map(|_| super::new(1_700_000_000_000)).collect();
        assert_eq!(many.len(), 10_000);
    }
}
