//! The Kinesis operations over the stream store: parse the JSON 1.1
//! request, call the store, answer in Kinesis's shapes, with time as a
//! parameter.

use base64::Engine;
use rouse_store::streams::{NewRecord, StreamInfo, DEFAULT_RETENTION_HOURS};
use rouse_store::{Store, StoreError};
use serde_json::{json, Value};

use super::format::{self, Iterator, ITERATOR_TTL_MS};

/// Largest record, as on Kinesis (1 MiB of data).
const MAX_DATA: usize = 1024 * 1024;
const MAX_PUT_RECORDS: usize = 500;
const MAX_GET_RECORDS: usize = 10_000;
/// Shards per stream rouse accepts (one poller task per shard per mapping).
const MAX_SHARDS: u64 = 64;

/// An error as Kinesis reports it: 400, `{"__type", "message"}`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub code: &'static str,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError {
        code: "InvalidArgumentException",
        message: message.into(),
    }
}

fn not_found(stream: &str) -> ApiError {
    ApiError {
        code: "ResourceNotFoundException",
        message: format!(
            "Stream {stream} under account {} not found.",
            rouse_pool::lambda::ACCOUNT_ID
        ),
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::UnknownStream(name) => not_found(&name),
            other => {
                tracing::error!(err = %other, "store error in the Kinesis API");
                ApiError {
                    code: "InternalFailure",
                    message: "Internal service failure.".into(),
                }
            }
        }
    }
}

type Answer = Result<Value, ApiError>;

/// What one call did, beyond its answer: the stream it appended to (so
/// its consumers are woken).
pub(crate) struct Done {
    pub answer: Answer,
    pub appended_to: Option<String>,
}

pub(crate) async fn execute(store: &Store, op: &str, body: &[u8], now_ms: i64) -> Done {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ if body.is_empty() => json!({}),
        _ => return done(Err(invalid("The request body is not a JSON object."))),
    };
    let answer = match op {
        "CreateStream" => create_stream(store, &req, now_ms).await,
        "DescribeStream" => describe(store, &req, true).await,
        "DescribeStreamSummary" => describe(store, &req, false).await,
        "ListStreams" => list_streams(store, &req).await,
        "ListShards" => list_shards(store, &req).await,
        "PutRecord" | "PutRecords" => {
            let stream = stream_name(&req).ok().map(str::to_string);
            let answer = if op == "PutRecord" {
                put_record(store, &req, now_ms).await
            } else {
                put_records(store, &req, now_ms).await
            };
            let appended_to = stream.filter(|_| answer.is_ok());
            return Done {
                answer,
                appended_to,
            };
        }
        "GetShardIterator" => get_shard_iterator(store, &req, now_ms).await,
        "GetRecords" => get_records(store, &req, now_ms).await,
        other => Err(ApiError {
            code: "UnknownOperationException",
            message: format!("Operation {other} is not supported by rouse."),
        }),
    };
    done(answer)
}

fn done(answer: Answer) -> Done {
    Done {
        answer,
        appended_to: None,
    }
}

fn str_field<'a>(req: &'a Value, field: &str) -> Option<&'a str> {
    req.get(field).and_then(Value::as_str)
}

/// `StreamName`, or the name in `StreamARN`.
fn stream_name(req: &Value) -> Result<&str, ApiError> {
    if let Some(name) = str_field(req, "StreamName") {
        return Ok(name);
    }
    if let Some(arn) = str_field(req, "StreamARN") {
        return format::stream_from_arn(arn)
            .ok_or_else(|| invalid(format!("Invalid StreamARN {arn}")));
    }
    Err(invalid("Either StreamName or StreamARN is required."))
}

async fn existing(store: &Store, req: &Value) -> Result<StreamInfo, ApiError> {
    let name = stream_name(req)?;
    store.stream(name).await?.ok_or_else(|| not_found(name))
}

async fn create_stream(store: &Store, req: &Value, now_ms: i64) -> Answer {
    let name = str_field(req, "StreamName").ok_or_else(|| invalid("StreamName is required."))?;
    if !rouse_store::streams::valid_stream_name(name) {
        return Err(invalid(format!(
            "Invalid stream name {name:?}: 1 to 128 letters, digits, _, - or ."
        )));
    }
    let shards = match req.get("ShardCount") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_SHARDS).contains(n))
            .ok_or_else(|| invalid(format!("ShardCount must be between 1 and {MAX_SHARDS}.")))?,
    };
    let shards = u32::try_from(shards).unwrap_or(1);
    if !store
        .create_stream(name, shards, DEFAULT_RETENTION_HOURS, now_ms)
        .await?
    {
        return Err(ApiError {
            code: "ResourceInUseException",
            message: format!(
                "Stream {name} under account {} already exists.",
                rouse_pool::lambda::ACCOUNT_ID
            ),
        });
    }
    Ok(json!({}))
}

