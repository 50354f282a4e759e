// proxy_stream.test.mjs — streaming through the proxy: cadence (each chunk relayed at once),
// client cancellation (upstream closed, 499, active requests back to 0), upstream reset and
// stall mid-stream (truncated chunked body), no first-byte timeout, backpressure with a slow
// client (bounded RSS), and 1,000 concurrent streams.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, before } from 'node:test';
import {
    ChunkedDecoder, HOST, MODEL, RawClient, SLOW, WAIT_TIMEOUT_MS, buildRequest, hostOf, itest,
    metricValue, parseChunked, parseResponse, pollUntil, procRssKiB, rawRequest, scrapeMetrics,
    startProxy, startSim, startSimAndProxy, stopAll,
} from './harness.mjs';

let sim; let px;
before(async () => ({ sim, px } = await startSimAndProxy()));
after(stopAll);

const genReq = (port, fault, tag, extra = {}) => buildRequest('POST', `/api/generate?t=${tag}`, [
    ['Host', hostOf(port)], ['Content-Type', 'application/json'], ...(fault ? [['X-Sim-Fault', fault]] : []),
], JSON.stringify({ model: MODEL, prompt: 'stream test', ...extra }));

const reqEvent = (tag, since = 0) => sim.waitEvent((e) => e.event === 'request' && (e.query || '') === `t=${tag}`, WAIT_TIMEOUT_MS, since);

/* For every chunk of a chunked body, the index of the read in which its last byte arrived. */
function chunkReadIndex(c, headLen) {
    const all = Buffer.concat(c.reads.map((r) => r.data));
    const parsed = parseChunked(all.subarray(headLen));
    const cum = []; let acc = 0;
    for (const r of c.reads) { acc += r.n; cum.push(acc); }
    return parsed.ends.map((e) => cum.findIndex((x) => x >= headLen + e));
}

/* Send a streamed generate with `fault` to port; return {resp, readIdx} where readIdx[k] is
 * the read in which chunk k completed. */
async function streamReads(port, fault, tag) {
    const c = await RawClient.connect(port);
    c.keepData = true;
    try {
        await c.write(genReq(port, fault, tag));
        const r = await c.readResponse({ timeoutMs: 20000 * SLOW });
        assert.equal(r.status, 200);
        assert.ok(r.chunked && r.complete);
        return { resp: r, readIdx: chunkReadIndex(c, r.rawHead.length) };
    } finally { c.destroy(); }
}

itest('cadence: every chunk the sim spaces out reaches the client in its own read', async (t) => {
    const fault = 'chunks=6,interval-ms=300';
    const d = await streamReads(sim.port, fault, 'cad-direct');
    const p = await streamReads(px.port, fault, 'cad-proxy');
    assert.deepEqual(p.resp.chunks.map(String), d.resp.chunks.map(String), 'same chunks through the proxy');
    // pairs (k, k+1) that arrived in different reads directly must do so through the proxy too
    let separated = 0;
    for (let k = 0; k + 1 < d.readIdx.length; k++) {
        if (d.readIdx[k] === d.readIdx[k + 1]) continue;
        separated++;
        assert.notEqual(p.readIdx[k], p.readIdx[k + 1], `chunk ${k} and ${k + 1} were merged by the proxy`);
    }
    assert.ok(separated >= 5, `the sim spaced out only ${separated} chunk pairs`);
    t.diagnostic(`direct reads per chunk ${d.readIdx.join(',')}; proxy ${p.readIdx.join(',')}`);
});

itest('cancellation: a client leaving mid-stream closes the upstream, counts 499, active 0', async (t) => {
    const TOTAL = 2000;
    const c = await RawClient.connect(px.port);
    const since = sim.mark();
    const pmark = px.mark();
    await c.write(genReq(px.port, `chunks=${TOTAL},interval-ms=10`, 'cancel', { stream: true }));
    const ev = await reqEvent('cancel', since);
    await c.waitFor((cl) => { const i = cl.buf.indexOf('\r\n\r\n'); return i > 0 && parseChunked(cl.buf.subarray(i + 4)).chunks.length >= 3; });
    const t0 = performance.now();
    c.reset();
    const close = await sim.waitEvent((e) => e.event === 'close' && e.conn === ev.conn, WAIT_TIMEOUT_MS, since);
    const delay = close._t - t0;
    t.diagnostic(`upstream closed ${delay.toFixed(1)} ms after the client left; sim had sent ${close.chunks_sent} of ${TOTAL}+ chunks`);
    assert.equal(close.mid_response, true);
    assert.ok(close.chunks_sent < TOTAL / 2, `stream far from complete (${close.chunks_sent} chunks sent)`);
    const fin = await px.waitLog((o) => o.status === 499, WAIT_TIMEOUT_MS, pmark);
    assert.ok(fin);
    await pollUntil(async () => metricValue(await scrapeMetrics(px), 'litebrain_active_requests') === 0, WAIT_TIMEOUT_MS, 'litebrain_active_requests 0');
    const m = await scrapeMetrics(px);
    assert.ok(metricValue(m, 'litebrain_requests_total', { status: '499' }) >= 1, 'a 499 in litebrain_requests_total');
});

