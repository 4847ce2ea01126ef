//! The resolved function spec: what a manifest means once defaults, stages and
//! variables are applied. This is what the CLI sends to the server on deploy and
//! what the store keeps per version, so it is plain serde data with no YAML left
//! in it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::RoutePolicy;

/// One deploy: every function of one service at one stage, sharing one artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploySpec {
    pub service: String,
    pub stage: String,
    pub functions: Vec<FunctionSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSpec {
    /// Full name, unique on a server: `{service}-{stage}-{function}`.
    pub name: String,
    /// The key under `functions:` in the manifest.
    pub short_name: String,
    pub kind: FunctionKind,
    /// Provider environment merged with the function's own (function wins).
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// MB. Lambda's default is 128.
    pub memory_size: u32,
    /// Execution budget of one request, in seconds.
    pub timeout_secs: f64,
    /// Requests one instance may serve at once (always 1 for lambda functions).
    pub concurrency: u32,
    pub scaling: Scaling,
    #[serde(default)]
    pub events: Vec<Event>,
    /// How routes of this function's stage are kept apart from other stages.
    #[serde(default)]
    pub stage_routing: StageRouting,
    /// What happens to its asynchronous (`Event`) invocations.
    #[serde(default)]
    pub async_invoke: AsyncInvoke,
}

/// `maximumRetryAttempts`, `maximumEventAge` and `destinations` of a
/// function: Lambda's event invoke config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AsyncInvoke {
    /// Retries after a function error, 0 to 2.
    pub maximum_retry_attempts: u32,
    /// Seconds an event may wait (throttled, retried) before it is given
    /// up, 60 to 21600.
    pub maximum_event_age_secs: u32,
    pub on_success: Option<Destination>,
    pub on_failure: Option<Destination>,
}

pub const DEFAULT_MAXIMUM_RETRY_ATTEMPTS: u32 = 2;
pub const MAXIMUM_EVENT_AGE_SECS: std::ops::RangeInclusive<u32> = 60..=21_600;

impl Default for AsyncInvoke {
    fn default() -> Self {
        AsyncInvoke {
            maximum_retry_attempts: DEFAULT_MAXIMUM_RETRY_ATTEMPTS,
            maximum_event_age_secs: *MAXIMUM_EVENT_AGE_SECS.end(),
            on_success: None,
            on_failure: None,
        }
    }
}

/// Where the record of a finished async invocation goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Destination {
    /// Another function (its full name), invoked asynchronously.
    Function { name: String },
    /// rouse's dead-letter list (`rouse events ls`).
    Dlq,
}

/// How the `http`/`httpApi` routes of one stage are kept apart from the same
/// routes of another stage of the service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageRouting {
    /// Routes are served as declared; two stages with the same routes clash.
    #[default]
    None,
    /// Routes are served under `/{stage}/...`, as API Gateway REST stages
    /// and serverless-offline do.
    Prefix,
    /// Routes are served on the host `{stage}.{domain}` (needs `--domain`).
    Host,
}

impl StageRouting {
    pub const NAMES: [&'static str; 3] = ["prefix", "host", "none"];

    pub fn as_str(self) -> &'static str {
        match self {
            StageRouting::None => "none",
            StageRouting::Prefix => "prefix",
            StageRouting::Host => "host",
        }
    }

