// proxy_http.test.mjs — HTTP/1.1 handling at the proxy's edges: upstream keep-alive reuse,
// pipelining, chunked uploads, Expect: 100-continue, the 408/413/431 limits, request-smuggling
// shapes → 400 + close, upstream down → 502 (Ollama and OpenAI error shapes), Host rewrite,
// X-Forwarded-For, hop-by-hop headers, path aliases, the stale-connection retry.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import { after, before } from 'node:test';
import path from 'node:path';
import {
    BUILD, HOST, MODEL, PROXY_BIN, RawClient, buildRequest, evHeaders, freePort, hostOf, itest,
    rawRequest, startProxy, startSimAndProxy, stopAll, WAIT_TIMEOUT_MS,
} from './harness.mjs';

let sim; let px;
before(async () => ({ sim, px } = await startSimAndProxy()));
after(stopAll);

const json = (o) => JSON.stringify(o);
const chatBody = (content = 'hello there') => json({ model: MODEL, messages: [{ role: 'user', content }], stream: false });

/* The sim's `request` events for `path` logged at or after index `since`. */
const requestsSince = (since, pred = () => true) => sim.events.slice(since).filter((e) => e.event === 'request' && pred(e));

/* A request whose arrival at the sim proves every earlier request through the proxy had its
 * chance to arrive too (sequencing for "nothing was forwarded" assertions). */
async function sentinel(tag) {
    const since = sim.mark();
    const r = await rawRequest(px.port, buildRequest('GET', `/api/version?sentinel=${tag}`, [['Host', hostOf(px.port)]]));
    assert.equal(r.status, 200);
    await sim.waitEvent((e) => e.event === 'request' && e.query && e.query.includes(`sentinel=${tag}`), WAIT_TIMEOUT_MS, since);
}

itest('the listening line says whether reads and sends are batched through io_uring; --io-uring off turns it off', async () => {
    const l = px.logs.find((o) => o.msg === 'listening');
    assert.equal(typeof l.io_uring, 'boolean');
    if (process.env.LITEBRAIN_IO_URING === 'off')
        assert.equal(l.io_uring, false, 'the plain-system-call run must really be plain');
    const off = await startProxy(['--io-uring', 'off', '--drain-seconds', '0'], {}, { sim });
    try {
        assert.equal(off.logs.find((o) => o.msg === 'listening').io_uring, false);
        const r = await rawRequest(off.port, buildRequest('GET', '/api/version', [['Host', hostOf(off.port)]]));
        assert.equal(r.status, 200);
    } finally {
        await off.stop();
    }
});

itest('where a seccomp profile refuses io_uring (Docker 25+, containerd 2.0+ defaults): one info line, io_uring false, requests served', async (t) => {
    const wrap = path.join(BUILD, 'no-io-uring');
    if (spawnSync(wrap, ['true'], { stdio: 'ignore' }).status !== 0) {
        t.skip('this sandbox does not let a process install a seccomp filter');
        return;
    }
    const p = await startProxy([PROXY_BIN, '--listen', `${HOST}:0`, '--metrics-listen', `${HOST}:0`,
        '--upstream', sim.url, '--log-level', 'info', '--drain-seconds', '0', '--io-uring', 'auto'],
        {}, { bin: wrap, raw: true });   // auto: it must try, even in the LITEBRAIN_IO_URING=off run
    try {
        const why = p.logs.find((o) => o.msg === 'io_uring unavailable: plain system calls');
        assert.ok(why, 'the reason is logged');
        assert.equal(why.error, 'Operation not permitted');
        assert.equal(p.logs.find((o) => o.msg === 'listening').io_uring, false);
        const body = JSON.stringify({ model: MODEL, prompt: 'design a cache', stream: false });
        const r = await rawRequest(p.port, buildRequest('POST', '/api/generate',
            [['Host', hostOf(p.port)], ['Content-Type', 'application/json']], body));
        assert.equal(r.status, 200);
        assert.match(r.header('X-LiteBrain-Level') || '', /^(low|medium|high)$/, 'scored');
        assert.equal(JSON.parse(r.body.toString()).done, true);
    } finally {
        await p.stop();
    }
});