async fn shard_list(store: &Store, info: &StreamInfo) -> Result<Vec<Value>, ApiError> {
    let stats = store.shard_stats(&info.name).await?;
    Ok(stats
        .iter()
        .map(|s| {
            let (lo, hi) = format::hash_range(s.shard, info.shards);
            json!({
                "ShardId": format::shard_id(s.shard),
                "HashKeyRange": {"StartingHashKey": lo.to_string(), "EndingHashKey": hi.to_string()},
                "SequenceNumberRange": {"StartingSequenceNumber": format::sequence_number(s.shard, 0)},
            })
        })
        .collect())
}

async fn describe(store: &Store, req: &Value, with_shards: bool) -> Answer {
    let info = existing(store, req).await?;
    let mut doc = json!({
        "StreamName": info.name,
        "StreamARN": format::stream_arn(&info.name),
        "StreamStatus": "ACTIVE",
        "StreamModeDetails": {"StreamMode": "PROVISIONED"},
        "RetentionPeriodHours": info.retention_hours,
        "StreamCreationTimestamp": rouse_events::kinesis::epoch_seconds(info.created_at_ms),
        "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
        "EncryptionType": "NONE",
    });
    if with_shards {
        doc["Shards"] = Value::Array(shard_list(store, &info).await?);
        doc["HasMoreShards"] = json!(false);
        Ok(json!({ "StreamDescription": doc }))
    } else {
        doc["OpenShardCount"] = json!(info.shards);
        doc["ConsumerCount"] = json!(0);
        Ok(json!({ "StreamDescriptionSummary": doc }))
    }
}

async fn list_streams(store: &Store, req: &Value) -> Answer {
    let limit = req
        .get("Limit")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 100);
    let after = str_field(req, "ExclusiveStartStreamName")
        .or_else(|| str_field(req, "NextToken"))
        .unwrap_or("");
    let all: Vec<StreamInfo> = store
        .list_streams()
        .await?
        .into_iter()
        .filter(|s| s.name.as_str() > after)
        .collect();
    let limit = usize::try_from(limit).unwrap_or(100);
    let page = &all[..all.len().min(limit)];
    let more = all.len() > page.len();
    let mut doc = json!({
        "StreamNames": page.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "HasMoreStreams": more,
        "StreamSummaries": page.iter().map(|s| json!({
            "StreamName": s.name,
            "StreamARN": format::stream_arn(&s.name),
            "StreamStatus": "ACTIVE",
            "StreamModeDetails": {"StreamMode": "PROVISIONED"},
            "StreamCreationTimestamp": rouse_events::kinesis::epoch_seconds(s.created_at_ms),
        })).collect::<Vec<_>>(),
    });
    if let (true, Some(last)) = (more, page.last()) {
        doc["NextToken"] = json!(last.name);
    }
    Ok(doc)
}

async fn list_shards(store: &Store, req: &Value) -> Answer {
    // A NextToken is never handed out (all shards fit one page), so one
    // coming back is a stream name's stand-in.
    let info = match str_field(req, "NextToken") {
        Some(token) => store
            .stream(token)
            .await?
            .ok_or_else(|| invalid("Invalid NextToken."))?,
        None => existing(store, req).await?,
    };
    Ok(json!({ "Shards": shard_list(store, &info).await? }))
}

/// One entry of `PutRecord(s)`: its shard and the record to append.
fn record_of(info: &StreamInfo, entry: &Value) -> Result<NewRecord, ApiError> {
    let key =
        str_field(entry, "PartitionKey").ok_or_else(|| invalid("PartitionKey is required."))?;
    if key.is_empty() || key.chars().count() > 256 {
        return Err(invalid("PartitionKey must be 1 to 256 characters."));
    }
    let data = str_field(entry, "Data").ok_or_else(|| invalid("Data is required."))?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| invalid("Data is not valid base64."))?;
    if data.len() > MAX_DATA {
        return Err(invalid(format!("Data must be at most {MAX_DATA} bytes.")));
    }
    let shard = match str_field(entry, "ExplicitHashKey") {
        Some(hash) => {
            let hash: u128 = hash
                .parse()
                .map_err(|_| invalid("ExplicitHashKey must be a 128-bit decimal number."))?;
            format::shard_for_hash(hash, info.shards)
        }
        None => format::shard_for_key(key, info.shards),
    };
    Ok(NewRecord {
        shard,
        partition_key: key.to_string(),
        data,
    })
}

async fn put_record(store: &Store, req: &Value, now_ms: i64) -> Answer {
    let info = existing(store, req).await?;
    let record = record_of(&info, req)?;
    let shard = record.shard;
    let seqs = store.append(&info.name, &[record], now_ms).await?;
    let seq = seqs.first().copied().unwrap_or(0);
    Ok(json!({
        "ShardId": format::shard_id(shard),
        "SequenceNumber": format::sequence_number(shard, seq),
        "EncryptionType": "NONE",
    }))
}

