'use strict';
// Lambda runtime for one local Node.js execution environment: loads the handler, speaks LocalStack's executor protocol.
//
// Started by the local-process executor as `node [heap flags] node_bootstrap.js` with the function's code as working
// directory; uses Node's standard library only. The protocol is the one bootstrap.py speaks: POST
// <endpoint>/status/<id>/ready (or /error with an AWS error document) after init; answer POST /invoke (on the
// listening socket inherited as fd HARNESS_RUNTIME_LISTEN_FD) with 202 at once, run the handler, POST
// <endpoint>/invocations/<request-id>/logs, then /response or /error.
//
// Logs: fd 1 and 2 are the environment's log file (opened by the executor in append mode), so console.*, direct
// writes and child processes all land there; an invocation's logs are the bytes appended between its START and its
// REPORT line. A crash (process.exit, an uncaught exception or unhandled rejection outside a handler's promise, a
// signal) simply ends this process: the executor sees the exit at once and answers Runtime.ExitError.

const fs = require('fs');
const http = require('http');
const path = require('path');
const util = require('util');
const { pathToFileURL } = require('url');

const PARENT_POLL_MS = 250;
const MAX_LOG_BYTES = 1024 * 1024;

function readConfig(env) {
  const need = (name) => {
    if (!env[name]) throw new Error(`Expected ${name} in the runtime's environment but received none`);
    return env[name];
  };
  return {
    endpoint: need('LOCALSTACK_RUNTIME_ENDPOINT').replace(/\/+$/, ''),
    runtimeId: need('LOCALSTACK_RUNTIME_ID'),
    handler: env._HANDLER || '',
    taskRoot: env.LAMBDA_TASK_ROOT || process.cwd(),
    listenFd: Number.parseInt(need('HARNESS_RUNTIME_LISTEN_FD'), 10),
    parentPid: Number.parseInt(env.HARNESS_PARENT_PID || String(process.ppid), 10),
    functionName: env.AWS_LAMBDA_FUNCTION_NAME || '',
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION || '$LATEST',
    memoryMb: String(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE || '128'),
    timeoutS: Number.parseFloat(env.AWS_LAMBDA_FUNCTION_TIMEOUT || '3'),
    logGroup: env.AWS_LAMBDA_LOG_GROUP_NAME || '',
    logStream: env.AWS_LAMBDA_LOG_STREAM_NAME || '',
    logFile: env.HARNESS_RUNTIME_LOG || '',
    spawnedAtMs: env.HARNESS_SPAWNED_AT ? Number.parseFloat(env.HARNESS_SPAWNED_AT) * 1000 : Date.now(),
    notice: env.HARNESS_RUNTIME_NOTICE || '',
  };
}

// ---- logs ------------------------------------------------------------------------------------------------------
// Where an invocation's output is collected: the log file itself when fd 1 is a regular file (everything written to
// fd 1/2 by anyone), else a copy of what this process writes through process.stdout/stderr.
class LogCapture {
  constructor(logFile) {
    this.file = null;
    this.parts = [];
    this.start = 0;
    let stat = null;
    try {
      stat = fs.fstatSync(1);
    } catch (_) { /* no fd 1 */ }
    if (stat && stat.isFile()) {
      this.file = logFile || '/proc/self/fd/1';
      this.start = stat.size; // the file is shared across restarts: this process's output starts here
    } else {
      for (const stream of [process.stdout, process.stderr]) {
        const write = stream.write.bind(stream);
        stream.write = (chunk, encoding, cb) => {
          this.parts.push(Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk));
          return write(chunk, encoding, cb);
        };
      }
    }
  }

  write(text) {
    process.stdout.write(text);
  }

  // Everything written since the previous take() (init output belongs to the first invocation, as on AWS).
  take() {
    if (this.file === null) {
      const text = this.parts.join('');
      this.parts = [];
      return text;
    }
    let end = this.start;
    try {
      end = fs.fstatSync(1).size;
    } catch (_) { /* keep start */ }
    const from = Math.max(this.start, end - MAX_LOG_BYTES);
    this.start = end;
    if (end <= from) return '';
    const buf = Buffer.alloc(end - from);
    let fd = null;
    try {
      fd = fs.openSync(this.file, 'r');
      const n = fs.readSync(fd, buf, 0, buf.length, from);
      return buf.subarray(0, n).toString('utf8');
    } catch (_) {
      return '';
    } finally {
      if (fd !== null) fs.closeSync(fd);
    }
  }
}

