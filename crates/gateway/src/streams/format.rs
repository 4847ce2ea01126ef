//! What Kinesis clients see of a stream: sequence numbers as 56-digit
//! decimal strings, `shardId-000000000000`, stream ARNs, shards chosen by
//! the MD5 of the partition key, and opaque shard iterators. Pure.

use base64::Engine;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// Iterators expire after 5 minutes, as on Kinesis.
pub(crate) const ITERATOR_TTL_MS: i64 = 300_000;

/// Sequence numbers: `49` + the shard (12 digits) + the shard's counter
/// (42 digits). Fixed width, so they compare as strings in the same order
/// as the counter, and a number names its shard.
pub(crate) fn sequence_number(shard: u32, seq: u64) -> String {
    format!("49{shard:012}{seq:042}")
}

/// The shard counter of a sequence number of `shard`.
pub(crate) fn parse_sequence_number(text: &str, shard: u32) -> Option<u64> {
    if text.len() != 56 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (prefix, rest) = text.split_at(2);
    let (shard_digits, seq) = rest.split_at(12);
    (prefix == "49" && shard_digits.parse::<u32>().ok()? == shard)
        .then(|| seq.parse().ok())
        .flatten()
}

/// `shardId-000000000000`.
pub fn shard_id(shard: u32) -> String {
    format!("shardId-{shard:012}")
}

pub(crate) fn parse_shard_id(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("shardId-")?;
    (digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

pub(crate) fn stream_arn(name: &str) -> String {
    format!(
        "arn:aws:kinesis:{}:{}:stream/{name}",
        rouse_pool::lambda::REGION,
        rouse_pool::lambda::ACCOUNT_ID
    )
}

/// A stream named by `StreamName` or `StreamARN` (any region and account).
pub(crate) fn stream_from_arn(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    resource.strip_prefix("stream/")
}

/// The shard a partition key's records go to: MD5 of the key as a 128-bit
/// number, over `shards` equal hash ranges.
pub(crate) fn shard_for_key(key: &str, shards: u32) -> u32 {
    shard_for_hash(
        u128::from_be_bytes(Md5::digest(key.as_bytes()).into()),
        shards,
    )
}

/// The size of each shard's hash range; `None` for one shard (all of it,
/// which is one more than `u128` holds).
fn range_width(shards: u32) -> Option<u128> {
    (u128::MAX / u128::from(shards.max(1))).checked_add(1)
}

pub(crate) fn shard_for_hash(hash: u128, shards: u32) -> u32 {
    let shards = shards.max(1);
    let Some(width) = range_width(shards) else {
        return 0;
    };
    u32::try_from(hash / width)
        .unwrap_or(shards - 1)
        .min(shards - 1)
}

/// The hash key range of a shard, as `DescribeStream` reports it.
pub(crate) fn hash_range(shard: u32, shards: u32) -> (u128, u128) {
    let shards = shards.max(1);
    let Some(width) = range_width(shards) else {
        return (0, u128::MAX);
    };
    let start = width * u128::from(shard);
    let end = if shard + 1 >= shards {
        u128::MAX
    } else {
        start + width - 1
    };
    (start, end)
}

/// A shard iterator: where a reader is, until when. Base64 of JSON, so it
/// is opaque to clients and carries everything a stateless server needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Iterator {
    #[serde(rename = "s")]
    pub stream: String,
    #[serde(rename = "h")]
    pub shard: u32,
    /// Records after this shard counter come next.
    #[serde(rename = "a")]
    pub after: u64,
    #[serde(rename = "e")]
    pub expires_at_ms: i64,
}

impl Iterator {
    pub(crate) fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    pub(crate) fn decode(token: &str) -> Option<Iterator> {
        let json = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()?;
        serde_json::from_slice(&json).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_56_digits_ordered_and_name_their_shard() {
        let a = sequence_number(3, 9);
        let b = sequence_number(3, 10);
        assert_eq!(a.len(), 56);
        assert!(a < b);
        assert_eq!(parse_sequence_number(&b, 3), Some(10));
        assert_eq!(parse_sequence_number(&b, 2), None);
        assert_eq!(parse_sequence_number("49", 3), None);
        assert_eq!(parse_sequence_number(&"x".repeat(56), 3), None);
    }

    #[test]
    fn shard_ids_round_trip() {
        assert_eq!(shard_id(1), "shardId-000000000001");
        assert_eq!(parse_shard_id("shardId-000000000001"), Some(1));
        for bad in ["shardId-1", "shard-000000000001", "shardId-00000000000x"] {
            assert_eq!(parse_shard_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn hashes_split_into_equal_ranges() {
        let cases = [
            (0, 4, 0),
            (u128::MAX / 4, 4, 0),
            (u128::MAX / 4 + 1, 4, 1),
            (u128::MAX, 4, 3),
            (u128::MAX, 1, 0),
            (u128::MAX / 2, 3, 1),
        ];
        for (hash, shards, want) in cases {
            assert_eq!(shard_for_hash(hash, shards), want, "{hash} over {shards}");
            let (lo, hi) = hash_range(want, shards);
            assert!(lo <= hash && hash <= hi);
        }
        // MD5("a") = 0cc175b9…: the first quarter of the hash space.
        assert_eq!(shard_for_key("a", 4), 0);
        // MD5("b") = 92eb5ffe…: the third quarter.
        assert_eq!(shard_for_key("b", 4), 2);
    }

    #[test]
    fn iterators_round_trip_and_garbage_does_not_parse() {
        let it = Iterator {
            stream: "s".into(),
            shard: 2,
            after: 7,
            expires_at_ms: 100,
        };
        assert_eq!(Iterator::decode(&it.encode()), Some(it));
        assert_eq!(Iterator::decode("not base64!"), None);
        assert_eq!(Iterator::decode("e30="), None);
    }

    #[test]
    fn arns_name_streams() {
        assert_eq!(stream_from_arn(&stream_arn("a.b")), Some("a.b"));
        assert_eq!(stream_from_arn("arn:aws:sqs:x:1:q"), None);
    }
}
