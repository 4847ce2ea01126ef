// A Lambda handler in Node.js: the same file deploys to AWS Lambda.
//
// `invocations` lives at module level, so it counts the calls one warm
// instance has served, as it would on Lambda. Called through an HTTP route it
// gets an API Gateway event (payload v1 or v2) and answers with an API Gateway
// response; invoked directly it answers with plain JSON.

let invocations = 0;

// API Gateway v1 events carry `httpMethod`; v2 ones `requestContext.http`.
const isHttpEvent = (event) =>
  event !== null &&
  typeof event === 'object' &&
  ('httpMethod' in event || (event.requestContext && 'http' in event.requestContext));

export const handler = async (event, context) => {
  invocations += 1;
  console.log(`invocation ${invocations} in pid ${process.pid}`);

  if (!isHttpEvent(event)) {
    return {
      count: invocations,
      pid: process.pid,
      requestId: context.awsRequestId,
      functionName: context.functionName,
      event,
    };
  }

  const summary = { count: invocations, pid: process.pid, requestId: context.awsRequestId };
  if (event.version === '2.0') {
    Object.assign(summary, {
      shape: 'v2',
      version: event.version,
      routeKey: event.routeKey,
      rawPath: event.rawPath,
      rawQueryString: event.rawQueryString,
      method: event.requestContext.http.method,
      pathParameters: event.pathParameters,
      body: event.body,
    });
  } else {
    Object.assign(summary, {
      shape: 'v1',
      httpMethod: event.httpMethod,
      resource: event.resource,
      path: event.path,
      pathParameters: event.pathParameters,
      queryStringParameters: event.queryStringParameters,
      body: event.body,
    });
  }
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'application/json', 'X-Handler': 'node' },
    body: JSON.stringify(summary),
  };
};
