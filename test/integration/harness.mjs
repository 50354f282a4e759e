// harness.mjs — shared helpers for the integration tests (node --test).
//
// startSim(args)            spawn build/ollama-sim on an ephemeral port; its JSON-line events
// startProxy(args, env, o)  spawn build/litebrain-proxy in front of an upstream; its JSON logs
// RawClient                 a net.Socket client for byte-exact requests and responses
// parseResponse / parseChunked / httpGet / scrapeMetrics / metricValue / procRssKiB
// itest(name, opts, fn)     node:test `test` that dumps the logs of every process it started
//                           when it fails and stops them when it ends
//
// Everything is bounded: every wait has a timeout, every process is killed when its test ends
// (itest), in after() (stopAll) or, at worst, when the test process exits.  Loopback and port 0
// only.  The build dir comes from $LB_BUILD (default `build`), relative to the repo root.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD = path.resolve(REPO, process.env.LB_BUILD || 'build');
export const SIM_BIN = path.join(BUILD, 'ollama-sim');
export const PROXY_BIN = path.join(BUILD, 'litebrain-proxy');
export const HOST = '127.0.0.1';
/* Sanitizer builds start and run several times slower; scale the generous defaults. */
export const SLOW = process.env.SAN === '1' || /build-san/.test(BUILD) ? 3 : 1;
export const START_TIMEOUT_MS = 10000 * SLOW;   // a binary must print its port within this
export const WAIT_TIMEOUT_MS = 10000 * SLOW;    // default for waitEvent / waitLog / reads
export const STOP_TIMEOUT_MS = 10000 * SLOW;    // SIGTERM → SIGKILL after this
const LOG_TAIL_LINES = 200;                      // lines of each log dumped on failure
const LOG_LINE_MAX = 2000;                       // characters of each dumped line

/* ------------------------------------------------------------------ processes */

const live = new Set();          // every process started and not yet reaped
const everything = [];           // every process started by this test file
let scope = null;                // processes started inside the running itest()

process.on('exit', () => { for (const p of live) { try { p.proc.kill('SIGKILL'); } catch { /* gone */ } } });

/* Resolves when cond() returns a truthy value (returned), rejects after timeoutMs.  cond is
 * re-evaluated whenever notify() of the given waiter list fires and also every pollMs. */
function makeWaiters() {
    const waiters = new Set();
    return {
        notify() { for (const w of [...waiters]) w(); },
        wait(cond, timeoutMs, what) {
            return new Promise((resolve, reject) => {
                let timer = null;
                const check = () => {
                    let v;
                    try { v = cond(); } catch (e) { done(); reject(e); return; }
                    if (v) { done(); resolve(v); }
                };
                const done = () => { waiters.delete(check); clearTimeout(timer); };
                timer = setTimeout(() => { done(); reject(new Error(`timeout after ${timeoutMs} ms waiting for ${what}`)); }, timeoutMs);
                waiters.add(check);
                check();
            });
        },
    };
}

/* Common child-process wrapper: JSON lines from `jsonStream` ('stdout' or 'stderr') go to
 * this.lines; the other stream is kept raw.  `exited` resolves to {code, signal}. */