let currentRequestId;

// console.* in the format of AWS's Node.js runtime: timestamp \t request id \t LEVEL \t message
function installConsole() {
  const levels = { log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', debug: 'DEBUG', trace: 'TRACE' };
  for (const [method, level] of Object.entries(levels)) {
    console[method] = (...args) => {
      let message = util.format(...args);
      if (method === 'trace') message = `Trace: ${message}\n${new Error().stack.split('\n').slice(2).join('\n')}`;
      process.stdout.write(`${new Date().toISOString()}\t${currentRequestId}\t${level}\t${message}\n`);
    };
  }
}

function maxMemoryUsedMb() {
  // VmHWM: peak RSS of this process (ru_maxrss would carry the parent's peak across exec)
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (match) return Math.ceil(Number(match[1]) / 1024);
  } catch (_) { /* not Linux */ }
  return Math.ceil(process.memoryUsage().rss / (1024 * 1024));
}

// ---- error documents -------------------------------------------------------------------------------------------
function errorDocument(err) {
  if (err instanceof Error) {
    const errorType = err.name && err.name !== 'Error' ? err.name : (err.constructor && err.constructor.name) || 'Error';
    return { errorType, errorMessage: err.message, trace: String(err.stack || '').split('\n').filter(Boolean) };
  }
  if (err !== null && typeof err === 'object') {
    return { errorType: err.errorType || 'Error', errorMessage: err.errorMessage || JSON.stringify(err), trace: [] };
  }
  return { errorType: typeof err, errorMessage: String(err), trace: [] };
}

class InitFault extends Error {
  constructor(errorType, message, cause) {
    super(message);
    this.errorType = errorType;
    this.trace = cause && cause.stack ? String(cause.stack).split('\n').filter(Boolean) : [];
  }

  document() {
    return { errorType: this.errorType, errorMessage: this.message, trace: this.trace };
  }
}

// ---- the handler -----------------------------------------------------------------------------------------------
// `dir/file.fn.inner` -> module `dir/file`, handler path ['fn', 'inner'] (the module part ends at the first dot
// after the last slash, as in AWS's runtime).
function splitHandler(handler) {
  const slash = handler.lastIndexOf('/');
  const dot = handler.indexOf('.', slash + 1);
  if (!handler || dot < 0 || dot === handler.length - 1 || dot === slash + 1) {
    throw new InitFault('Runtime.MalformedHandlerName', `Bad handler ${handler}: expected module.function`);
  }
  return [handler.slice(0, dot), handler.slice(dot + 1).split('.')];
}

function isEsm(file, taskRoot) {
  if (file.endsWith('.mjs')) return true;
  if (file.endsWith('.cjs')) return false;
  // a .js file: the nearest package.json's "type" decides, as in Node itself
  const root = path.resolve(taskRoot);
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        return JSON.parse(fs.readFileSync(pkg, 'utf8')).type === 'module';
      } catch (_) {
        return false;
      }
    }
    if (dir === root || path.dirname(dir) === dir) return false;
  }
}

