#!/usr/bin/env node
// rouse's Node.js runtime: runs one Lambda handler behind the Runtime API.
//
// Started as `node bootstrap.js` with the standard Lambda environment:
// AWS_LAMBDA_RUNTIME_API (host:port), _HANDLER (`file.handler`, also
// `dir/file.handler` and nested `file.obj.handler`), LAMBDA_TASK_ROOT (the
// code directory, also the cwd), AWS_LAMBDA_FUNCTION_NAME / _VERSION /
// _MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME, AWS_LAMBDA_LOG_STREAM_NAME.
//
// Handlers may be async (return a promise) or callback-style
// `(event, context, callback)`. The module is loaded once; module state
// lives as long as the process. No dependencies. Nothing is written to
// stdout except what the handler logs.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const API_PREFIX = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
// Sent for errors raised by the handler; the error's name is in the body.
const UNHANDLED = 'Runtime.Unhandled';
// Exit status after a fatal error, as Lambda's Node runtime uses.
const FATAL_EXIT = 129;

/** Runtime API calls over keep-alive connections. */
class RuntimeClient {
  constructor(address) {
    const colon = address.lastIndexOf(':');
    this.host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    this.port = Number(address.slice(colon + 1));
    // Idle pooled sockets are unref'd by Node, so they do not keep the event
    // loop alive: callback handlers rely on the loop draining.
    this.agent = new http.Agent({ keepAlive: true });
  }

