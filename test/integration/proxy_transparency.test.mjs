// proxy_transparency.test.mjs — for a matrix of requests over every endpoint of the simulator
// (run with --fixed-clock, so its answers are byte-identical run to run), the response through
// the proxy equals the response straight from the sim: same status line, same headers
// (compared order-insensitively, minus the hop-by-hop Connection / Keep-Alive and the proxy's
// own X-LiteBrain-Complexity / X-LiteBrain-Level) and the same body bytes.  Bodies are compared
// de-chunked; whether a body is chunked or has a Content-Length is compared through the
// headers.  X-LiteBrain-* must be present on the scored endpoints and absent everywhere else.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import {
    EMBED_MODEL, MODEL, buildRequest, hostOf, itest, normHeaders, rawRequest, startProxy,
    startSimAndProxy, stopAll, SLOW,
} from './harness.mjs';

let sim; let px;
before(async () => ({ sim, px } = await startSimAndProxy()));
after(stopAll);

const HOP = ['connection', 'keep-alive'];
const OURS = ['x-litebrain-complexity', 'x-litebrain-level'];
const j = (o) => JSON.stringify(o);
const msgs = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'why is the sky blue?' }];
const bigPrompt = 'lorem ipsum dolor sit amet '.repeat(80000);    // ~2 MiB request body

/* [name, method, path, body (object → JSON, string → raw), scored, extra headers, version] */
const CASES = [
    ['generate stream', 'POST', '/api/generate', { model: MODEL, prompt: 'hello' }, true],
    ['generate no stream', 'POST', '/api/generate', { model: MODEL, prompt: 'hello', stream: false }, true],
    ['generate num_predict', 'POST', '/api/generate', { model: MODEL, prompt: 'hi', options: { num_predict: 3 } }, true],
    ['chat stream', 'POST', '/api/chat', { model: MODEL, messages: msgs }, true],
    ['chat no stream', 'POST', '/api/chat', { model: MODEL, messages: msgs, stream: false }, true],
    ['chat think', 'POST', '/api/chat', { model: 'deepseek-r1:7b', messages: msgs, think: true }, true],
    ['embed', 'POST', '/api/embed', { model: EMBED_MODEL, input: ['a', 'b'] }, true],
    ['embeddings (legacy)', 'POST', '/api/embeddings', { model: EMBED_MODEL, prompt: 'a' }, true],
    ['tags', 'GET', '/api/tags', null, false],
    ['show', 'POST', '/api/show', { model: MODEL }, false],
    ['ps', 'GET', '/api/ps', null, false],
    ['version', 'GET', '/api/version', null, false],
    ['pull stream', 'POST', '/api/pull', { model: MODEL }, false],
    ['pull no stream', 'POST', '/api/pull', { model: MODEL, stream: false }, false],
    ['GET /', 'GET', '/', null, false],
    ['HEAD /', 'HEAD', '/', null, false],
    ['HEAD /api/version', 'HEAD', '/api/version', null, false],
    ['v1 chat stream', 'POST', '/v1/chat/completions', { model: MODEL, messages: msgs, stream: true }, true],
    ['v1 chat stream usage', 'POST', '/v1/chat/completions', { model: MODEL, messages: msgs, stream: true, stream_options: { include_usage: true } }, true],
    ['v1 chat no stream', 'POST', '/v1/chat/completions', { model: MODEL, messages: msgs }, true],
    ['v1 completions stream', 'POST', '/v1/completions', { model: MODEL, prompt: 'once upon', stream: true }, true],
    ['v1 completions no stream', 'POST', '/v1/completions', { model: MODEL, prompt: 'once upon' }, true],
    ['v1 embeddings', 'POST', '/v1/embeddings', { model: EMBED_MODEL, input: 'hello' }, true],
    ['v1 models', 'GET', '/v1/models', null, false],
    ['v1 model', 'GET', `/v1/models/${MODEL}`, null, false],
    ['404 model generate', 'POST', '/api/generate', { model: 'no-such-model', prompt: 'x' }, true],
    ['404 model chat', 'POST', '/api/chat', { model: 'no-such-model', messages: msgs }, true],
    ['404 model v1 chat', 'POST', '/v1/chat/completions', { model: 'no-such-model', messages: msgs }, true],
    ['404 model show', 'POST', '/api/show', { model: 'no-such-model' }, false],
    ['400 bad JSON chat', 'POST', '/api/chat', '{"model": ', true],
    ['400 bad JSON v1 chat', 'POST', '/v1/chat/completions', '{nope', true],
    ['400 missing model', 'POST', '/api/generate', { prompt: 'x' }, true],
    ['404 path', 'GET', '/api/nothing-here', null, false],
    ['405-ish method', 'DELETE', '/api/version', null, false],
    ['query string', 'GET', '/api/tags?x=1&y=%20', null, false],
    ['large body', 'POST', '/api/generate', { model: MODEL, prompt: bigPrompt, stream: false }, true],
    ['large body stream', 'POST', '/api/chat', { model: MODEL, messages: [{ role: 'user', content: bigPrompt }] }, true],
    // HTTP/1.0 clients: no chunked framing for them (a stream is close-delimited)
    ['HTTP/1.0 generate stream', 'POST', '/api/generate', { model: MODEL, prompt: 'hello' }, true, [], '1.0'],
    ['HTTP/1.0 v1 chat stream', 'POST', '/v1/chat/completions', { model: MODEL, messages: msgs, stream: true }, true, [], '1.0'],
    ['HTTP/1.0 tags', 'GET', '/api/tags', null, false, [], '1.0'],
];