async function loadHandler(handler, taskRoot) {
  const [moduleName, fnPath] = splitHandler(handler);
  const base = path.resolve(taskRoot, moduleName);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find((f) => fs.existsSync(f));
  if (!file) {
    throw new InitFault('Runtime.ImportModuleError', `Error: Cannot find module '${moduleName}'`);
  }
  let mod;
  try {
    if (isEsm(file, taskRoot)) {
      mod = await import(pathToFileURL(file).href);
    } else {
      try {
        mod = require(file);
      } catch (err) {
        if (err && err.code !== 'ERR_REQUIRE_ESM') throw err;
        mod = await import(pathToFileURL(file).href);
      }
    }
  } catch (err) {
    if (err instanceof SyntaxError) {
      throw new InitFault('Runtime.UserCodeSyntaxError', `${err.name}: ${err.message}`, err);
    }
    if (err && (err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_MODULE_NOT_FOUND')) {
      throw new InitFault('Runtime.ImportModuleError', `Error: ${err.message.split('\n')[0]}`, err);
    }
    const doc = errorDocument(err);
    throw new InitFault(doc.errorType, doc.errorMessage, err);
  }
  let fn = mod;
  for (const part of fnPath) fn = fn === null || fn === undefined ? undefined : fn[part];
  if (typeof fn !== 'function') {
    throw new InitFault('Runtime.HandlerNotFound', `${path.basename(moduleName)}.${fnPath.join('.')} is undefined or not exported`);
  }
  return fn;
}

function makeContext(cfg, invocation, deadlineMs, settle) {
  return {
    awsRequestId: invocation['invoke-id'] || '',
    invokedFunctionArn: invocation['invoked-function-arn'] || '',
    functionName: cfg.functionName,
    functionVersion: cfg.functionVersion,
    memoryLimitInMB: cfg.memoryMb, // a string, as on AWS
    logGroupName: cfg.logGroup,
    logStreamName: cfg.logStream,
    identity: undefined,
    clientContext: undefined,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
    done: (err, result) => settle(err, result),
    succeed: (result) => settle(null, result),
    fail: (err) => settle(err === undefined || err === null ? 'handled' : err),
  };
}

// Runs the handler in its async (returns a promise), callback ((event, context, callback)) or plain synchronous form.
function runHandler(handler, event, cfg, invocation, deadlineMs) {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (err, result) => {
      if (settled) return;
      settled = true;
      resolve(err === undefined || err === null ? { ok: true, result } : { ok: false, err });
    };
    const context = makeContext(cfg, invocation, deadlineMs, settle);
    let returned;
    try {
      returned = handler(event, context, settle);
    } catch (err) {
      settle(err === undefined || err === null ? new Error('handler threw ' + err) : err);
      return;
    }
    if (returned && typeof returned.then === 'function') {
      returned.then((result) => settle(null, result), (err) => settle(err === undefined || err === null ? new Error('handler rejected with ' + err) : err));
    } else if (handler.length < 3) {
      settle(null, returned); // a synchronous handler without a callback: its return value is the result
    }
  });
}