async fn put_records(store: &Store, req: &Value, now_ms: i64) -> Answer {
    let info = existing(store, req).await?;
    let entries = req
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("Records is required."))?;
    if entries.is_empty() || entries.len() > MAX_PUT_RECORDS {
        return Err(invalid(format!(
            "Records must hold 1 to {MAX_PUT_RECORDS} entries."
        )));
    }
    let records = entries
        .iter()
        .map(|e| record_of(&info, e))
        .collect::<Result<Vec<_>, _>>()?;
    // One transaction: all of them are stored, or none (an error answers
    // the whole call, so FailedRecordCount is always 0).
    let seqs = store.append(&info.name, &records, now_ms).await?;
    let results: Vec<Value> = records
        .iter()
        .zip(&seqs)
        .map(|(r, seq)| {
            json!({
                "ShardId": format::shard_id(r.shard),
                "SequenceNumber": format::sequence_number(r.shard, *seq),
            })
        })
        .collect();
    Ok(json!({ "FailedRecordCount": 0, "Records": results, "EncryptionType": "NONE" }))
}

fn shard_of(info: &StreamInfo, req: &Value) -> Result<u32, ApiError> {
    let text = str_field(req, "ShardId").ok_or_else(|| invalid("ShardId is required."))?;
    format::parse_shard_id(text)
        .filter(|s| *s < info.shards)
        .ok_or_else(|| ApiError {
            code: "ResourceNotFoundException",
            message: format!("Shard {text} in stream {} does not exist.", info.name),
        })
}

async fn get_shard_iterator(store: &Store, req: &Value, now_ms: i64) -> Answer {
    let info = existing(store, req).await?;
    let shard = shard_of(&info, req)?;
    let kind = str_field(req, "ShardIteratorType").unwrap_or("");
    let at_seq = |offset: u64| -> Result<u64, ApiError> {
        let text = str_field(req, "StartingSequenceNumber")
            .ok_or_else(|| invalid(format!("StartingSequenceNumber is required for {kind}.")))?;
        let seq = format::parse_sequence_number(text, shard).ok_or_else(|| {
            invalid(format!(
                "StartingSequenceNumber {text} used in GetShardIterator on shard {} is invalid.",
                format::shard_id(shard)
            ))
        })?;
        Ok((seq + offset).saturating_sub(1))
    };
    let after = match kind {
        "TRIM_HORIZON" => 0,
        "LATEST" => store
            .shard_stats(&info.name).await?
            .iter()
            .find(|s| s.shard == shard)
            .map_or(0, |s| s.last_seq),
        "AT_SEQUENCE_NUMBER" => at_seq(0)?,
        "AFTER_SEQUENCE_NUMBER" => at_seq(1)?,
        "AT_TIMESTAMP" => {
            let secs = req
                .get("Timestamp")
                .and_then(Value::as_f64)
                .ok_or_else(|| invalid("Timestamp is required for AT_TIMESTAMP."))?;
            store.seq_before_time(&info.name, shard, (secs * 1000.0) as i64).await?
        }
        other => {
            return Err(invalid(format!(
                "Invalid ShardIteratorType {other:?}: TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER or AT_TIMESTAMP."
            )))
        }
    };
    let it = Iterator {
        stream: info.name,
        shard,
        after,
        expires_at_ms: now_ms + ITERATOR_TTL_MS,
    };
    Ok(json!({ "ShardIterator": it.encode() }))
}

async fn get_records(store: &Store, req: &Value, now_ms: i64) -> Answer {
    let token =
        str_field(req, "ShardIterator").ok_or_else(|| invalid("ShardIterator is required."))?;
    let it = Iterator::decode(token).ok_or_else(|| invalid("Invalid ShardIterator."))?;
    if it.expires_at_ms <= now_ms {
        return Err(ApiError {
            code: "ExpiredIteratorException",
            message: format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {ITERATOR_TTL_MS} milliseconds.",
                it.expires_at_ms - ITERATOR_TTL_MS, now_ms
            ),
        });
    }
    let limit = req
        .get("Limit")
        .and_then(Value::as_u64)
        .map_or(MAX_GET_RECORDS, |n| {
            usize::try_from(n).unwrap_or(MAX_GET_RECORDS)
        })
        .clamp(1, MAX_GET_RECORDS);
    if store.stream(&it.stream).await?.is_none() {
        return Err(not_found(&it.stream));
    }
    let records = store.read(&it.stream, it.shard, it.after, limit).await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let behind = match records.last() {
        Some(last) if records.len() == limit => now_ms.saturating_sub(last.arrived_at_ms),
        _ => 0,
    };
    let next = Iterator {
        after: records.last().map_or(it.after, |r| r.seq),
        expires_at_ms: now_ms + ITERATOR_TTL_MS,
        ..it
    };
    let out: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "SequenceNumber": format::sequence_number(r.shard, r.seq),
                "ApproximateArrivalTimestamp": rouse_events::kinesis::epoch_seconds(r.arrived_at_ms),
                "Data": b64.encode(&r.data),
                "PartitionKey": r.partition_key,
            })
        })
        .collect();
    Ok(json!({
        "Records": out,
        "NextShardIterator": next.encode(),
        "MillisBehindLatest": behind,
    }))
}