class Child {
    constructor(name, bin, args, env, jsonStream) {
        this.name = name;
        this.args = args;
        this.lines = [];             // parsed JSON lines (non-JSON kept as {raw})
        this.other = '';             // the other stream, raw text
        this.exit = null;            // {code, signal} once exited
        this.w = makeWaiters();
        if (!fs.existsSync(bin)) throw new Error(`${bin} not built (make bin / make test-build)`);
        this.proc = spawn(bin, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        this.pid = this.proc.pid;
        live.add(this);
        everything.push(this);
        if (scope) { scope.add(this); this.scoped = true; }
        const js = jsonStream === 'stdout' ? this.proc.stdout : this.proc.stderr;
        const raw = jsonStream === 'stdout' ? this.proc.stderr : this.proc.stdout;
        readline.createInterface({ input: js }).on('line', (line) => {
            let o;
            try { o = JSON.parse(line); } catch { o = { raw: line }; }
            if (o === null || typeof o !== 'object') o = { raw: line };
            o._t = performance.now();
            this.lines.push(o);
            this.w.notify();
        });
        raw.setEncoding('utf8');
        raw.on('data', (d) => { this.other = (this.other + d).slice(-1 << 20); });
        this.exited = new Promise((resolve) => {
            this.proc.on('close', (code, signal) => {   // exited and its pipes drained
                this.exit = { code, signal };
                const san = this.lines.some((l) => l.raw && /Sanitizer|runtime error:/.test(l.raw)) || /Sanitizer|runtime error:/.test(this.other);
                if ((signal && !this.stopping) || san) {
                    process.stderr.write(`\n[harness] ${this.name} pid ${this.pid} died (${signal || `exit ${code}`}${san ? ', sanitizer report' : ''}) unasked\n${this.dump()}`);
                }
                live.delete(this);
                this.w.notify();
                resolve(this.exit);
            });
        });
    }

    /* First line (at index >= since) matching pred; rejects on timeout or if the process exits
     * before one appears. */
    waitLine(pred, timeoutMs = WAIT_TIMEOUT_MS, since = 0, what = 'line') {
        return this.w.wait(() => {
            for (let i = since; i < this.lines.length; i++) if (pred(this.lines[i])) return this.lines[i];
            if (this.exit) throw new Error(`${this.name} exited (${JSON.stringify(this.exit)}) while waiting for ${what}\n${this.dump()}`);
            return null;
        }, timeoutMs, `${this.name} ${what}`);
    }

    /* Wait for the process to exit on its own; resolves to {code, signal}, rejects on timeout. */
    waitExit(timeoutMs = WAIT_TIMEOUT_MS) {
        return this.w.wait(() => this.exit, timeoutMs, `${this.name} to exit`);
    }

    /* Index to pass as `since` to only see lines logged from now on. */
    mark() { return this.lines.length; }

    /* Send signal (default SIGTERM); wait for exit (SIGKILL after timeoutMs); resolves to the
     * exit code, or the signal name when killed by a signal. */
    async stop(signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) {
        if (!this.exit) {
            this.stopping = true;
            try { this.proc.kill(signal); } catch { /* already gone */ }
            const t = setTimeout(() => { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }, timeoutMs);
            await this.exited;
            clearTimeout(t);
        }
        return this.exit.code !== null ? this.exit.code : this.exit.signal;
    }

    /* The last lines of both streams, for failure reports. */
    dump() {
        const tail = this.lines.slice(-LOG_TAIL_LINES).map((o) => {
            const { _t, ...rest } = o;
            const l = rest.raw !== undefined && Object.keys(rest).length === 1 ? rest.raw : JSON.stringify(rest);
            return l.length > LOG_LINE_MAX ? `${l.slice(0, LOG_LINE_MAX)}…(${l.length} chars)` : l;
        });
        const st = this.exit ? ` (exited ${JSON.stringify(this.exit)})` : ' (running)';
        return `----- ${this.name} pid ${this.pid}${st} ${this.args.join(' ')}\n${tail.join('\n')}\n` +
            (this.other ? `----- ${this.name} other stream\n${this.other.slice(-8192)}\n` : '');
    }
}

/* Start the Ollama simulator: `ollama-sim --listen 127.0.0.1:0 --events --fixed-clock ...args`
 * (pass {fixedClock:false} to drop --fixed-clock).  Resolves once it printed
 * {"event":"listening","port":P}.  The returned object has port, url, events (all JSON
 * events), waitEvent(pred, timeoutMs, since), mark(), stop(). */
export async function startSim(args = [], opts = {}) {
    const argv = ['--listen', `${HOST}:0`, '--events'];
    if (opts.fixedClock !== false) argv.push('--fixed-clock');
    argv.push(...args);
    const sim = new Child('ollama-sim', opts.bin || SIM_BIN, argv, opts.env || {}, 'stdout');
    sim.events = sim.lines;
    sim.waitEvent = (pred, timeoutMs = WAIT_TIMEOUT_MS, since = 0) =>
        sim.waitLine(pred, timeoutMs, since, 'event');
    const l = await sim.waitLine((e) => e.event === 'listening', START_TIMEOUT_MS, 0, '"listening" event');
    sim.port = l.port;
    sim.url = `http://${HOST}:${l.port}`;
    return sim;
}

/* Start the proxy: `litebrain-proxy --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0
 * --upstream <u> ...args --log-level debug` where <u> is opts.upstream, or the url of opts.sim,
 * or nothing when args already carries --upstream.  Resolves once it logged "listening" with
 * port and metrics_port.  opts.noWait: do not wait (for tests that expect a startup failure);
 * opts.raw: argv is exactly args (no --listen/--upstream/--log-level added).  Later flags win,
 * so args may override the defaults (e.g. another --listen).
 * The returned object has port, metricsPort, url, logs, waitLog(pred, timeoutMs, since),
 * mark(), stop(signal) → exit code. */
export async function startProxy(args = [], env = {}, opts = {}) {
    const argv = [];
    if (!opts.raw) {
        argv.push('--listen', `${HOST}:0`, '--metrics-listen', `${HOST}:0`);
        const up = opts.upstream || (opts.sim && opts.sim.url);
        if (up && !args.includes('--upstream')) argv.push('--upstream', up);
    }
    argv.push(...args);
    if (!opts.raw && !argv.includes('--log-level')) argv.push('--log-level', 'debug');
    const px = new Child('litebrain-proxy', opts.bin || PROXY_BIN, argv,
        { LITEBRAIN_CONTROLLER: 'off', ...env }, 'stderr');
    px.logs = px.lines;
    px.waitLog = (pred, timeoutMs = WAIT_TIMEOUT_MS, since = 0) => px.waitLine(pred, timeoutMs, since, 'log line');
    if (opts.noWait) return px;
    const l = await px.waitLine((o) => o.msg === 'listening' && o.port, START_TIMEOUT_MS, 0, '"listening" log line');
    px.port = l.port;
    px.metricsPort = l.metrics_port;
    px.url = `http://${HOST}:${l.port}`;
    return px;
}

/* For a file whose tests share one sim and one proxy in front of it: starts both (the proxy's
 * defaults, upstream the sim); call it in before().  Resolves to {sim, px}. */
export async function startSimAndProxy() {
    const sim = await startSim();
    const px = await startProxy([], {}, { sim });
    return { sim, px };
}

/* Stop every process still running (for after()). */
export async function stopAll() {
    await Promise.all([...live].map((p) => p.stop('SIGKILL')));
}

/* node:test `test` whose processes (started inside fn) are dumped to stderr when fn fails and
 * killed when it ends.  Use it for every test that starts a sim or a proxy. */
export function itest(name, opts, fn) {
    if (typeof opts === 'function') { fn = opts; opts = {}; }
    return test(name, opts, async (t) => {
        const mine = new Set();
        const outer = scope;
        scope = mine;
        try {
            await fn(t, mine);
        } catch (e) {
            // this test's processes, and the file's shared ones (started in before())
            for (const p of everything) if (mine.has(p) || !p.scoped) process.stderr.write(`\n[${name}] ${p.dump()}`);
            throw e;
        } finally {
            scope = outer;
            await Promise.all([...mine].map((p) => p.stop('SIGKILL')));
        }
    });
}

/* ------------------------------------------------------------------ raw HTTP */

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

/* Parse a chunked body starting at buf[0].  Returns {chunks: [Buffer], body, complete,
 * consumed, trailers, error}.  complete is true once the 0-chunk and the trailer section were
 * read; consumed is the byte count of the whole chunked body (when complete) or of the whole
 * chunks parsed so far. */
export function parseChunked(buf) {
    const chunks = [];
    const ends = [];                 // offset just past each chunk's data (chunk k ends at ends[k])
    let off = 0;
    for (;;) {
        const eol = buf.indexOf(CRLF, off);
        if (eol < 0) break;
        const sizeStr = buf.subarray(off, eol).toString('latin1').split(';')[0].trim();
        if (!/^[0-9a-fA-F]+$/.test(sizeStr)) return { chunks, body: Buffer.concat(chunks), complete: false, consumed: off, error: `bad chunk size ${JSON.stringify(sizeStr)}` };
        const size = parseInt(sizeStr, 16);
        if (size === 0) {
            // trailer section: lines until an empty line
            let p = eol + 2;
            const trailers = [];
            for (;;) {
                const e2 = buf.indexOf(CRLF, p);
                if (e2 < 0) return { chunks, body: Buffer.concat(chunks), complete: false, consumed: off };
                if (e2 === p) return { chunks, ends, body: Buffer.concat(chunks), complete: true, consumed: e2 + 2, trailers };
                trailers.push(buf.subarray(p, e2).toString('latin1'));
                p = e2 + 2;
            }
        }
        if (buf.length < eol + 2 + size + 2) break;
        if (buf[eol + 2 + size] !== 0x0d || buf[eol + 3 + size] !== 0x0a) {
            return { chunks, body: Buffer.concat(chunks), complete: false, consumed: off, error: 'chunk not followed by CRLF' };
        }
        chunks.push(buf.subarray(eol + 2, eol + 2 + size));
        ends.push(eol + 2 + size);
        off = eol + 4 + size;
    }
    return { chunks, ends, body: Buffer.concat(chunks), complete: false, consumed: off };
}

/* Streaming chunked-body decoder for large bodies (nothing is kept): push(buf) returns the
 * decoded byte count of that piece; `done` once the 0-chunk's trailer section ended; `error`
 * on bad framing; `decoded` is the running total. */
export class ChunkedDecoder {
    constructor() { this.state = 'size'; this.line = ''; this.left = 0; this.decoded = 0; this.done = false; this.error = null; }
    push(buf) {
        let n = 0;
        for (let i = 0; i < buf.length && !this.done && !this.error;) {
            if (this.state === 'data') {
                const k = Math.min(this.left, buf.length - i);
                n += k; i += k; this.left -= k;
                if (this.left === 0) { this.state = 'crlf'; this.line = ''; }
                continue;
            }
            const c = buf[i++];
            if (c !== 0x0a) { this.line += String.fromCharCode(c); if (this.line.length > 1024) this.error = 'line too long'; continue; }
            if (!this.line.endsWith('\r')) { this.error = 'bare LF'; break; }
            const l = this.line.slice(0, -1);
            this.line = '';
            if (this.state === 'crlf') { if (l !== '') this.error = 'chunk not followed by CRLF'; this.state = 'size'; continue; }
            if (this.state === 'trailer') { if (l === '') this.done = true; continue; }
            const s = l.split(';')[0].trim();
            if (!/^[0-9a-fA-F]+$/.test(s)) { this.error = `bad chunk size ${JSON.stringify(s)}`; break; }
            this.left = parseInt(s, 16);
            this.state = this.left === 0 ? 'trailer' : 'data';
        }
        this.decoded += n;
        return n;
    }
}

/* Parse one HTTP/1.x response at buf[0].  opts.head: the request was HEAD; opts.eof: the
 * connection is closed (a close-delimited body ends here, a truncated one is returned with
 * complete=false).  Returns null when more bytes are needed, else {status, statusLine,
 * headers: [[name, value]], header(name), rawHead, rawBody (framing included), body (decoded),
 * chunks (chunked only), chunked, complete, consumed}. */
export function parseResponse(buf, opts = {}) {
    const he = buf.indexOf(HEAD_END);
    if (he < 0) {
        if (opts.eof && buf.length) return { status: 0, statusLine: '', headers: [], header: () => undefined, rawHead: buf, rawBody: Buffer.alloc(0), body: Buffer.alloc(0), complete: false, consumed: buf.length, truncatedHead: true };
        return null;
    }
    const rawHead = buf.subarray(0, he + 4);
    const lines = rawHead.toString('latin1').split('\r\n').slice(0, -2);
    const statusLine = lines[0];
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
    const status = Number(m[1]);
    const headers = lines.slice(1).map((l) => { const i = l.indexOf(':'); return [l.slice(0, i), l.slice(i + 1).trim()]; });
    const header = (n) => { const h = headers.find(([k]) => k.toLowerCase() === n.toLowerCase()); return h && h[1]; };
    const res = { status, statusLine, headers, header, rawHead, chunked: false };
    const rest = buf.subarray(he + 4);
    const te = header('transfer-encoding');
    const cl = header('content-length');
    if (opts.head || (status >= 100 && status < 200) || status === 204 || status === 304) {
        return { ...res, rawBody: Buffer.alloc(0), body: Buffer.alloc(0), complete: true, consumed: he + 4 };
    }
    if (te && /chunked/i.test(te)) {
        const c = parseChunked(rest);
        if (!c.complete && !opts.eof && !c.error) return null;
        return { ...res, chunked: true, chunks: c.chunks, body: c.body, trailers: c.trailers, rawBody: rest.subarray(0, c.complete ? c.consumed : rest.length), complete: c.complete, consumed: he + 4 + (c.complete ? c.consumed : rest.length), error: c.error };
    }
    if (cl !== undefined) {
        const n = Number(cl);
        if (rest.length < n && !opts.eof) return null;
        const b = rest.subarray(0, Math.min(n, rest.length));
        return { ...res, rawBody: b, body: b, complete: rest.length >= n, consumed: he + 4 + b.length };
    }
    if (!opts.eof) return null;      // close-delimited
    return { ...res, rawBody: rest, body: rest, complete: true, consumed: buf.length };
}

/* A client on one TCP connection.  Received bytes accumulate in `buf` (consumed responses are
 * cut off the front); `reads` records every read as {t, n} (performance.now() ms). */
export class RawClient {
    constructor(sock) {
        this.sock = sock;
        this.buf = Buffer.alloc(0);
        this.total = 0;              // bytes received in all
        this.reads = [];             // {t, n, data} per read (data kept when keepData)
        this.keepData = false;
        this.closed = false;
        this.error = null;
        this.w = makeWaiters();
        sock.on('data', (d) => {
            this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
            this.total += d.length;
            this.reads.push({ t: performance.now(), n: d.length, data: this.keepData ? d : undefined });
            this.w.notify();
        });
        sock.on('error', (e) => { this.error = e; });
        sock.on('close', () => { this.closed = true; this.w.notify(); });
    }

