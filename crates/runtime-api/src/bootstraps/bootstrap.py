#!/usr/bin/env python3
"""rouse's Python runtime: runs one Lambda handler behind the Runtime API.

Started as `python3 bootstrap.py` with the standard Lambda environment:
AWS_LAMBDA_RUNTIME_API (host:port), _HANDLER (`module.function`, also
`dir/module.function`), LAMBDA_TASK_ROOT (the code directory, also the cwd),
AWS_LAMBDA_FUNCTION_NAME / _VERSION / _MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME,
AWS_LAMBDA_LOG_STREAM_NAME.

The handler's module is imported once; module-level state lives as long as
the process (warm invocations). Standard library only. Nothing is written to
stdout except what the handler prints: stdout and stderr are the function's
log.
"""

import decimal
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# Sent for exceptions raised by the handler; the exception's class name is
# in the body's errorType.
UNHANDLED = "Runtime.Unhandled"
# Connection failures on a reused keep-alive connection that mean the server
# closed it before reading the request: safe to send once more.
RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class RuntimeClient:
    """Runtime API calls over one reused keep-alive connection."""

    def __init__(self, address):
        self._address = address
        self._conn = None

    def call(self, method, path, body=None, headers=None):
        for attempt in (1, 2):
            if self._conn is None:
                # No timeout: `next` is a long poll that may wait for hours.
                self._conn = http.client.HTTPConnection(self._address)
            try:
                self._conn.request(method, API_PREFIX + path, body=body, headers=headers or {})
                response = self._conn.getresponse()
                return response.status, response.headers, response.read()
            except RETRYABLE:
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def next(self):
        status, headers, body = self.call("GET", "/invocation/next")
        if status != 200:
            raise RuntimeError(f"Runtime API next answered {status}: {body[:500]!r}")
        return headers, body

    def post(self, path, payload, headers):
        status, _, body = self.call("POST", path, payload, headers)
        # 413 is the platform's business (it reports ResponseSizeTooLarge to
        # the caller); anything else is worth a line in the log.
        if status >= 300 and status != 413:
            log_line(f"bootstrap: POST {path} answered {status}: {body[:500]!r}")


class InitError(Exception):
    """Loading the handler failed; reported with `init/error`."""

    def __init__(self, error_type, message, stack=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack or []


class CognitoIdentity:
    def __init__(self, raw):
        data = parse_json_object(raw)
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")


class Client:
    def __init__(self, data):
        self.installation_id = data.get("installation_id")
        self.app_title = data.get("app_title")
        self.app_version_name = data.get("app_version_name")
        self.app_version_code = data.get("app_version_code")
        self.app_package_name = data.get("app_package_name")


class ClientContext:
    def __init__(self, data):
        client = data.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = data.get("custom")
        self.env = data.get("env")


class LambdaContext:
    """The `context` argument, with the attributes of Lambda's Python context."""

    def __init__(self, request_id, deadline_ms, invoked_function_arn, client_context, identity):
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        # A string, as on Lambda.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = CognitoIdentity(identity)
        self.client_context = ClientContext(parse_json_object(client_context)) if client_context else None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, message):
        sys.stdout.write(str(message))
        sys.stdout.flush()

    def __repr__(self):
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


def parse_json_object(raw):
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def log_line(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def user_frames(tb):
    """The traceback without this file's frames: users care about their code."""
    return [frame for frame in traceback.extract_tb(tb) if frame.filename != __file__]


def load_handler(handler):
    module_path, dot, function_name = handler.rpartition(".")
    if not dot or not module_path or not function_name:
        raise InitError(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{handler}': expected module.function",
        )
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}")
    except SyntaxError as e:
        stack = [f'  File "{e.filename}" Line {e.lineno}\n    {(e.text or "").strip()}\n']
        raise InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {e}", stack)
    except Exception as e:
        raise InitError(type(e).__name__, str(e), traceback.format_list(user_frames(e.__traceback__)))
    function = getattr(module, function_name, None)
    if function is None:
        raise InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    if not callable(function):
        raise InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' on module '{module_name}' is not callable",
        )
    return function


def report_init_error(client, error):
    body = {"errorMessage": error.message, "errorType": error.error_type, "stackTrace": error.stack}
    log_line(f"[ERROR] {error.error_type}: {error.message}")
    header = error.error_type if error.error_type.startswith("Runtime.") else UNHANDLED
    client.post(
        "/init/error",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", ERROR_TYPE_HEADER: header},
    )


def post_error(client, request_id, error_type, message, stack, header):
    body = {"errorMessage": message, "errorType": error_type, "stackTrace": stack}
    log_line(f"[ERROR] {error_type}: {message}" + ("\nTraceback (most recent call last):\n" + "".join(stack) if stack else ""))
    client.post(
        f"/invocation/{request_id}/error",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", ERROR_TYPE_HEADER: header},
    )


def json_default(value):
    # Lambda's Python runtime serialises Decimal (e.g. from DynamoDB) as a number.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def handle(client, handler, headers, body):
    request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
    if not request_id:
        raise RuntimeError("Runtime API next answered without Lambda-Runtime-Aws-Request-Id")
    try:
        deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
    except ValueError:
        deadline_ms = 0
    trace_id = headers.get("Lambda-Runtime-Trace-Id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    context = LambdaContext(
        request_id,
        deadline_ms,
        headers.get("Lambda-Runtime-Invoked-Function-Arn"),
        headers.get("Lambda-Runtime-Client-Context"),
        headers.get("Lambda-Runtime-Cognito-Identity"),
    )

    try:
        event = json.loads(body)
    except ValueError as e:
        post_error(client, request_id, "Runtime.UnmarshalError", f"Unable to unmarshal input: {e}", [], "Runtime.UnmarshalError")
        return

    try:
        result = handler(event, context)
    except Exception as e:
        stack = traceback.format_list(user_frames(e.__traceback__))
        post_error(client, request_id, type(e).__name__, str(e), stack, UNHANDLED)
        return
    finally:
        # Whatever the handler printed belongs to this invocation's log.
        sys.stdout.flush()
        sys.stderr.flush()

    try:
        payload = json.dumps(result, default=json_default).encode()
    except (TypeError, ValueError) as e:
        post_error(client, request_id, "Runtime.MarshalError", f"Unable to marshal response: {e}", [], "Runtime.MarshalError")
        return
    client.post(f"/invocation/{request_id}/response", payload, {"Content-Type": "application/json"})


def main():
    # Piped stdout is block-buffered by default: a print would reach the log
    # late, or never if the instance is killed at its timeout.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass

    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        log_line("bootstrap: AWS_LAMBDA_RUNTIME_API is not set")
        return 1
    client = RuntimeClient(address)

    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    # First on the path, so the function's modules win over this directory's.
    sys.path.insert(0, task_root)

    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except InitError as e:
        report_init_error(client, e)
        return 1

    while True:
        headers, body = client.next()
        handle(client, handler, headers, body)


if __name__ == "__main__":
    sys.exit(main())