itest('cancellation before the head: a client leaving while Ollama loads closes the upstream', async () => {
    const c = await RawClient.connect(px.port);
    const since = sim.mark();
    await c.write(genReq(px.port, 'delay-head-ms=20000', 'cancel-head', { stream: true }));
    const ev = await reqEvent('cancel-head', since);
    c.destroy();
    const close = await sim.waitEvent((e) => e.event === 'close' && e.conn === ev.conn, WAIT_TIMEOUT_MS, since);
    assert.equal(close.chunks_sent || 0, 0);
    assert.equal(sim.events.slice(since).some((e) => e.event === 'response_end' && e.conn === ev.conn), false);
});

itest('upstream reset mid-stream: the client sees a truncated chunked body and a close', async () => {
    const c = await RawClient.connect(px.port);
    try {
        await c.write(genReq(px.port, 'reset-after=3,chunks=50,interval-ms=20', 'reset', { stream: true }));
        await c.waitClose();
        const r = parseResponse(c.buf, { eof: true });
        assert.equal(r.status, 200);
        assert.ok(r.chunked, 'chunked response');
        assert.equal(r.complete, false, 'no terminating 0-chunk');
        assert.ok(r.chunks.length >= 1 && r.chunks.length <= 3, `${r.chunks.length} chunks before the cut`);
        assert.equal(r.error, undefined, `framing intact up to the cut: ${r.error}`);
    } finally { c.destroy(); }
});

itest('idle timeout: a stalled stream is cut; a slow head is not a timeout', async () => {
    const p2 = await startProxy(['--upstream-idle-timeout', '0.5'], {}, { sim });
    const since = sim.mark();
    const c = await RawClient.connect(p2.port);
    try {
        await c.write(genReq(p2.port, 'stall-after=2,chunks=50,interval-ms=20', 'stall', { stream: true }));
        const ev = await reqEvent('stall', since);
        await c.waitClose(WAIT_TIMEOUT_MS);
        const r = parseResponse(c.buf, { eof: true });
        assert.equal(r.status, 200);
        assert.equal(r.complete, false, 'cut without the terminating chunk');
        assert.equal(r.chunks.length, 2);
        const close = await sim.waitEvent((e) => e.event === 'close' && e.conn === ev.conn, WAIT_TIMEOUT_MS, since);
        assert.equal(close.mid_response, true);
    } finally { c.destroy(); }

    // no first-byte timeout: the head comes 3x the idle timeout later and all is well
    const r = await rawRequest(p2.port, genReq(p2.port, 'delay-head-ms=1500', 'slowhead', { stream: false }), { timeoutMs: 20000 * SLOW });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).done, true);
});

itest('idle timeout counts from the last read: a stream slower in total than the timeout, with shorter gaps, completes', async () => {
    // 8 token lines and the final one, 0.2 s apart, through a 0.5 s idle timeout: 1.6 s in
    // all, so a timer that went off at the first deadline instead of the latest would cut it
    const p2 = await startProxy(['--upstream-idle-timeout', '0.5'], {}, { sim });
    const r = await rawRequest(p2.port, genReq(p2.port, 'chunks=8,interval-ms=200', 'slowlines', { stream: true }),
        { timeoutMs: 20000 * SLOW });
    assert.equal(r.status, 200);
    assert.equal(r.complete, true, 'ended with the terminating chunk');
    const lines = r.body.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.equal(lines.length, 9);
    assert.equal(lines.at(-1).done, true);
});