    /* Connect to 127.0.0.1:port. */
    static async connect(port, host = HOST, timeoutMs = WAIT_TIMEOUT_MS) {
        const sock = net.connect({ port, host });
        sock.setNoDelay(true);
        const t = setTimeout(() => sock.destroy(new Error('connect timeout')), timeoutMs);
        try {
            await once(sock, 'connect');
        } finally { clearTimeout(t); }
        return new RawClient(sock);
    }

    /* Write bytes (string as latin1 or Buffer); resolves once handed to the kernel. */
    write(data) {
        const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
        return new Promise((resolve, reject) => this.sock.write(b, (e) => (e ? reject(e) : resolve())));
    }

    /* Wait for a full response (or the connection to close) and consume it from buf.
     * opts.head: the request was HEAD.  Rejects on timeout. */
    async readResponse(opts = {}) {
        const timeoutMs = opts.timeoutMs || WAIT_TIMEOUT_MS;
        const r = await this.w.wait(() => {
            const p = parseResponse(this.buf, { head: opts.head, eof: this.closed });
            if (p) return p;
            if (this.closed) return { status: 0, closedEmpty: true, headers: [], header: () => undefined, body: Buffer.alloc(0), rawBody: Buffer.alloc(0), complete: false, consumed: 0 };
            return null;
        }, timeoutMs, 'an HTTP response');
        this.buf = this.buf.subarray(r.consumed);
        return r;
    }