    pub fn parse(text: &str) -> Option<StageRouting> {
        match text {
            "none" => Some(StageRouting::None),
            "prefix" => Some(StageRouting::Prefix),
            "host" => Some(StageRouting::Host),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum FunctionKind {
    Web(WebSpec),
    Lambda(LambdaSpec),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSpec {
    /// argv; `${PORT}` and `${VAR}` from the function environment are substituted.
    pub command: Vec<String>,
    /// Fixed port the app listens on; `None` means rouse picks one and passes `PORT`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub readiness: Readiness,
    #[serde(default)]
    pub rewrite: Vec<Rewrite>,
    /// rouse binds the listening socket and passes it as fd 3 (systemd's
    /// `LISTEN_FDS`/`LISTEN_PID`); requests queue in the kernel while the
    /// app starts, so no readiness polling.
    #[serde(default)]
    pub socket_activation: bool,
    /// `network: none`: the instance gets a network namespace of its own
    /// with nothing in it, and reaches the world only through the socket
    /// rouse hands it (so it needs `socket_activation`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_network: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// HTTP GET this path and wait for a 2xx; `None` means wait for a TCP connect.
    #[serde(default)]
    pub path: Option<String>,
}

/// A regex replacement applied to the instance's own copy of a config file
/// before start. `replace` may use `${PORT}` and the function's environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rewrite {
    /// Path relative to the artifact root.
    pub file: String,
    /// Regex (Rust `regex` syntax).
    #[serde(rename = "match")]
    pub pattern: String,
    pub replace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaSpec {
    /// `provided`, `provided.al2023`, `python3.12`, `nodejs20.x`, `ruby3.3`, ...
    pub runtime: String,
    pub handler: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Missing keys take their defaults, so records stored before a key existed
// still load.
#[serde(rename_all = "camelCase", default)]
pub struct Scaling {
    /// Seconds an instance may sit without requests before it is stopped.
    pub idle_timeout_secs: f64,
    /// Seconds after which an instance is drained and replaced.
    pub max_lifetime_secs: f64,
    pub max_instances: u32,
    pub min_instances: u32,
    /// Seconds an instance may take from spawn to ready.
    pub start_timeout_secs: f64,
    /// Seconds a request may wait for a free slot before 429.
    pub queue_timeout_secs: f64,
    /// Instance starts the function may make at once: the size of its
    /// scale-out token bucket.
    pub burst: u32,
    /// Instance starts added back to the bucket per minute, continuously.
    pub burst_refill_per_minute: u32,
}

/// Lambda's scale-out rate since November 2023: up to 1,000 new execution
/// environments per function every 10 seconds, refilled continuously and
/// never banked beyond that.
pub const DEFAULT_BURST: u32 = 1000;
pub const DEFAULT_BURST_REFILL_PER_MINUTE: u32 = 6000;

impl Default for Scaling {
    fn default() -> Self {
        Scaling {
            idle_timeout_secs: 300.0,
            max_lifetime_secs: 3600.0,
            max_instances: 10,
            min_instances: 0,
            start_timeout_secs: 30.0,
            queue_timeout_secs: 30.0,
            burst: DEFAULT_BURST,
            burst_refill_per_minute: DEFAULT_BURST_REFILL_PER_MINUTE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Event {
    /// API Gateway REST (payload v1) style route.
    Http(HttpEvent),
    /// API Gateway HTTP API (payload v2) style route.
    HttpApi(HttpEvent),
    /// `rate(...)` or `cron(...)` expression, kept verbatim.
    Schedule { expression: String },
    /// An event source mapping from a stream (Kinesis-like).
    Stream(StreamEvent),
    /// An event source mapping from a queue (SQS-like).
    Sqs(SqsEvent),
}

/// An `sqs:` event: the function receives a rouse queue's messages in
/// batches (Lambda's SQS event source mapping). A batch that fails is left
/// to reappear after the queue's visibility timeout, so the queue's
/// redrive policy decides when a message goes to its dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsEvent {
    /// The rouse queue (`arn:aws:sqs:REGION:ACCOUNT:NAME` names NAME).
    pub queue: String,
    pub batch_size: u32,
    /// `maximumBatchingWindow`: seconds to gather messages before invoking
    /// with less than a full batch.
    pub batch_window_secs: u32,
    /// `functionResponseType: ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    pub enabled: bool,
    /// How to create the queue when it does not exist at deploy (an
    /// `AWS::SQS::Queue` of serverless.yml's `resources`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<QueueDeclaration>,
}

/// What serverless.yml's `resources` say about a queue.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDeclaration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_retention_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_secs: Option<u32>,
    /// `RedrivePolicy`: the dead-letter queue's name and `maxReceiveCount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_receive_count: Option<u32>,
}

/// Lambda's default batch for SQS.
pub const DEFAULT_SQS_BATCH_SIZE: u32 = 10;

/// A `stream:` event: the function consumes a rouse stream in batches,
/// per shard, from a checkpoint (Lambda's Kinesis event source mapping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamEvent {
    /// The rouse stream (`arn:aws:kinesis:…:stream/NAME` names NAME).
    pub stream: String,
    pub batch_size: u32,
    /// Seconds to gather records before invoking with less than a full batch.
    pub batch_window_secs: u32,
    pub starting_position: StartingPosition,
    /// Retries of a failing batch before it goes to `on_failure`.
    pub maximum_retry_attempts: u32,
    /// Records older than this are given up on (`None`: no limit).
    pub maximum_record_age_secs: Option<u32>,
    pub bisect_batch_on_function_error: bool,
    /// `functionResponseType: ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    pub on_failure: Option<Destination>,
    pub enabled: bool,
}

pub const DEFAULT_STREAM_BATCH_SIZE: u32 = 100;
/// Lambda retries forever by default; rouse does not, so a poison record
/// cannot stall a shard.
pub const DEFAULT_STREAM_RETRY_ATTEMPTS: u32 = 10;

/// Where a mapping without a checkpoint starts reading a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum StartingPosition {
    /// The oldest record kept.
    TrimHorizon,
    /// Records put after the mapping started.
    Latest,
    /// Records that arrived at or after this time (ms since the epoch).
    AtTimestamp { at_ms: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpEvent {
    /// Path template: `/users/{id}`, `/{proxy+}`.
    pub path: String,
    /// Upper-case method, or `ANY`.
    pub method: String,
    /// CORS and authorizer of this route; records stored before it existed
    /// read as open.
    #[serde(default, skip_serializing_if = "RoutePolicy::is_open")]
    pub policy: RoutePolicy,
}