  request(method, urlPath, body, headers, retried) {
    return new Promise((resolve, reject) => {
      const allHeaders = Object.assign({}, headers);
      if (body !== undefined) allHeaders['Content-Length'] = Buffer.byteLength(body);
      const req = http.request(
        { host: this.host, port: this.port, method, path: API_PREFIX + urlPath, agent: this.agent, headers: allHeaders },
        (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('error', (err) => {
        // A reused keep-alive socket the server already closed: the request
        // never arrived, so sending it once more is safe.
        if (req.reusedSocket && !retried && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          this.request(method, urlPath, body, headers, true).then(resolve, reject);
        } else {
          reject(err);
        }
      });
      req.end(body);
    });
  }

  async next() {
    const res = await this.request('GET', '/invocation/next');
    if (res.status !== 200) {
      throw new Error(`Runtime API next answered ${res.status}: ${res.body.toString('utf8', 0, 500)}`);
    }
    return res;
  }

  async post(urlPath, payload, headers) {
    const res = await this.request('POST', urlPath, payload, headers);
    // 413 is the platform's business (it reports ResponseSizeTooLarge to the
    // caller); anything else is worth a line in the log.
    if (res.status >= 300 && res.status !== 413) {
      logLine(`bootstrap: POST ${urlPath} answered ${res.status}: ${res.body.toString('utf8', 0, 500)}`);
    }
  }

  postResponse(requestId, json) {
    return this.post(`/invocation/${requestId}/response`, json, { 'Content-Type': 'application/json' });
  }

  postError(requestId, error, header) {
    return this.post(`/invocation/${requestId}/error`, JSON.stringify(error), {
      'Content-Type': 'application/json',
      [ERROR_TYPE_HEADER]: header,
    });
  }

  postInitError(error, header) {
    return this.post('/init/error', JSON.stringify(error), {
      'Content-Type': 'application/json',
      [ERROR_TYPE_HEADER]: header,
    });
  }
}

class InitError extends Error {
  constructor(errorType, message) {
    super(message);
    this.name = errorType;
    this.errorType = errorType;
    // Re-captured so the stack's first line names the error type, as
    // Lambda's runtime shows it.
    Error.captureStackTrace(this, InitError);
  }
}

function logLine(text) {
  process.stderr.write(`${text}\n`);
}

/** The error JSON Lambda's Node runtime sends: errorType, errorMessage, trace. */
function errorBody(err) {
  if (err instanceof Error || (err && typeof err === 'object' && typeof err.message === 'string')) {
    return {
      errorType: err.errorType || err.name || 'Error',
      errorMessage: err.message,
      trace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
    };
  }
  return { errorType: typeof err, errorMessage: String(err), trace: [] };
}

function isFile(file) {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

async function requireOrImport(file) {
  try {
    return require(file);
  } catch (err) {
    // ES modules (`"type": "module"`, top-level await) need import().
    if (err && (err.code === 'ERR_REQUIRE_ESM' || err.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
      return import(pathToFileURL(file).href);
    }
    throw err;
  }
}

async function loadModule(taskRoot, modulePath) {
  const base = path.resolve(taskRoot, modulePath);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find(isFile);
  try {
    if (file && file.endsWith('.mjs')) return await import(pathToFileURL(file).href);
    if (file) return await requireOrImport(file);
    // No such file: a directory with an index, or a package in node_modules.
    let resolved;
    try {
      resolved = require.resolve(base);
    } catch {
      try {
        resolved = require.resolve(modulePath, { paths: [taskRoot] });
      } catch {
        throw new InitError('Runtime.ImportModuleError', `Error: Cannot find module '${modulePath}'`);
      }
    }
    return await requireOrImport(resolved);
  } catch (err) {
    if (err instanceof InitError) throw err;
    if (err && (err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_MODULE_NOT_FOUND')) {
      // The first line only: the require stack points into this bootstrap.
      throw new InitError('Runtime.ImportModuleError', `${err.name}: ${String(err.message).split('\n')[0]}`);
    }
    if (err instanceof SyntaxError) {
      throw new InitError('Runtime.UserCodeSyntaxError', `${err.name}: ${err.message}`);
    }
    throw err;
  }
}

async function loadHandler(taskRoot, handlerString) {
  const slash = handlerString.lastIndexOf('/');
  const dir = handlerString.slice(0, slash + 1);
  const rest = handlerString.slice(slash + 1);
  const dot = rest.indexOf('.');
  if (dot <= 0 || dot === rest.length - 1) {
    throw new InitError('Runtime.MalformedHandlerName', `Bad handler ${handlerString}`);
  }
  const module = await loadModule(taskRoot, dir + rest.slice(0, dot));
  let handler = module;
  for (const key of rest.slice(dot + 1).split('.')) {
    handler = handler === undefined || handler === null ? undefined : handler[key];
  }
  if (typeof handler !== 'function') {
    throw new InitError('Runtime.HandlerNotFound', `${handlerString} is undefined or not exported`);
  }
  return handler;
}

function parseJsonHeader(value) {
  if (!value) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

function makeContext(requestId, deadlineMs, headers) {
  const env = process.env;
  return {
    callbackWaitsForEmptyEventLoop: true,
    awsRequestId: requestId,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    // A string, as on Lambda.
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(headers['lambda-runtime-client-context']),
    identity: parseJsonHeader(headers['lambda-runtime-cognito-identity']),
    getRemainingTimeInMillis: () => Math.max(deadlineMs - Date.now(), 0),
  };
}

/**
 * Calls the handler; resolves with { failed, value } once it has finished:
 * when its promise settles, or when it calls back. A callback with
 * `callbackWaitsForEmptyEventLoop` (the default) finishes only when the event
 * loop has nothing else to do, as on Lambda. Only the first result counts.
 */
function callHandler(handler, event, context) {
  return new Promise((resolve) => {
    let settled = false;
    let calledBack = false;
    const settle = (failed, value) => {
      if (!settled) {
        settled = true;
        resolve({ failed, value });
      }
    };
    const callback = (err, result) => {
      calledBack = true;
      const finish = () => (err === undefined || err === null ? settle(false, result) : settle(true, err));
      if (context.callbackWaitsForEmptyEventLoop) {
        process.once('beforeExit', finish);
      } else {
        finish();
      }
    };
    // The pre-callback API, still used by old handlers.
    context.succeed = (result) => callback(null, result);
    context.fail = (err) => callback(err === undefined || err === null ? new Error('handled') : err);
    context.done = callback;

    let returned;
    try {
      returned = handler(event, context, callback);
    } catch (err) {
      settle(true, err);
      return;
    }
    if (returned && typeof returned.then === 'function') {
      returned.then(
        (result) => settle(false, result),
        (err) => settle(true, err === undefined || err === null ? new Error(String(err)) : err),
      );
    } else if (handler.length < 3) {
      // A plain synchronous handler: its return value is the result.
      settle(false, returned);
    } else {
      // A callback handler that never calls back ends, like on Lambda, with
      // null once the event loop is empty.
      process.once('beforeExit', () => {
        if (!calledBack) settle(false, null);
      });
    }
  });
}

let currentRequestId = null;

async function handleInvocation(client, handler, next) {
  const headers = next.headers;
  const requestId = headers['lambda-runtime-aws-request-id'];
  if (!requestId) throw new Error('Runtime API next answered without Lambda-Runtime-Aws-Request-Id');
  const deadlineMs = Number(headers['lambda-runtime-deadline-ms']) || 0;
  const traceId = headers['lambda-runtime-trace-id'];
  if (traceId) {
    process.env._X_AMZN_TRACE_ID = traceId;
  } else {
    delete process.env._X_AMZN_TRACE_ID;
  }
  currentRequestId = requestId;
  try {
    let event;
    try {
      event = JSON.parse(next.body.toString('utf8'));
    } catch (err) {
      const error = { errorType: 'Runtime.UnmarshalError', errorMessage: `Unable to unmarshal input: ${err.message}`, trace: [] };
      await client.postError(requestId, error, 'Runtime.UnmarshalError');
      return;
    }
    const context = makeContext(requestId, deadlineMs, headers);
    const { failed, value } = await callHandler(handler, event, context);
    if (failed) {
      const error = errorBody(value);
      logLine(`ERROR\tInvoke Error \t${JSON.stringify(error)}`);
      await client.postError(requestId, error, UNHANDLED);
      return;
    }
    let json;
    try {
      json = JSON.stringify(value === undefined ? null : value);
    } catch (err) {
      const error = { errorType: 'Runtime.MarshalError', errorMessage: `Unable to stringify response body: ${err.message}`, trace: [] };
      await client.postError(requestId, error, 'Runtime.MarshalError');
      return;
    }
    await client.postResponse(requestId, json);
  } finally {
    currentRequestId = null;
  }
}

/** An error nobody caught: report it against the running invocation, then exit. */
async function fatal(client, error) {
  logLine(`ERROR\t${error.errorType}\t${JSON.stringify(error)}`);
  if (currentRequestId) {
    try {
      await client.postError(currentRequestId, error, UNHANDLED);
    } catch {
      // Exiting anyway; the platform reports the exit.
    }
  }
  process.exit(FATAL_EXIT);
}

async function main() {
  const address = process.env.AWS_LAMBDA_RUNTIME_API;
  if (!address) {
    logLine('bootstrap: AWS_LAMBDA_RUNTIME_API is not set');
    process.exit(1);
  }
  const client = new RuntimeClient(address);
  const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();

  let handler;
  try {
    handler = await loadHandler(taskRoot, process.env._HANDLER || '');
  } catch (err) {
    const error = errorBody(err);
    logLine(`ERROR\t${error.errorType}\t${JSON.stringify(error)}`);
    const header = String(error.errorType).startsWith('Runtime.') ? error.errorType : UNHANDLED;
    await client.postInitError(error, header);
    process.exit(FATAL_EXIT);
  }

  process.on('uncaughtException', (err) => fatal(client, errorBody(err)));
  process.on('unhandledRejection', (reason) => {
    const error = errorBody(reason);
    fatal(client, {
      errorType: 'Runtime.UnhandledPromiseRejection',
      errorMessage: reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason),
      trace: error.trace,
    });
  });

  for (;;) {
    const next = await client.next();
    await handleInvocation(client, handler, next);
  }
}

main().catch((err) => {
  logLine(`bootstrap: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
