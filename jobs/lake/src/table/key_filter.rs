//! Per-file bloom filters of a lookup key, kept in the file's add action:
//! a lookup of a few keys over many small files (silver's duplicate search
//! over a week, gold's sessions of a returning viewer) skips, from the log
//! alone, the files that cannot hold them, instead of opening every one.
//!
//! The filter is stored in the add's `tags` under [`TAG`] as `v1:` and the
//! base64 of one byte (the number of probes) followed by the bit array as
//! little-endian 64-bit words. It is part of the lake's format: lakes keep
//! it for years, which is why it is written here rather than taken from a
//! crate whose encoding may change. Files without the tag (older files,
//! files of more than [`MAX_KEYS`] rows) are simply always read.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use deltalake::arrow::array::{AsArray, RecordBatch};
use deltalake::arrow::datatypes::{DataType, Int64Type};

use crate::shard::key_hash;

/// The add-action tag holding a file's key filter.
pub const TAG: &str = "streamreel.keys";
/// Files of more keys get no filter: the filter lives in the log, which
/// every run reads, so it stays small (about 20 KiB at most); such large
/// files are few and are read as they always were.
pub const MAX_KEYS: usize = 16_384;
/// With seven probes, about a 1 % false-positive rate.
const BITS_PER_KEY: usize = 10;
const PROBES: u8 = 7;
const VERSION: &str = "v1:";

/// A bloom filter of `u64` keys.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFilter {
    words: Vec<u64>,
    probes: u8,
}

impl KeyFilter {
    pub fn build(keys: &[u64]) -> KeyFilter {
        let bits = (keys.len() * BITS_PER_KEY).max(64);
        let mut words = vec![0u64; bits.div_ceil(64)];
        for &key in keys {
            for bit in positions(words.len(), PROBES, key) {
                words[bit / 64] |= 1 << (bit % 64);
            }
        }
        KeyFilter { words, probes: PROBES }
    }

    /// False only when `key` is certainly not in the file.
    pub fn may_hold(&self, key: u64) -> bool {
        positions(self.words.len(), self.probes, key).all(|bit| self.words[bit / 64] & (1 << (bit % 64)) != 0)
    }

    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(1 + self.words.len() * 8);
        bytes.push(self.probes);
        bytes.extend(self.words.iter().flat_map(|w| w.to_le_bytes()));
        format!("{VERSION}{}", STANDARD.encode(bytes))
    }

    /// `None` for a text this version does not read (the file is then read).
    pub fn decode(text: &str) -> Option<KeyFilter> {
        let bytes = STANDARD.decode(text.strip_prefix(VERSION)?).ok()?;
        let (&probes, words) = bytes.split_first()?;
        if words.is_empty() || words.len() % 8 != 0 || probes == 0 {
            return None;
        }
        Some(KeyFilter { words: words.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes"))).collect(), probes })
    }
}

/// The bits a key sets in a filter of `words` words: double hashing over
/// the mixed key (keys are hashes already; mixing keeps the probes
/// independent of how they were made).
fn positions(words: usize, probes: u8, key: u64) -> impl Iterator<Item = usize> {
    let mixed = mix(key);
    let (h1, h2) = (mixed & 0xffff_ffff, (mixed >> 32) | 1);
    let bits = (words * 64) as u64;
    (0..u64::from(probes)).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % bits) as usize)
}

/// splitmix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The filter key of one row, from the values of the spec's key columns: a
/// single 64-bit integer column is its own key; text columns are hashed
/// together with [`key_hash`]. Lookups compute their keys the same way.
pub fn text_key(parts: &[&str]) -> u64 {
    key_hash(parts) as u64
}

pub fn int_key(value: i64) -> u64 {
    value as u64
}

/// The filter keys of every row of `batch`; `None` when a key column is
/// missing or of another type.
pub fn keys_of(columns: &[&str], batch: &RecordBatch) -> Option<Vec<u64>> {
    let arrays = columns.iter().map(|c| batch.column_by_name(c)).collect::<Option<Vec<_>>>()?;
    match arrays.as_slice() {
        [one] if one.data_type() == &DataType::Int64 => Some(one.as_primitive::<Int64Type>().values().iter().map(|v| int_key(*v)).collect()),
        _ if arrays.iter().all(|a| a.data_type() == &DataType::Utf8) => {
            let texts: Vec<_> = arrays.iter().map(|a| a.as_string::<i32>()).collect();
            let mut parts = Vec::with_capacity(texts.len());
            Some(
                (0..batch.num_rows())
                    .map(|row| {
                        parts.clear();
                        parts.extend(texts.iter().map(|t| t.value(row)));
                        text_key(&parts)
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_every_key_it_was_built_from_and_few_others() {
        let keys: Vec<u64> = (0..5_000u64).map(|i| text_key(&["CUST", &i.to_string()])).collect();
        let filter = KeyFilter::decode(&KeyFilter::build(&keys).encode()).expect("its own encoding");
        assert!(keys.iter().all(|k| filter.may_hold(*k)));
        let false_positives = (5_000..105_000u64).filter(|i| filter.may_hold(text_key(&["CUST", &i.to_string()]))).count();
        assert!(false_positives < 2_000, "{false_positives} of 100000 absent keys pass");
        assert!(false_positives > 0, "a bloom filter of 10 bits a key is never exact");
    }

    #[test]
    fn small_and_foreign_filters() {
        let empty = KeyFilter::build(&[]);
        assert!(!empty.may_hold(42));
        assert!(KeyFilter::build(&[42]).may_hold(42));
        for bad in ["", "v1:", "v2:AQAAAAAAAAAA", "v1:not base64!", "v1:AA=="] {
            assert_eq!(KeyFilter::decode(bad), None, "{bad}");
        }
    }
}