// ---- talking to LocalStack -------------------------------------------------------------------------------------
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function post(url, body) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(body);
    const req = http.request(url, {
      method: 'POST', agent, timeout: 30000,
      headers: { 'Content-Type': 'application/json', 'Content-Length': data.length },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${url} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

function watchParent(parentPid) {
  setInterval(() => {
    if (process.ppid !== parentPid) {
      try {
        process.kill(-process.pid, 'SIGKILL'); // our process group: us and the handler's children
      } finally {
        process.exit(137);
      }
    }
  }, PARENT_POLL_MS).unref();
}

class Runtime {
  constructor(cfg) {
    this.cfg = cfg;
    this.capture = new LogCapture(cfg.logFile);
    this.handler = null;
    this.initMs = null;
    this.inbox = [];
    this.busy = false;
  }

  async init() {
    installConsole();
    if (this.cfg.notice) process.stdout.write(`[harness] ${this.cfg.notice}\n`);
    try {
      this.handler = await loadHandler(this.cfg.handler, this.cfg.taskRoot);
    } catch (err) {
      const fault = err instanceof InitFault ? err : new InitFault('Runtime.Unknown', String(err && err.message), err);
      const doc = fault.document();
      process.stdout.write(`${new Date().toISOString()}\tundefined\tERROR\t${JSON.stringify(doc)}\n`);
      await post(`${this.cfg.endpoint}/status/${this.cfg.runtimeId}/error`, JSON.stringify(doc));
      return false;
    }
    this.initMs = Math.max(0, Date.now() - this.cfg.spawnedAtMs);
    const server = http.createServer((req, res) => this.onRequest(req, res));
    server.keepAliveTimeout = 0;
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd: this.cfg.listenFd }, resolve);
    });
    await post(`${this.cfg.endpoint}/status/${this.cfg.runtimeId}/ready`, '{}');
    return true;
  }

  onRequest(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url.replace(/\/+$/, '') !== '/invoke') {
        res.writeHead(404, { 'Content-Length': 0 }).end();
        return;
      }
      let invocation;
      try {
        invocation = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch (_) {
        res.writeHead(400, { 'Content-Length': 0 }).end();
        return;
      }
      res.writeHead(202, { 'Content-Length': 0 }).end();
      this.inbox.push(invocation);
      this.drain();
    });
  }

  async drain() {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.inbox.length) await this.runOne(this.inbox.shift());
    } finally {
      this.busy = false;
    }
  }

  async runOne(invocation) {
    const cfg = this.cfg;
    const requestId = String(invocation['invoke-id'] || '');
    const deadlineMs = Date.now() + Math.round(cfg.timeoutS * 1000);
    if (invocation['trace-id']) process.env._X_AMZN_TRACE_ID = String(invocation['trace-id']);
    currentRequestId = requestId;
    this.capture.write(`START RequestId: ${requestId} Version: ${cfg.functionVersion}\n`);
    const t0 = process.hrtime.bigint();
    let outcome;
    try {
      const raw = invocation.payload;
      const event = raw === undefined || raw === null || raw === '' ? {} : JSON.parse(raw);
      outcome = await runHandler(this.handler, event, cfg, invocation, deadlineMs);
    } catch (err) {
      outcome = { ok: false, err };
    }
    let body;
    let isError = !outcome.ok;
    if (outcome.ok) {
      try {
        const text = JSON.stringify(outcome.result);
        body = text === undefined ? 'null' : text;
      } catch (err) {
        isError = true;
        body = JSON.stringify({ errorType: 'Runtime.MarshalError', errorMessage: `Unable to stringify response body: ${err.message}`, trace: [] });
      }
    } else {
      const doc = errorDocument(outcome.err);
      this.capture.write(`${new Date().toISOString()}\t${requestId}\tERROR\tInvoke Error \t${JSON.stringify({ errorType: doc.errorType, errorMessage: doc.errorMessage, stack: doc.trace })}\n`);
      body = JSON.stringify(doc);
    }
    const durationMs = Number(process.hrtime.bigint() - t0) / 1e6;
    let report = `REPORT RequestId: ${requestId}\tDuration: ${durationMs.toFixed(2)} ms\t`
      + `Billed Duration: ${Math.ceil(durationMs)} ms\tMemory Size: ${cfg.memoryMb} MB\t`
      + `Max Memory Used: ${maxMemoryUsedMb()} MB`;
    if (this.initMs !== null) {
      report += `\tInit Duration: ${this.initMs.toFixed(2)} ms`;
      this.initMs = null;
    }
    if (isError) report += '\tStatus: error';
    this.capture.write(`END RequestId: ${requestId}\n${report}\n`);
    currentRequestId = undefined;
    const base = `${cfg.endpoint}/invocations/${requestId}`;
    try {
      await post(`${base}/logs`, JSON.stringify({ logs: this.capture.take() }));
      await post(`${base}/${isError ? 'error' : 'response'}`, body);
    } catch (err) {
      process.stderr.write(`[harness] could not deliver the result of ${requestId}: ${err && err.message}\n`);
    }
  }
}

async function main() {
  const cfg = readConfig(process.env);
  watchParent(cfg.parentPid);
  const runtime = new Runtime(cfg);
  if (!(await runtime.init())) process.exit(1);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`[harness] runtime failed: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
}

module.exports = { splitHandler, errorDocument, loadHandler, runHandler, readConfig };
