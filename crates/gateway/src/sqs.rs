//! Queues on the gateway: the SQS API's pure parts so far — SQS's error
//! shapes (`errors`), queue attributes ⇄ the store's (`attributes`), and
//! message checks and digests (`message`). The JSON-protocol executor
//! (`AmazonSQS.<Op>` as a `classify` target, long polling woken by sends)
//! and the `sqs:` mapping poller are built on these next.

// Used by the executor that is not wired yet; unit-tested here.
#![allow(dead_code)]

mod attributes;
mod errors;
mod message;
