"""A Lambda handler in Python: the same file deploys to AWS Lambda.

`INVOCATIONS` lives at module level, so it counts the calls one warm
instance has served, as it would on Lambda.

Called through an HTTP route it gets an API Gateway event (REST API payload
v1 or HTTP API payload v2) and answers with an API Gateway response; invoked
directly it gets any JSON event and answers with plain JSON.
"""

import json
import os

INVOCATIONS = 0


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    print(f"invocation {INVOCATIONS} in pid {os.getpid()}")

    if not is_http_event(event):
        return {
            "count": INVOCATIONS,
            "pid": os.getpid(),
            "requestId": context.aws_request_id,
            "functionName": context.function_name,
            "event": event,
        }

    summary = {
        "count": INVOCATIONS,
        "pid": os.getpid(),
        "requestId": context.aws_request_id,
    }
    if event.get("version") == "2.0":
        summary.update(
            {
                "shape": "v2",
                "version": event["version"],
                "routeKey": event.get("routeKey"),
                "rawPath": event.get("rawPath"),
                "rawQueryString": event.get("rawQueryString"),
                "method": event["requestContext"]["http"]["method"],
                "pathParameters": event.get("pathParameters"),
                "body": event.get("body"),
            }
        )
    else:
        summary.update(
            {
                "shape": "v1",
                "httpMethod": event.get("httpMethod"),
                "resource": event.get("resource"),
                "path": event.get("path"),
                "pathParameters": event.get("pathParameters"),
                "queryStringParameters": event.get("queryStringParameters"),
                "body": event.get("body"),
            }
        )
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Handler": "python"},
        "body": json.dumps(summary),
    }


def is_http_event(event):
    """API Gateway v1 events carry `httpMethod`; v2 ones `requestContext.http`."""
    if not isinstance(event, dict):
        return False
    if "httpMethod" in event:
        return True
    context = event.get("requestContext")
    return isinstance(context, dict) and "http" in context