itest('two sequential requests through the proxy reuse one upstream connection', async () => {
    const since = sim.mark();
    for (const tag of ['ka1', 'ka2']) {
        const r = await rawRequest(px.port, buildRequest('GET', `/api/version?${tag}`, [['Host', hostOf(px.port)]]));
        assert.equal(r.status, 200);
    }
    await sim.waitEvent((e) => e.event === 'request' && e.query === 'ka2', WAIT_TIMEOUT_MS, since);
    const reqs = requestsSince(since, (e) => /ka[12]/.test(e.query || ''));
    assert.equal(reqs.length, 2);
    assert.equal(reqs[0].conn, reqs[1].conn, 'both requests on the same upstream connection');
});

itest('pipelined requests in one write get two correct responses in order', async () => {
    const c = await RawClient.connect(px.port);
    try {
        const h = [['Host', hostOf(px.port)]];
        await c.write(Buffer.concat([
            buildRequest('GET', '/api/version', h),
            buildRequest('POST', '/api/chat', [...h, ['Content-Type', 'application/json']], chatBody('first')),
            buildRequest('GET', '/api/tags', h),
        ]));
        const r1 = await c.readResponse();
        const r2 = await c.readResponse();
        const r3 = await c.readResponse();
        assert.equal(r1.status, 200); assert.ok('version' in JSON.parse(r1.body));
        assert.equal(r2.status, 200); assert.ok(JSON.parse(r2.body).message);
        assert.equal(r3.status, 200); assert.ok(Array.isArray(JSON.parse(r3.body).models));
    } finally { c.destroy(); }
});