async function send(port, [, method, path, body, , extra = [], ver = '1.1'], hostPort) {
    const b = body === null ? null : (typeof body === 'string' ? body : j(body));
    const h = [['Host', hostOf(hostPort)], ['User-Agent', 'litebrain-test/1'], ['Accept', '*/*'], ...extra];
    if (b !== null) h.push(['Content-Type', 'application/json']);
    return rawRequest(port, buildRequest(method, path, h, b, ver), { head: method === 'HEAD', timeoutMs: 20000 * SLOW });
}

itest('responses through the proxy equal the responses from the sim', async (t) => {
    for (const c of CASES) {
        await t.test(c[0], async () => {
            const d = await send(sim.port, c, sim.port);
            const p = await send(px.port, c, px.port);
            assert.ok(d.complete, 'direct response complete');
            assert.ok(p.complete, 'proxied response complete');
            assert.equal(p.statusLine, d.statusLine);
            assert.deepEqual(normHeaders(p.headers, [...HOP, ...OURS]), normHeaders(d.headers, HOP));
            assert.ok(p.body.equals(d.body), `body differs:\n direct ${d.body.toString().slice(0, 300)}\n proxy  ${p.body.toString().slice(0, 300)}`);
            const cx = p.header('x-litebrain-complexity');
            const lv = p.header('x-litebrain-level');
            if (c[4]) {
                assert.match(cx || '', /^(100|[1-9]?[0-9])$/, 'X-LiteBrain-Complexity 0-100');
                assert.match(lv || '', /^(low|medium|high)$/, 'X-LiteBrain-Level');
            } else {
                assert.equal(cx, undefined, 'no X-LiteBrain-Complexity on an unscored endpoint');
                assert.equal(lv, undefined, 'no X-LiteBrain-Level on an unscored endpoint');
            }
            assert.equal(d.header('x-litebrain-level'), undefined);
        });
    }
});

itest('scoring headers follow the golden levels (fresh proxy, no history)', async () => {
    const fresh = await startProxy([], {}, { sim });
    const lvl = async (body, path = '/api/generate') => (await send(fresh.port, ['', 'POST', path, body], fresh.port)).header('x-litebrain-level');
    assert.equal(await lvl({ model: MODEL, prompt: 'hi', stream: false }), 'low');
    assert.equal(await lvl({ model: MODEL, prompt: 'word '.repeat(400), stream: false }), 'high');
    assert.equal(await lvl({ model: EMBED_MODEL, input: 'short' }, '/api/embed'), 'low');
});
