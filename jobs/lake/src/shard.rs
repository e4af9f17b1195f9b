//! Shards and buckets: rows carry a fixed hash bucket (of the customer id in
//! silver and gold, of the landing object's path in bronze), and shard `I` of
//! `N` owns the buckets `b` with `b mod N = I`. The bucket of a row never
//! depends on `N`, so the shard count can change between runs without moving
//! data, and two shards never write the same partition.

use crate::error::{LakeError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// One process owning every bucket.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// `I/N`, e.g. `2/4`.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = |reason: &str| LakeError::Shard { text: text.to_string(), reason: reason.to_string() };
        let (index, count) = text.trim().split_once('/').ok_or_else(|| bad("write it I/N, e.g. 0/4"))?;
        let index: u32 = index.trim().parse().map_err(|_| bad("I is not a number"))?;
        let count: u32 = count.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 || index >= count {
            return Err(bad("need 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }

    /// Refuses more shards than buckets (a shard would own nothing).
    pub fn check(self, buckets: u32) -> Result<Shard> {
        if self.count > buckets {
            return Err(LakeError::Shard { text: self.to_string(), reason: format!("N is larger than the lake's {buckets} buckets") });
        }
        Ok(self)
    }

    pub fn owns(self, bucket: u32) -> bool {
        bucket % self.count == self.index
    }

    /// The buckets this shard owns, in order.
    pub fn buckets(self, total: u32) -> Vec<u32> {
        (self.index..total).step_by(self.count as usize).collect()
    }

    pub fn is_all(self) -> bool {
        self.count == 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a over the bytes, finished with the murmur3 64-bit mixer so that the
/// low bits (what `mod buckets` keeps) are well spread. Stable forever: the
/// buckets of stored rows depend on it.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    mix(fnv(FNV_OFFSET, bytes))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a's step over more bytes, continuing from `h`.
#[inline(always)]
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The murmur3 64-bit finalizer.
#[inline(always)]
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The bucket of a key: `stable_hash(key) mod buckets`.
pub fn bucket_of(key: &str, buckets: u32) -> u32 {
    (stable_hash(key.as_bytes()) % buckets as u64) as u32
}

/// A 64-bit hash of several text parts (length-prefixed, so `("ab", "c")`
/// and `("a", "bc")` differ): compact join keys for lookups.
pub fn key_hash(parts: &[&str]) -> i64 {
    // `stable_hash` of the parts' concatenation, fed part by part: it runs
    // for every event and every stored row a lookup checks, so it does not
    // assemble the bytes in a fresh buffer first.
    let h = parts.iter().fold(FNV_OFFSET, |h, part| fnv(fnv(h, &(part.len() as u32).to_le_bytes()), part.as_bytes()));
    mix(h) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_buckets_for_any_count() {
        for count in [1, 3, 4, 64] {
            let mut all: Vec<u32> = (0..count).flat_map(|i| Shard { index: i, count }.buckets(64)).collect();
            all.sort();
            assert_eq!(all, (0..64).collect::<Vec<_>>(), "N = {count}");
        }
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["4/4", "1", "a/2", "0/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert!(Shard::parse("0/65").unwrap().check(64).is_err());
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        // Pinned: stored rows depend on these values.
        // docs/tables.md gives the same figures, from its own description.
        assert_eq!(stable_hash(b"CUST_0000001"), 5_727_949_005_695_884_782);
        assert_eq!((bucket_of("CUST_0000001", 64), bucket_of("CUST_0000042", 64)), (46, 4));
        let mut counts = [0u32; 64];
        for i in 0..64_000 {
            counts[bucket_of(&format!("CUST_{i:07}"), 64) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
        assert_ne!(key_hash(&["ab", "c"]), key_hash(&["a", "bc"]));
        // Pinned too (stored as event_key and session_hash): the hash of the
        // length-prefixed concatenation.
        let joined = [&2u32.to_le_bytes()[..], b"ab", &1u32.to_le_bytes(), b"c"].concat();
        assert_eq!(key_hash(&["ab", "c"]), stable_hash(&joined) as i64);
        assert_eq!(key_hash(&["CUST_0000001", "evt-1"]), 4_880_873_284_246_853_366);
    }
}