itest('a chunked upload reaches the sim with Content-Length and no Transfer-Encoding', async () => {
    const body = Buffer.from(chatBody('chunked upload body'));
    const parts = [body.subarray(0, 10), body.subarray(10, 25), body.subarray(25)];
    const chunked = Buffer.concat([...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]), Buffer.from('0\r\n\r\n')]);
    const since = sim.mark();
    const r = await rawRequest(px.port, buildRequest('POST', '/api/chat?chunked=1',
        [['Host', hostOf(px.port)], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']], chunked));
    assert.equal(r.status, 200);
    const ev = await sim.waitEvent((e) => e.event === 'request' && (e.query || '').includes('chunked=1'), WAIT_TIMEOUT_MS, since);
    assert.deepEqual(evHeaders(ev, 'content-length'), [String(body.length)]);
    assert.deepEqual(evHeaders(ev, 'transfer-encoding'), []);
    assert.equal(ev.body_len, body.length);
});

itest('trailer fields of a chunked upload are dropped, not merged into the forwarded head', async () => {
    // RFC 9112 §7.1.2: a recipient that removes the chunked coding must not merge trailer
    // fields into the header section; the proxy forwards a Content-Length request, so it drops them
    const body = Buffer.from(chatBody('with trailers'));
    const trailers = 'X-Trailer: t\r\nX-Forwarded-For: 6.6.6.6\r\nContent-Type: text/evil\r\nHost: evil\r\n';
    const chunked = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from(`\r\n0\r\n${trailers}\r\n`)]);
    const since = sim.mark();
    const r = await rawRequest(px.port, buildRequest('POST', '/api/chat?trailers=1',
        [['Host', hostOf(px.port)], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']], chunked));
    assert.equal(r.status, 200, r.statusLine);
    const ev = await sim.waitEvent((e) => e.event === 'request' && (e.query || '').includes('trailers=1'), WAIT_TIMEOUT_MS, since);
    assert.deepEqual(evHeaders(ev, 'x-trailer'), []);
    assert.deepEqual(evHeaders(ev, 'x-forwarded-for'), ['127.0.0.1']);
    assert.deepEqual(evHeaders(ev, 'content-type'), ['application/json']);
    assert.equal(ev.body, body.toString());
});

itest('Expect: 100-continue with a 2 MiB body gets 100 Continue before the body is sent', async () => {
    const prompt = 'word '.repeat(2 * 1024 * 1024 / 5);
    const body = Buffer.from(json({ model: MODEL, prompt, stream: false }));
    assert.ok(body.length >= 2 * 1024 * 1024);
    const c = await RawClient.connect(px.port);
    try {
        const head = buildRequest('POST', '/api/generate', [['Host', hostOf(px.port)], ['Content-Type', 'application/json'],
            ['Content-Length', String(body.length)], ['Expect', '100-continue']]);
        await c.write(head);
        const cont = await c.readResponse();
        assert.equal(cont.status, 100, 'interim 100 Continue before any body byte');
        await c.write(body);
        const r = await c.readResponse({ timeoutMs: 30000 });
        assert.equal(r.status, 200);
        assert.ok(JSON.parse(r.body).done);
    } finally { c.destroy(); }
});

itest('limits: 413 over --max-body, 431 over --max-header-bytes (the target alone too), 408 on a slow head', async () => {
    const lim = await startProxy(['--max-body', '1KiB', '--max-header-bytes', '4096', '--header-timeout', '0.5'], {}, { sim });
    const h = [['Host', hostOf(lim.port)], ['Content-Type', 'application/json']];
    const big = Buffer.from(json({ model: MODEL, prompt: 'x'.repeat(2048) }));
    const since = sim.mark();

    let r = await rawRequest(lim.port, buildRequest('POST', '/api/generate?lim=413', h, big));
    assert.equal(r.status, 413);
    assert.equal(typeof JSON.parse(r.body).error, 'string');

    // chunked body over the limit, and an announced length over it with Expect (no 100 first)
    const ch = Buffer.concat([Buffer.from(`${big.length.toString(16)}\r\n`), big, Buffer.from('\r\n0\r\n\r\n')]);
    r = await rawRequest(lim.port, buildRequest('POST', '/api/generate?lim=413c', [...h, ['Transfer-Encoding', 'chunked']], ch));
    assert.equal(r.status, 413);
    r = await rawRequest(lim.port, buildRequest('POST', '/v1/chat/completions?lim=413e', [...h, ['Content-Length', String(big.length)], ['Expect', '100-continue']]));
    assert.equal(r.status, 413, 'an over-limit Content-Length with Expect is refused without 100 Continue');
    assert.equal(typeof JSON.parse(r.body).error.message, 'string', 'OpenAI error shape on /v1/*');

    r = await rawRequest(lim.port, buildRequest('GET', '/api/tags?lim=431', [...h, ['X-Big', 'a'.repeat(8192)]]));
    assert.equal(r.status, 431);
    assert.equal(typeof JSON.parse(r.body).error, 'string');
    // a request-target that alone exceeds the limit: 431 too (DESIGN: "request head larger →
    // 431"), in the OpenAI shape when the target is a /v1/ one or an alias of one
    r = await rawRequest(lim.port, buildRequest('GET', `/api/tags?lim=431u&q=${'u'.repeat(8192)}`, h));
    assert.equal(r.status, 431);
    assert.equal(typeof JSON.parse(r.body).error, 'string');
    for (const t of ['/v1/models', '/models', 'http://example/v1/models',
        `HTTP://${'a'.repeat(40)}.example:11434/chat/completions`]) {  // the authority is no part of the path
        r = await rawRequest(lim.port, buildRequest('GET', `${t}?q=${'u'.repeat(8192)}`, h));
        assert.equal(r.status, 431, t);
        assert.equal(typeof JSON.parse(r.body).error.message, 'string', `OpenAI error shape for ${t}`);
    }
    for (const t of ['/api/tags', 'http://example.com:1/completionsX']) {   // no alias: Ollama's shape
        r = await rawRequest(lim.port, buildRequest('GET', `${t}?q=${'u'.repeat(8192)}`, h));
        assert.equal(r.status, 431, t);
        assert.equal(typeof JSON.parse(r.body).error, 'string', `Ollama error shape for ${t}`);
    }
    // trailer fields are dropped, but their bytes still count against the head's limit
    const tr = Buffer.from(`2\r\n{}\r\n0\r\nX-Big-Trailer: ${'t'.repeat(8192)}\r\n\r\n`);
    r = await rawRequest(lim.port, buildRequest('POST', '/api/chat?lim=431t', [...h, ['Transfer-Encoding', 'chunked']], tr));
    assert.equal(r.status, 431);

    // slowloris: the head never completes → 408 and close after --header-timeout
    const c = await RawClient.connect(lim.port);
    try {
        await c.write(`GET /api/tags?lim=408 HTTP/1.1\r\nHost: ${hostOf(lim.port)}\r\nX-Slow: 1\r\n`);
        r = await c.readResponse();
        assert.equal(r.status, 408);
        await c.waitClose();
    } finally { c.destroy(); }

    // under the limit still works, and none of the refused requests reached the sim
    r = await rawRequest(lim.port, buildRequest('POST', '/api/chat?lim=ok', h, chatBody('ok')));
    assert.equal(r.status, 200);
    await sim.waitEvent((e) => e.event === 'request' && (e.query || '').includes('lim=ok'), WAIT_TIMEOUT_MS, since);
    assert.deepEqual(requestsSince(since, (e) => /lim=4/.test(e.query || '')).map((e) => e.query), []);
});

/* Every request-smuggling shape of DESIGN §3 (and a few relatives) → 400 and the connection
 * closed, nothing forwarded.  Each is followed by a GET on the same write that must never be
 * answered (a proxy that resynchronised after the bad message would answer it). */
const SMUGGLE = [
    ['CL and TE', 'POST /api/chat HTTP/1.1\r\nHost: H\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['two different CLs', 'POST /api/chat HTTP/1.1\r\nHost: H\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['two equal CLs', 'POST /api/chat HTTP/1.1\r\nHost: H\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'],
    ['bad chunk size', 'POST /api/chat HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
    ['chunk size overflow', 'POST /api/chat HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n'],
    ['obs-fold', 'GET /api/tags HTTP/1.1\r\nHost: H\r\nX-Folded: a\r\n b\r\n\r\n'],
    ['bare LF', 'GET /api/tags HTTP/1.1\nHost: H\n\n'],
    ['bare LF in chunked body', 'POST /api/chat HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n'],
    ['TE not ending in chunked', 'POST /api/chat HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
    ['negative CL', 'POST /api/chat HTTP/1.1\r\nHost: H\r\nContent-Length: -1\r\n\r\n'],
    ['space before colon', 'POST /api/chat HTTP/1.1\r\nHost: H\r\nContent-Length : 5\r\n\r\nhello'],
];

itest('request smuggling shapes get 400 and the connection closed', async (t) => {
    const since = sim.mark();
    for (const [name, raw] of SMUGGLE) {
        await t.test(name, async () => {
            const c = await RawClient.connect(px.port);
            try {
                const req = raw.replaceAll('Host: H', `Host: ${hostOf(px.port)}`).replace(/^(\w+) (\S+)/, (m, meth, p) => `${meth} ${p}?smuggle=1`);
                await c.write(req + `GET /api/version?smuggled=1 HTTP/1.1\r\nHost: ${hostOf(px.port)}\r\n\r\n`);
                const r = await c.readResponse();
                assert.equal(r.status, 400, `${name}: ${r.statusLine}`);
                assert.equal(typeof JSON.parse(r.body).error, 'string');
                const rest = await c.readUntilClose();
                assert.equal(rest.length, 0, `nothing after the 400: ${rest.toString('latin1').slice(0, 200)}`);
            } finally { c.destroy(); }
        });
    }
    await sentinel('smuggle');
    assert.deepEqual(requestsSince(since, (e) => /smuggle(d)?=1/.test(e.query || '')).map((e) => `${e.method} ${e.path}`), []);
});

itest('upstream down → 502 in the Ollama shape, and the OpenAI shape on /v1/*', async () => {
    const dead = await freePort();
    const p = await startProxy([], {}, { upstream: `http://127.0.0.1:${dead}` });
    const h = [['Host', hostOf(p.port)], ['Content-Type', 'application/json']];
    let r = await rawRequest(p.port, buildRequest('POST', '/api/chat', h, chatBody()));
    assert.equal(r.status, 502);
    const e1 = JSON.parse(r.body);
    assert.equal(typeof e1.error, 'string');
    assert.match(r.header('content-type') || '', /application\/json/);
    r = await rawRequest(p.port, buildRequest('GET', '/v1/models', h));
    assert.equal(r.status, 502);
    const e2 = JSON.parse(r.body);
    assert.equal(typeof e2.error, 'object');
    assert.equal(typeof e2.error.message, 'string');
    assert.equal(typeof e2.error.type, 'string');
    r = await rawRequest(p.port, buildRequest('GET', '/models', h));    // alias counts as /v1
    assert.equal(r.status, 502);
    assert.equal(typeof JSON.parse(r.body).error.message, 'string');
});

/* A fake upstream that answers `{}` to every request, except that the first request to arrive
 * on a connection that already answered one gets a close without an answer (an Ollama
 * keep-alive connection that went away just as the proxy reused it); with onlyFirst, every
 * request after the very first is answered that way, on any connection.  seen: {conn, sha} of
 * each body answered; closed: heads answered with a close.  (The proxy's readiness probe opens
 * connections that carry no request, so connection numbers are not predictable.) */
async function staleUpstream({ onlyFirst = false } = {}) {
    const up = { seen: [], closed: 0 }; const socks = new Set();
    let conns = 0;
    const srv = net.createServer((sock) => {
        const conn = ++conns; let buf = Buffer.alloc(0); let answered = 0;
        socks.add(sock);
        sock.on('close', () => socks.delete(sock));
        sock.on('error', () => {});
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            for (;;) {
                const end = buf.indexOf('\r\n\r\n');
                if (end < 0) return;
                if (onlyFirst ? up.seen.length > 0 : answered > 0 && up.closed === 0) {
                    up.closed++;
                    sock.destroy();
                    return;
                }
                const m = /\r\ncontent-length: *(\d+)/i.exec(buf.subarray(0, end).toString('latin1'));
                const len = m ? Number(m[1]) : 0;
                if (buf.length < end + 4 + len) return;
                const body = buf.subarray(end + 4, end + 4 + len);
                up.seen.push({ conn, sha: crypto.createHash('sha256').update(body).digest('hex') });
                buf = buf.subarray(end + 4 + len);
                answered++;
                sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
            }
        });
    });
    await new Promise((res) => srv.listen(0, '127.0.0.1', res));
    up.url = `http://127.0.0.1:${srv.address().port}`;
    up.close = () => { for (const k of socks) k.destroy(); return new Promise((res) => srv.close(res)); };
    return up;
}

itest('a reused upstream connection closed before answering: an idempotent request (PUT) is retried once, whole, on a fresh one', async () => {
    for (const size of [100, 5000, 4 << 20]) {             // inline with the head, by reference, partial sends
        const up = await staleUpstream();
        try {
            const p = await startProxy([], {}, { upstream: up.url });
            const h = [['Host', hostOf(p.port)], ['Content-Type', 'application/json']];
            let r = await rawRequest(p.port, buildRequest('POST', '/api/generate', h, json({ model: MODEL, prompt: 'warm' })));
            assert.equal(r.status, 200);                    // connection 1 now idles in the pool
            const body = json({ model: MODEL, prompt: 'x'.repeat(size) });
            const sha = crypto.createHash('sha256').update(body).digest('hex');
            r = await rawRequest(p.port, buildRequest('PUT', '/api/generate', h, body), { timeoutMs: WAIT_TIMEOUT_MS });
            assert.equal(r.status, 200, `${size}: answered after the retry`);
            assert.equal(r.body.toString(), '{}');
            assert.equal(up.closed, 1, `${size}: one close, on the reused connection`);
            assert.equal(up.seen.length, 2, `${size}: answered once`);
            assert.equal(up.seen[1].sha, sha, `${size}: the whole body`);
            assert.notEqual(up.seen[1].conn, up.seen[0].conn, `${size}: on a fresh connection`);
        } finally { await up.close(); }
    }
});

itest('a POST is never sent twice: the reused connection closed before answering gives 502 (RFC 9110 §9.2.2)', async () => {
    const up = await staleUpstream();
    try {
        const p = await startProxy([], {}, { upstream: up.url });
        const h = [['Host', hostOf(p.port)], ['Content-Type', 'application/json']];
        let r = await rawRequest(p.port, buildRequest('POST', '/api/generate', h, json({ model: MODEL, prompt: 'warm' })));
        assert.equal(r.status, 200);
        r = await rawRequest(p.port, buildRequest('POST', '/api/generate', h, json({ model: MODEL, prompt: 'once' })));
        assert.equal(r.status, 502);
        assert.equal(up.closed, 1, 'only the reused connection was tried');
        assert.equal(up.seen.length, 1, 'only the warm-up was answered');
    } finally { await up.close(); }
});

itest('the retry happens once: when the fresh connection also closes before answering, 502', async () => {
    const up = await staleUpstream({ onlyFirst: true });
    try {
        const p = await startProxy([], {}, { upstream: up.url });
        const h = [['Host', hostOf(p.port)], ['Content-Type', 'application/json']];
        let r = await rawRequest(p.port, buildRequest('POST', '/api/generate', h, json({ model: MODEL, prompt: 'warm' })));
        assert.equal(r.status, 200);
        r = await rawRequest(p.port, buildRequest('PUT', '/api/generate', h, json({ model: MODEL, prompt: 'two' })));
        assert.equal(r.status, 502);
        assert.equal(typeof JSON.parse(r.body).error, 'string');
        assert.equal(up.closed, 2, 'the pooled attempt and one fresh attempt, no third');
        assert.equal(up.seen.length, 1);
    } finally { await up.close(); }
});

itest('Host is rewritten upstream, X-Forwarded-For appended, Connection-named headers dropped', async () => {
    // Directly, the sim refuses a foreign Host like Ollama on loopback does.
    const direct = await rawRequest(sim.port, buildRequest('GET', '/api/tags', [['Host', 'example.com']]));
    assert.equal(direct.status, 403, 'the sim itself must 403 a foreign Host for this test to mean anything');

    const since = sim.mark();
    const r = await rawRequest(px.port, buildRequest('GET', '/api/tags?hostrw=1', [
        ['Host', 'example.com'], ['X-Forwarded-For', '203.0.113.7'], ['Origin', 'http://localhost:5173'],
        ['Connection', 'keep-alive, X-Secret-Hop'], ['X-Secret-Hop', 'drop-me'], ['Keep-Alive', 'timeout=5'],
        ['TE', 'trailers'], ['X-End-To-End', 'keep-me'],
    ]));
    assert.equal(r.status, 200);
    const ev = await sim.waitEvent((e) => e.event === 'request' && (e.query || '').includes('hostrw=1'), WAIT_TIMEOUT_MS, since);
    assert.deepEqual(evHeaders(ev, 'host'), [hostOf(sim.port)]);
    assert.equal(evHeaders(ev, 'x-forwarded-for').join(', '), '203.0.113.7, 127.0.0.1');
    assert.deepEqual(evHeaders(ev, 'origin'), ['http://localhost:5173']);
    assert.deepEqual(evHeaders(ev, 'x-end-to-end'), ['keep-me']);
    for (const hop of ['x-secret-hop', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'proxy-authorization']) {
        assert.deepEqual(evHeaders(ev, hop), [], `${hop} must not be forwarded`);
    }

    // without an incoming X-Forwarded-For the proxy adds the client address
    const s2 = sim.mark();
    await rawRequest(px.port, buildRequest('GET', '/api/tags?hostrw=2', [['Host', hostOf(px.port)]]));
    const ev2 = await sim.waitEvent((e) => e.event === 'request' && (e.query || '').includes('hostrw=2'), WAIT_TIMEOUT_MS, s2);
    assert.deepEqual(evHeaders(ev2, 'x-forwarded-for'), ['127.0.0.1']);
});

itest('long heads and bodies on both sides of the inline sizes reach the sim whole and in order', async () => {
    // 6 headers of 2 KiB: the upstream head outgrows the proxy's 4 KiB head buffer (it spills);
    // bodies just under and over the 2 KiB that travel copied with the head, and a large one
    const long = Array.from({ length: 6 }, (_, i) => [`X-Long-${i}`, String.fromCharCode(97 + i).repeat(2048)]);
    const h = [['Host', hostOf(px.port)], ['Content-Type', 'application/json'], ...long];
    for (const n of [1, 1990, 2100, 60000]) {         // the sim reports bodies up to 64 KiB
        const body = json({ model: MODEL, prompt: 'y'.repeat(n), stream: false });
        const since = sim.mark();
        const r = await rawRequest(px.port, buildRequest('POST', `/api/generate?long=${n}`, h, body));
        assert.equal(r.status, 200, `${n}: ${r.statusLine}`);
        const ev = await sim.waitEvent((e) => e.event === 'request' && (e.query || '').includes(`long=${n}`), WAIT_TIMEOUT_MS, since);
        assert.deepEqual(ev.headers.filter(([k]) => /^x-long-/i.test(k)), long, `${n}: long headers whole and in order`);
        assert.equal(ev.body_len, body.length, `${n}: body length`);
        assert.equal(ev.body, body, `${n}: body bytes`);
    }
});

itest('one connection, requests of every shape in turn: each reaches the sim as sent (kept buffers hold nothing over)', async () => {
    // the proxy reuses finished exchanges with their target, path and body buffers (up to
    // 4 KiB each): a long target or body followed by a shorter one must not leak its tail
    const h = [['Host', hostOf(px.port)], ['Content-Type', 'application/json']];
    const gen = (n) => json({ model: MODEL, prompt: 'z'.repeat(n), stream: false });
    const chunk = (b) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n0\r\n\r\n')]);
    const steps = [
        ['POST', '/chat/completions', `seq=1&pad=${'p'.repeat(300)}`, chatBody('x'.repeat(3000)), '/v1/chat/completions'],
        ['POST', '/api/generate', 'seq=2', gen(10), '/api/generate'],
        ['GET', '/api/tags', 'seq=3', null, '/api/tags'],
        ['POST', '/api/chat', 'seq=4', chatBody('chunked'), '/api/chat', true],
        ['POST', '/api/generate', 'seq=5', gen(3500), '/api/generate'],
        ['POST', '/api/generate', 'seq=6', gen(1), '/api/generate'],
        ['POST', '/v1/completions', 'seq=7', gen(5000), '/v1/completions'],
        ['POST', '/api/show', 'seq=8', json({ model: MODEL }), '/api/show'],
    ];
    const c = await RawClient.connect(px.port);
    try {
        for (const [method, p, q, body, want, chunked] of steps) {
            const since = sim.mark();
            const req = chunked
                ? buildRequest(method, `${p}?${q}`, [...h, ['Transfer-Encoding', 'chunked']], chunk(Buffer.from(body)))
                : buildRequest(method, `${p}?${q}`, h, body);
            await c.write(req);
            const r = await c.readResponse();
            assert.equal(r.status, 200, `${q}: ${r.statusLine} ${r.body}`);
            // the path the hooks see picks the scored endpoint: a stale tail would lose it
            const scored = method === 'POST' && want !== '/api/show';
            assert.equal(r.header('x-litebrain-level') !== undefined, scored, `${q}: scored`);
            const ev = await sim.waitEvent((e) => e.event === 'request', WAIT_TIMEOUT_MS, since);
            assert.equal(ev.method, method, q);
            assert.equal(ev.path, want, q);
            assert.equal(ev.query, q, q);
            assert.equal(ev.body_len, body ? Buffer.byteLength(body) : 0, `${q}: body length`);
            if (body) assert.equal(ev.body, body, `${q}: body bytes`);
        }
    } finally { c.destroy(); }
});

itest('aliases /chat/completions, /completions, /embeddings, /models reach the sim as /v1/...', async () => {
    const h = [['Host', hostOf(px.port)], ['Content-Type', 'application/json']];
    const cases = [
        ['POST', '/chat/completions', json({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })],
        ['POST', '/completions', json({ model: MODEL, prompt: 'hi' })],
        ['POST', '/embeddings', json({ model: MODEL, input: 'hi' })],
        ['GET', '/models', null],
    ];
    for (const [method, p, body] of cases) {
        const since = sim.mark();
        const r = await rawRequest(px.port, buildRequest(method, `${p}?alias=1`, h, body));
        assert.equal(r.status, 200, `${method} ${p}: ${r.statusLine} ${r.body}`);
        const ev = await sim.waitEvent((e) => e.event === 'request', WAIT_TIMEOUT_MS, since);
        assert.equal(ev.path, `/v1${p}`);
        assert.equal(ev.query, 'alias=1');
        assert.equal(ev.method, method);
    }
});

itest('connection limits: 503 and close beyond --max-connections; idle keep-alive closed', async () => {
    const lim = await startProxy(['--max-connections', '2', '--idle-timeout', '0.5'], {}, { sim });
    const a = await RawClient.connect(lim.port);
    const b = await RawClient.connect(lim.port);
    try {
        // both held connections are served (so the proxy has surely accepted them)
        for (const c of [a, b]) {
            await c.write(buildRequest('GET', '/api/version', [['Host', hostOf(lim.port)]]));
            assert.equal((await c.readResponse()).status, 200);
        }
        const r = await rawRequest(lim.port, buildRequest('GET', '/v1/models', [['Host', hostOf(lim.port)]]));
        assert.equal(r.status, 503);
        assert.ok(JSON.parse(r.body).error, 'a JSON error (refused before the request is read, so either shape)');
        assert.match(r.header('connection') || '', /close/i);
        // the idle keep-alive connections are closed by the proxy after --idle-timeout
        await a.waitClose();
        await b.waitClose();
        assert.equal(a.buf.length, 0, 'closed silently');
        // and then there is room again
        const r2 = await rawRequest(lim.port, buildRequest('GET', '/api/version', [['Host', hostOf(lim.port)]]));
        assert.equal(r2.status, 200);
    } finally { a.destroy(); b.destroy(); }
});

itest('a blank line on an idle keep-alive connection is ignored: closed silently after --idle-timeout, nothing counted', async () => {
    // the exchange taken for the blank line may be a pooled one that kept its target buffer:
    // only a request-target actually read may turn the idle timeout into a 408
    const lim = await startProxy(['--idle-timeout', '0.5'], {}, { sim });
    const c = await RawClient.connect(lim.port);
    try {
        await c.write(buildRequest('GET', '/api/version', [['Host', hostOf(lim.port)]]));
        assert.equal((await c.readResponse()).status, 200);
        const pm = lim.mark();
        await c.write('\r\n');                 // RFC 9112 §2.2: a server SHOULD ignore it
        await c.waitClose();
        assert.equal(c.buf.toString().split('\r\n')[0], '', 'closed silently');
        assert.equal(lim.logs.slice(pm).filter((l) => JSON.stringify(l).includes('"status":408')).length, 0, 'no 408 logged');
    } finally { c.destroy(); }
});

itest('a client leaving mid-upload is counted 499 and nothing reaches the sim', async () => {
    const since = sim.mark();
    const pm = px.mark();
    const c = await RawClient.connect(px.port);
    await c.write(buildRequest('POST', '/api/chat?midupload=1', [['Host', hostOf(px.port)], ['Content-Type', 'application/json'], ['Content-Length', '1000']]));
    await c.write('{"model":"qwen2.5:3b","messages":[');
    c.destroy();
    const fin = await px.waitLog((o) => o.status === 499, WAIT_TIMEOUT_MS, pm);
    assert.equal(fin.status, 499);
    await sentinel('midupload');
    assert.deepEqual(requestsSince(since, (e) => (e.query || '').includes('midupload=1')), []);
});