    /* Wait until the peer closes; resolves to every byte not yet consumed. */
    async readUntilClose(timeoutMs = WAIT_TIMEOUT_MS) {
        await this.w.wait(() => this.closed, timeoutMs, 'the connection to close');
        const b = this.buf;
        this.buf = Buffer.alloc(0);
        return b;
    }

    /* Wait until cond(this) is true (e.g. c => c.total >= n). */
    waitFor(cond, timeoutMs = WAIT_TIMEOUT_MS, what = 'client condition') {
        return this.w.wait(() => cond(this), timeoutMs, what);
    }

    /* Wait for the peer to close. */
    waitClose(timeoutMs = WAIT_TIMEOUT_MS) { return this.w.wait(() => this.closed, timeoutMs, 'close'); }

    destroy() { this.sock.destroy(); }
    /* Abort with an RST (SO_LINGER 0) when supported, else a plain destroy. */
    reset() { if (this.sock.resetAndDestroy) this.sock.resetAndDestroy(); else this.sock.destroy(); }
}

/* Connect, send `request` bytes, read one response, close.  opts: head, timeoutMs. */
export async function rawRequest(port, request, opts = {}) {
    const c = await RawClient.connect(port);
    try {
        await c.write(request);
        return await c.readResponse(opts);
    } finally { c.destroy(); }
}

/* Build request bytes: method, path, headers ([[n, v]] or object), body (string/Buffer),
 * HTTP version ('1.1' or '1.0').
 * Adds Content-Length for a body unless a framing header is given; no other defaults. */
export function buildRequest(method, target, headers = [], body = null, version = '1.1') {
    const hs = Array.isArray(headers) ? [...headers] : Object.entries(headers);
    const b = body === null || body === undefined ? null : (typeof body === 'string' ? Buffer.from(body) : body);
    const has = (n) => hs.some(([k]) => k.toLowerCase() === n);
    if (b && !has('content-length') && !has('transfer-encoding')) hs.push(['Content-Length', String(b.length)]);
    const head = `${method} ${target} HTTP/${version}\r\n${hs.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    return b ? Buffer.concat([Buffer.from(head, 'latin1'), b]) : Buffer.from(head, 'latin1');
}

/* ------------------------------------------------------------------ HTTP helpers */

/* GET (or opts.method) http://127.0.0.1:port/path with node's http (no agent); resolves to
 * {status, headers, body (string)}. */
export function httpGet(port, urlPath, opts = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: HOST, port, path: urlPath, method: opts.method || 'GET', headers: opts.headers || {}, agent: false, timeout: opts.timeoutMs || WAIT_TIMEOUT_MS }, (res) => {
            const parts = [];
            res.on('data', (d) => parts.push(d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString() }));
            res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`timeout ${urlPath}`)));
        req.on('error', reject);
        req.end(opts.body);
    });
}

/* /metrics text of a proxy. */
export async function scrapeMetrics(px) {
    const r = await httpGet(px.metricsPort, '/metrics');
    if (r.status !== 200) throw new Error(`/metrics ${r.status}`);
    return r.body;
}

/* Value of the sample `name{labels}` in Prometheus text (labels: object, all must match, extra
 * labels allowed); sums every matching series; undefined when none matches. */
export function metricValue(text, name, labels = {}) {
    let sum;
    for (const line of text.split('\n')) {
        if (!line || line[0] === '#') continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
        if (!m || m[1] !== name) continue;
        const ls = {};
        for (const lm of (m[3] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) ls[lm[1]] = lm[2];
        if (Object.entries(labels).every(([k, v]) => ls[k] === String(v))) sum = (sum || 0) + Number(m[4]);
    }
    return sum;
}

/* Poll fn() (async ok) until it returns a truthy value; the interval is a poll period for
 * state we cannot subscribe to (metrics, /readyz), never a synchronisation sleep. */
export async function pollUntil(fn, timeoutMs = WAIT_TIMEOUT_MS, what = 'condition', intervalMs = 50) {
    const deadline = performance.now() + timeoutMs;
    let last;
    for (;;) {
        try { last = await fn(); } catch (e) { last = e; }
        if (last && !(last instanceof Error)) return last;
        if (performance.now() > deadline) throw new Error(`timeout after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
        await new Promise((r) => setTimeout(r, intervalMs));
    }
}

