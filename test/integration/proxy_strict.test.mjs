// proxy_strict.test.mjs — HTTP/1.1 corners a review found wrong (each test fails on the proxy
// before its fix): bodiless statuses that carry framing headers, error answers to HEAD, the
// 100-continue of a chunked upload, field names that are not tokens, Host rules, transfer
// codings we cannot decode, absolute-form and asterisk-form targets, Connection on several
// lines, an early answer followed by a reset, a 413 to an upload still being sent (lingering
// close), a pipelining client that never reads, and upstream connects that fail at once
// (EMFILE) for many pipelined requests.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after } from 'node:test';
import {
    PROXY_BIN, RawClient, buildRequest, hostOf, httpGet, itest, rawRequest, startProxy, stopAll,
    WAIT_TIMEOUT_MS,
} from './harness.mjs';

after(stopAll);

/* A scripted upstream: answer(head, sock, n) is called for each request head (bodies are read
 * by Content-Length only); it writes whatever it likes.  Records each head in up.heads. */
async function scriptedUpstream(answer) {
    const up = { heads: [], socks: new Set() };
    const srv = net.createServer((sock) => {
        up.socks.add(sock);
        sock.on('close', () => up.socks.delete(sock));
        sock.on('error', () => {});
        let buf = Buffer.alloc(0);
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            for (;;) {
                const end = buf.indexOf('\r\n\r\n');
                if (end < 0) return;
                const head = buf.subarray(0, end).toString('latin1');
                const m = /\r\ncontent-length: *(\d+)/i.exec(head);
                const len = m ? Number(m[1]) : 0;
                if (buf.length < end + 4 + len && !up.early) return;
                buf = buf.subarray(Math.min(buf.length, end + 4 + len));
                up.heads.push(head);
                answer(head, sock, up.heads.length);
                if (sock.destroyed) return;
            }
        });
    });
    await new Promise((res) => srv.listen(0, '127.0.0.1', res));
    up.url = `http://127.0.0.1:${srv.address().port}`;
    up.close = () => new Promise((res) => { for (const s of up.socks) s.destroy(); srv.close(res); });
    return up;
}

const get = (port, target, extra = []) => buildRequest('GET', target, [['Host', hostOf(port)], ...extra]);
const ok = (sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');

itest('204, 304 and 1xx end at the blank line even when they carry Content-Length', async () => {
    const up = await scriptedUpstream((head, sock) => {
        if (head.startsWith('GET /304')) sock.write('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n');
        else if (head.startsWith('GET /204')) sock.write('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n');
        else if (head.startsWith('GET /1xx')) sock.write('HTTP/1.1 102 Processing\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nfin');
        else ok(sock);
    });
    try {
        const p = await startProxy([], {}, { upstream: up.url });
        const c = await RawClient.connect(p.port);
        try {
            await c.write(Buffer.concat([get(p.port, '/304'), get(p.port, '/204'), get(p.port, '/1xx'), get(p.port, '/ok')]));
            const a = await c.readResponse();
            assert.equal(a.status, 304);
            assert.equal(a.header('content-length'), '1234');      // kept: it describes the 200
            assert.equal(a.body.length, 0);
            const b = await c.readResponse();
            assert.equal(b.status, 204);
            assert.equal(b.header('content-length'), undefined);   // a 204 carries none
            const d = await c.readResponse();
            assert.equal(d.status, 200);
            assert.equal(d.body.toString(), 'fin');                // the 1xx's "body" was not relayed
            const e = await c.readResponse();
            assert.equal(e.status, 200);
            assert.equal(e.body.toString(), 'ok');                 // the pipelined request after them
            assert.equal(c.buf.length, 0);
        } finally { c.destroy(); }
    } finally { await up.close(); }
});

itest("the proxy's own error answer to HEAD has no content, and the connection stays in step", async () => {
    const dead = await new Promise((res) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const port = s.address().port; s.close(() => res(port)); }); });
    const p = await startProxy([], {}, { upstream: `http://127.0.0.1:${dead}` });
    const c = await RawClient.connect(p.port);
    try {
        await c.write(Buffer.concat([buildRequest('HEAD', '/api/tags', [['Host', hostOf(p.port)]]), get(p.port, '/api/tags')]));
        const a = await c.readResponse({ head: true });
        assert.equal(a.status, 502);
        assert.equal(a.body.length, 0);
        const b = await c.readResponse();
        assert.equal(b.status, 502);                               // parsed from the right place
        assert.equal(typeof JSON.parse(b.body).error, 'string');
    } finally { c.destroy(); }
});

