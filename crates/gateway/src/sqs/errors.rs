//! SQS's errors as its JSON protocol sends them: 400 with
//! `{"__type": "com.amazonaws.sqs#Shape", "message"}` and the older query
//! protocol's code in `x-amzn-query-error: CODE;Sender`, which SDKs show
//! as the error code (`AWS.SimpleQueueService.NonExistentQueue`).

use rouse_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqsError {
    /// The error shape's name (`QueueDoesNotExist`).
    pub shape: &'static str,
    /// The query-protocol code (`AWS.SimpleQueueService.NonExistentQueue`).
    pub code: &'static str,
    pub message: String,
    /// `false`: the service's fault (500).
    pub sender: bool,
}

fn sender(shape: &'static str, code: &'static str, message: impl Into<String>) -> SqsError {
    SqsError {
        shape,
        code,
        message: message.into(),
        sender: true,
    }
}

pub(crate) fn no_queue() -> SqsError {
    sender(
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist.",
    )
}

pub(crate) fn queue_exists(name: &str) -> SqsError {
    sender(
        "QueueNameExists",
        "QueueAlreadyExists",
        format!("A queue already exists with the same name ({name}) and a different value for attribute(s)."),
    )
}

pub(crate) fn invalid_parameter(message: impl Into<String>) -> SqsError {
    sender("InvalidParameterValue", "InvalidParameterValue", message)
}

pub(crate) fn missing(parameter: &str) -> SqsError {
    sender(
        "MissingParameter",
        "MissingParameter",
        format!("The request must contain the parameter {parameter}."),
    )
}

pub(crate) fn attribute_name(name: &str) -> SqsError {
    sender(
        "InvalidAttributeName",
        "InvalidAttributeName",
        format!("Unknown Attribute {name}."),
    )
}

pub(crate) fn attribute_value(name: &str, reason: &str) -> SqsError {
    sender(
        "InvalidAttributeValue",
        "InvalidAttributeValue",
        format!("Invalid value for the parameter {name}. Reason: {reason}"),
    )
}

pub(crate) fn receipt_invalid(handle: &str) -> SqsError {
    sender(
        "ReceiptHandleIsInvalid",
        "ReceiptHandleIsInvalid",
        format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
    )
}

pub(crate) fn not_in_flight(handle: &str) -> SqsError {
    invalid_parameter(format!(
        "Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change."
    ))
}

pub(crate) fn invalid_contents() -> SqsError {
    sender(
        "InvalidMessageContents",
        "InvalidMessageContents",
        "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
    )
}

pub(crate) fn empty_batch() -> SqsError {
    sender(
        "EmptyBatchRequest",
        "AWS.SimpleQueueService.EmptyBatchRequest",
        "There should be at least one SendMessageBatchRequestEntry in the request.",
    )
}

pub(crate) fn too_many_entries(n: usize) -> SqsError {
    sender(
        "TooManyEntriesInBatchRequest",
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        format!("Maximum number of entries per request are 10. You have sent {n}."),
    )
}

pub(crate) fn ids_not_distinct(id: &str) -> SqsError {
    sender(
        "BatchEntryIdsNotDistinct",
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        format!("Id {id} repeated."),
    )
}

pub(crate) fn invalid_entry_id(id: &str) -> SqsError {
    sender(
        "InvalidBatchEntryId",
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        format!("A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long. Found {id:?}."),
    )
}

pub(crate) fn batch_too_long(total: usize) -> SqsError {
    sender(
        "BatchRequestTooLong",
        "AWS.SimpleQueueService.BatchRequestTooLong",
        format!("Batch requests cannot be longer than 262144 bytes. You have sent {total} bytes."),
    )
}

pub(crate) fn unsupported(message: impl Into<String>) -> SqsError {
    sender(
        "UnsupportedOperation",
        "AWS.SimpleQueueService.UnsupportedOperation",
        message,
    )
}

pub(crate) fn invalid_address(url: &str) -> SqsError {
    sender(
        "InvalidAddress",
        "InvalidAddress",
        format!("The address {url} is not valid for this endpoint."),
    )
}

pub(crate) fn internal() -> SqsError {
    SqsError {
        shape: "InternalError",
        code: "InternalError",
        message: "We encountered an internal error. Please try again.".into(),
        sender: false,
    }
}

impl From<StoreError> for SqsError {
    fn from(err: StoreError) -> SqsError {
        match err {
            StoreError::UnknownQueue(_) => no_queue(),
            other => {
                tracing::error!(err = %other, "store error in the SQS API");
                internal()
            }
        }
    }
}