itest('backpressure: a paused client does not grow the proxy; then it gets all 100 MiB', async (t) => {
    const N = 100 * 1024 * 1024;
    const BOUND_KIB = 64 * 1024;
    // ASan keeps freed blocks in a 256 MiB quarantine, which RSS would count as growth
    const asan = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=0'].filter(Boolean).join(':');
    const px = await startProxy([], { ASAN_OPTIONS: asan }, { sim });
    const rss0 = procRssKiB(px.pid);
    const sock = net.connect({ host: HOST, port: px.port });
    await new Promise((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
    let head = Buffer.alloc(0); let resp = null; let dec = null; let raw = 0; let ended = false;
    const done = new Promise((resolve, reject) => {
        sock.on('data', (d) => {
            if (!resp) {
                head = Buffer.concat([head, d]);
                const i = head.indexOf('\r\n\r\n');
                if (i < 0) return;
                resp = parseResponse(head.subarray(0, i + 4), { head: true });
                dec = resp.header('transfer-encoding') ? new ChunkedDecoder() : null;
                d = head.subarray(i + 4);
            }
            raw += d.length;
            if (dec) dec.push(d);
            if (dec ? dec.done || dec.error : raw >= N) resolve();
        });
        sock.on('close', () => { ended = true; resolve(); });
        sock.on('error', reject);
    });
    sock.write(genReq(px.port, `bytes=${N}`, 'bp', { stream: true }));
    sock.pause();
    // measurement window while paused: the sim could push 100 MiB in well under a second
    let max = rss0;
    for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 100));
        max = Math.max(max, procRssKiB(px.pid));
    }
    sock.resume();
    const timer = setInterval(() => { max = Math.max(max, procRssKiB(px.pid)); }, 100);
    const guard = setTimeout(() => sock.destroy(new Error('backpressure transfer timeout')), 60000);
    try { await done; } finally { clearInterval(timer); clearTimeout(guard); sock.destroy(); }
    t.diagnostic(`proxy RSS ${rss0} KiB at start, max ${max} KiB (+${max - rss0} KiB) with a 100 MiB stream`);
    assert.ok(resp && resp.status === 200, 'a 200 head');
    assert.equal(ended && !(dec ? dec.done : raw >= N), false, 'stream not cut');
    if (dec) { assert.equal(dec.error, null); assert.equal(dec.decoded, N); } else assert.equal(raw, N);
    assert.ok(max - rss0 < BOUND_KIB, `proxy RSS grew ${max - rss0} KiB (bound ${BOUND_KIB})`);
});

function readLimit() {
    const m = /Max open files\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : 0;
}

itest('1,000 concurrent streams all complete with the right bytes', { timeout: 120000 }, async (t) => {
    const N = 1000;
    if (readLimit() < 4 * N + 200) { t.skip(`open-file limit ${readLimit()} too low`); return; }
    const big = await startSim(['--parallel', String(N), '--max-queue', String(N)]);
    const p = await startProxy([], {}, { sim: big });
    const agent = new http.Agent({ keepAlive: false, maxSockets: 2 * N });
    const post = (port, i) => new Promise((resolve, reject) => {
        const body = JSON.stringify({ model: MODEL, prompt: `concurrent ${i % 10}`, stream: true });
        const req = http.request({ host: HOST, port, path: '/api/generate', method: 'POST', agent,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
            const parts = [];
            res.on('data', (d) => parts.push(d));
            res.on('end', () => resolve({ status: res.statusCode, level: res.headers['x-litebrain-level'], body: Buffer.concat(parts).toString() }));
            res.on('error', reject);
        });
        req.setTimeout(60000, () => req.destroy(new Error(`request ${i} timed out`)));
        req.on('error', reject);
        req.end(body);
    });
    try {
        const expect = [];
        for (let i = 0; i < 10; i++) expect.push(await post(big.port, i));
        const t0 = performance.now();
        const res = await Promise.all(Array.from({ length: N }, (_, i) => post(p.port, i)));
        t.diagnostic(`${N} streams through the proxy in ${(performance.now() - t0).toFixed(0)} ms`);
        let bad = 0;
        res.forEach((r, i) => {
            if (r.status !== 200 || r.body !== expect[i % 10].body || !r.level) bad++;
        });
        assert.equal(bad, 0, `${bad} of ${N} streams wrong`);
        assert.ok(expect[0].body.split('\n').filter(Boolean).length > 2, 'streamed in several chunks');
    } finally { agent.destroy(); }
});