itest('errors found in the header section of a /v1/ request (or an alias) use the OpenAI shape', async () => {
    const up = await scriptedUpstream((head, sock) => ok(sock));
    try {
        const p = await startProxy(['--max-header-bytes', '2048', '--header-timeout', '0.3'], {}, { upstream: up.url });
        const host = `Host: ${hostOf(p.port)}\r\n`;
        const cases = [
            ['two Content-Lengths', `POST /v1/chat/completions HTTP/1.1\r\n${host}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}`, 400],
            ['Content-Length with Transfer-Encoding', `POST /chat/completions HTTP/1.1\r\n${host}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`, 400],
            ['a bare LF', `GET /v1/models HTTP/1.1\r\n${host}X-A: 1\nX-B: 2\r\n\r\n`, 400],
            ['a field name with a space', `GET /models HTTP/1.1\r\n${host}X A: 1\r\n\r\n`, 400],
            ['headers over the limit', `GET /v1/models HTTP/1.1\r\n${host}X-Big: ${'b'.repeat(4096)}\r\n\r\n`, 431],
            ['a transfer coding other than chunked', `POST /v1/embeddings HTTP/1.1\r\n${host}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 501],
        ];
        for (const [what, raw, status] of cases) {
            const r = await rawRequest(p.port, Buffer.from(raw, 'latin1'));
            assert.equal(r.status, status, what);
            const e = JSON.parse(r.body).error;
            assert.equal(typeof e.message, 'string', `OpenAI shape: ${what}`);
            assert.equal(typeof e.type, 'string', `OpenAI shape: ${what}`);
            if (status === 501) assert.match(e.message, /transfer coding/);
        }
        // the head never completes: 408, in the OpenAI shape once the request line was read
        const c = await RawClient.connect(p.port);
        try {
            await c.write(`POST /v1/chat/completions HTTP/1.1\r\n${host}X-Slow: 1\r\n`);
            const r = await c.readResponse();
            assert.equal(r.status, 408);
            assert.equal(typeof JSON.parse(r.body).error.message, 'string');
        } finally { c.destroy(); }
        // and the Ollama shape on /api/...
        const r = await rawRequest(p.port, Buffer.from(`GET /api/tags HTTP/1.1\r\n${host}X-A: 1\nX-B: 2\r\n\r\n`, 'latin1'));
        assert.equal(r.status, 400);
        assert.equal(typeof JSON.parse(r.body).error, 'string');
        assert.equal(up.heads.length, 0, 'nothing was forwarded');
    } finally { await up.close(); }
});

itest('a scored request the proxy answers itself (upstream down) still carries its X-LiteBrain-* headers', async () => {
    const dead = await new Promise((res) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const port = s.address().port; s.close(() => res(port)); }); });
    const p = await startProxy([], {}, { upstream: `http://127.0.0.1:${dead}` });
    let r = await rawRequest(p.port, buildRequest('POST', '/api/generate', [['Host', hostOf(p.port)]],
        '{"model":"m","prompt":"refactor the architecture of this design"}'));
    assert.equal(r.status, 502);
    assert.match(r.header('x-litebrain-complexity') || '', /^\d+$/);
    assert.match(r.header('x-litebrain-level') || '', /^(low|medium|high)$/);
    r = await rawRequest(p.port, get(p.port, '/api/tags'));   // not scored: no such headers
    assert.equal(r.status, 502);
    assert.equal(r.header('x-litebrain-complexity'), undefined);
});

itest('Expect: 100-continue on a chunked upload gets 100 Continue before the body is sent', async () => {
    const up = await scriptedUpstream((head, sock) => ok(sock));
    try {
        const p = await startProxy([], {}, { upstream: up.url });
        const c = await RawClient.connect(p.port);
        try {
            await c.write(buildRequest('POST', '/api/generate', [['Host', hostOf(p.port)], ['Transfer-Encoding', 'chunked'], ['Expect', '100-continue']]));
            await c.waitFor((x) => x.buf.toString('latin1').includes('\r\n\r\n'), WAIT_TIMEOUT_MS, 'the 100');
            assert.match(c.buf.toString('latin1'), /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
            c.buf = Buffer.alloc(0);
            await c.write('2\r\n{}\r\n0\r\n\r\n');
            const r = await c.readResponse();
            assert.equal(r.status, 200);
        } finally { c.destroy(); }
    } finally { await up.close(); }
});

itest('field names with whitespace, a bad Host, codings we cannot decode and versions other than 1.x are refused; nothing is forwarded', async () => {
    const up = await scriptedUpstream((head, sock) => ok(sock));
    try {
        const p = await startProxy([], {}, { upstream: up.url });
        const H = ['Host', hostOf(p.port)];
        const cases = [
            [buildRequest('GET', '/a', [H, ['Host ', 'evil.example']]), 400, 'whitespace before the colon'],
            [buildRequest('GET', '/a', [H, ['X-Forwarded-For ', '10.9.9.9']]), 400, 'a spoofed X-Forwarded-For'],
            [buildRequest('GET', '/a', [H, ['Transfer Encoding', 'chunked']]), 400, 'a space inside a name'],
            [buildRequest('GET', '/a', []), 400, 'no Host in HTTP/1.1'],
            [buildRequest('GET', '/a', [H, H]), 400, 'two Host lines'],
            [buildRequest('GET', '/a', [['Host', 'a b/c']]), 400, 'an invalid Host value'],
            [buildRequest('POST', '/a', [H, ['Transfer-Encoding', 'gzip, chunked']], '2\r\n{}\r\n0\r\n\r\n'), 501, 'gzip before chunked'],
            [buildRequest('POST', '/a', [H, ['Transfer-Encoding', 'chunked']], '2\r\n{}\r\n0\r\n\r\n', '1.0'), 400, 'HTTP/1.0 with Transfer-Encoding'],
            [Buffer.from(`GET /a\r\n${H[0]}: ${H[1]}\r\n\r\n`), 400, 'no version (llhttp reads HTTP/0.9)'],
            [buildRequest('GET', '/a', [H], null, '2.0'), 505, 'an HTTP/2.0 request line'],
        ];
        for (const [req, status, what] of cases) {
            const r = await rawRequest(p.port, req);
            assert.equal(r.status, status, what);
        }
        assert.equal(up.heads.length, 0, `forwarded: ${up.heads.join(' | ')}`);
        const r = await rawRequest(p.port, buildRequest('GET', '/a', [], null, '1.0'));
        assert.equal(r.status, 200, 'HTTP/1.0 may omit Host');
    } finally { await up.close(); }
});

itest('absolute-form targets are forwarded in origin-form, OPTIONS * as it is', async () => {
    const up = await scriptedUpstream((head, sock) => ok(sock));
    try {
        const p = await startProxy([], {}, { upstream: up.url });
        const H = ['Host', hostOf(p.port)];
        for (const [target, want] of [['http://x.example/api/tags?a=1', 'GET /api/tags?a=1 '], ['HTTP://x.example:80', 'GET / '], ['https://x.example?q', 'GET /?q ']]) {
            const r = await rawRequest(p.port, buildRequest('GET', target, [H]));
            assert.equal(r.status, 200, target);
            assert.ok(up.heads.at(-1).startsWith(want), `${target} went up as ${up.heads.at(-1).split('\r\n')[0]}`);
        }
        const r = await rawRequest(p.port, buildRequest('OPTIONS', '*', [H]));
        assert.equal(r.status, 200);
        assert.ok(up.heads.at(-1).startsWith('OPTIONS * HTTP/1.1\r\n'));
        assert.equal((await rawRequest(p.port, buildRequest('GET', '*', [H]))).status, 400, 'only OPTIONS takes *');
    } finally { await up.close(); }
});

itest('every Connection line counts: the headers any of them names are dropped both ways', async () => {
    const up = await scriptedUpstream((head, sock) => sock.write('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: X-Hop-Resp\r\nX-Hop-Resp: secret\r\nContent-Length: 2\r\n\r\nok'));
    try {
        const p = await startProxy([], {}, { upstream: up.url });
        const r = await rawRequest(p.port, get(p.port, '/a', [['Connection', 'keep-alive'], ['Connection', 'X-Hop-Req'], ['X-Hop-Req', 'secret']]));
        assert.equal(r.status, 200);
        assert.doesNotMatch(up.heads[0], /x-hop-req/i);
        assert.equal(r.header('x-hop-resp'), undefined);
    } finally { await up.close(); }
});

itest('a response field name with whitespace is not relayed: 502', async () => {
    const up = await scriptedUpstream((head, sock) => sock.write('HTTP/1.1 200 OK\r\nX-Resp : 1\r\nContent-Length: 2\r\n\r\nok'));
    try {
        const p = await startProxy([], {}, { upstream: up.url });
        assert.equal((await rawRequest(p.port, get(p.port, '/a'))).status, 502);
    } finally { await up.close(); }
});

itest('an upstream that answers early and resets: its answer reaches the client, the POST is sent once', async () => {
    const big = Buffer.alloc(8 << 20, 0x61);
    const up = await scriptedUpstream((head, sock) => {
        if (head.startsWith('POST')) {
            sock.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{"error":"big"}');
            sock.resetAndDestroy ? setImmediate(() => sock.resetAndDestroy()) : sock.destroy();
        } else ok(sock);
    });
    up.early = true;                            // answer at the head, before the body arrives
    try {
        const p = await startProxy(['--max-body', '64MiB'], {}, { upstream: up.url });
        for (let i = 0; i < 3; i++) {
            assert.equal((await rawRequest(p.port, get(p.port, '/warm'))).status, 200);   // a pooled connection to reuse
            const n = up.heads.length;
            const r = await rawRequest(p.port, buildRequest('POST', '/api/generate', [['Host', hostOf(p.port)]], big), { timeoutMs: 30000 });
            assert.equal(r.status, 413, `round ${i}`);
            assert.equal(up.heads.slice(n).filter((h) => h.startsWith('POST')).length, 1, `round ${i}: sent once`);
        }
    } finally { await up.close(); }
});

itest('a 413 to an upload in progress arrives intact: the proxy lingers instead of resetting', async () => {
    const up = await scriptedUpstream((head, sock) => ok(sock));
    try {
        const p = await startProxy(['--max-body', '1KiB'], {}, { upstream: up.url });
        const c = await RawClient.connect(p.port);
        try {
            await c.write(`POST /api/generate HTTP/1.1\r\nHost: ${hostOf(p.port)}\r\nContent-Length: ${8 << 20}\r\n\r\n`);
            const r = await c.readResponse();
            assert.equal(r.status, 413);
            assert.equal(r.header('connection'), 'close');
            // the client goes on sending the body it announced; a reset would fail these writes
            for (let i = 0; i < 16; i++) await c.write(Buffer.alloc(256 << 10, 0x61));
            c.sock.end();
            await c.waitClose();
            assert.equal(c.error, null, `the client saw ${c.error && c.error.code}`);
            assert.equal(up.heads.length, 0);
        } finally { c.destroy(); }
    } finally { await up.close(); }
});

itest('a client that pipelines and never reads: the proxy stops answering at the watermark', async () => {
    const body = 'x'.repeat(32768);
    const up = await scriptedUpstream((head, sock) => sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
    try {
        const p = await startProxy(['--idle-timeout', '2'], {}, { upstream: up.url });
        const N = 2000;                         // 64 MiB of answers if all were produced
        const sock = net.connect({ port: p.port, host: '127.0.0.1' });
        sock.on('error', () => {});
        sock.pause();                           // never read
        await new Promise((res) => sock.on('connect', res));
        sock.write(get(p.port, '/api/tags').toString('latin1').repeat(N), 'latin1');
        await p.waitLog((o) => o.msg === 'client stopped reading' && o.pipelined === true, 30000);
        sock.destroy();
        assert.ok(up.heads.length > 0);
        assert.ok(up.heads.length < N / 4, `${up.heads.length} of ${N} requests were answered into a full buffer`);
    } finally { await up.close(); }
});

itest('many pipelined requests whose upstream connects fail at once (EMFILE): a 502 each, no crash, no accept spin', async () => {
    const up = await scriptedUpstream((head, sock) => ok(sock));
    // why prlimit: the proxy itself must run out of descriptors (40: its own need ~10)
    const px = spawn('prlimit', ['--nofile=40:40', '--', PROXY_BIN, '--listen', '127.0.0.1:0',
        '--metrics-listen', '127.0.0.1:0', '--upstream', up.url, '--log-level', 'info'],
        { env: { ...process.env, LITEBRAIN_CONTROLLER: 'off' }, stdio: ['ignore', 'ignore', 'pipe'] });
    const logs = []; let waiters = [];
    let partial = '';
    px.stderr.on('data', (d) => {
        const lines = (partial + d.toString()).split('\n'); partial = lines.pop();
        for (const l of lines) { try { logs.push(JSON.parse(l)); } catch { logs.push({ raw: l }); } }
        waiters = waiters.filter((w) => !w());
    });
    const waitLog = (pred, what) => new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`timeout waiting for ${what}`)), WAIT_TIMEOUT_MS);
        const w = () => { const l = logs.find(pred); if (l) { clearTimeout(t); res(l); return true; } return false; };
        if (!w()) waiters.push(w);
    });
    const fillers = [];
    try {
        const { port } = await waitLog((o) => o.msg === 'listening' && o.port, 'listening');
        const a = await RawClient.connect(port);
        for (let i = 0; i < 50; i++) {          // more than the proxy can accept
            const f = net.connect({ port, host: '127.0.0.1' });
            f.on('error', () => {});
            fillers.push(f);
            await new Promise((res) => f.on('connect', res));
        }
        await waitLog((o) => o.msg === 'accept paused', 'the listener to pause at EMFILE');
        const N = 3000, M = 20;                 // M scored requests: scored after the failed send
        const gen = buildRequest('POST', '/api/generate', [['Host', hostOf(port)]],
            '{"model":"m","prompt":"refactor the design"}');
        await a.write(get(port, '/api/tags').toString('latin1').repeat(N) + gen.toString('latin1').repeat(M));
        await a.waitFor((c) => c.closed || (c.buf.toString('latin1').match(/HTTP\/1\.1 502 /g) || []).length >= N + M,
            60000, `${N + M} answers`);
        assert.equal((a.buf.toString('latin1').match(/HTTP\/1\.1 502 /g) || []).length, N + M);
        assert.equal(px.exitCode, null, 'the proxy is still running');
        assert.equal(px.signalCode, null);
        // the listener pauses instead of spinning: a handful of "accept paused" lines, not thousands
        assert.ok(logs.filter((o) => o.msg === 'accept paused' || o.msg === 'accept failed').length < 200);
        a.destroy();
        for (const f of fillers) f.destroy();
        // every request was counted once and scored once, and none is left in flight
        const { metrics_port: mport } = logs.find((o) => o.msg === 'listening');
        const m = await httpGet(mport, '/metrics');   // queued in the backlog until accepted
        const val = (re) => Number((re.exec(m.body) || [])[1]);
        assert.equal(val(/^litebrain_active_requests (\S+)$/m), 0);
        assert.equal(val(/^litebrain_request_complexity_count (\S+)$/m), M);
        const by502 = [...m.body.matchAll(/^litebrain_requests_total\{[^}]*status="502"[^}]*\} (\S+)$/gm)]
            .reduce((s, x) => s + Number(x[1]), 0);
        assert.equal(by502, N + M);
    } finally {
        for (const f of fillers) f.destroy();
        px.kill('SIGKILL');
        await up.close();
    }
});