/* Resident set size of a pid in KiB (Linux /proc). */
export function procRssKiB(pid) {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(s);
    return m ? Number(m[1]) : NaN;
}

/* Headers as a sorted list of "name: value" with lower-case names, minus the names in `drop`
 * (lower-case) — for order-insensitive comparison. */
export function normHeaders(headers, drop = []) {
    return headers.filter(([k]) => !drop.includes(k.toLowerCase()))
        .map(([k, v]) => `${k.toLowerCase()}: ${v}`).sort();
}

/* A loopback port that was free a moment ago (bind port 0, close).  For "nothing listens
 * here" cases; a later bind of the same port may race with other programs, rarely. */
export async function freePort() {
    const s = net.createServer();
    s.listen(0, HOST);
    await once(s, 'listening');
    const { port } = s.address();
    s.close();
    await once(s, 'close');
    return port;
}

/* Values of header `name` (case-insensitive) in a simulator `request` event. */
export function evHeaders(ev, name) {
    return (ev.headers || []).filter(([k]) => k.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

/* The request bytes' Host header value for a port. */
export const hostOf = (port) => `${HOST}:${port}`;

/* Models of the simulator's default table the tests use. */
export const MODEL = 'qwen2.5:3b';
export const EMBED_MODEL = 'nomic-embed-text';
