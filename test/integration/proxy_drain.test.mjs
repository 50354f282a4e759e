// proxy_drain.test.mjs — SIGTERM / SIGINT drain: /readyz turns 503 at once, in-flight streams
// finish, kept-alive connections get `Connection: close`, the listener keeps accepting during
// the grace (min(5 s, --drain-seconds)) and refuses afterwards, exit code 0; and at the drain
// deadline what is left is cut and the exit code is still 0.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before } from 'node:test';
import {
    HOST, MODEL, RawClient, SLOW, WAIT_TIMEOUT_MS, buildRequest, hostOf, httpGet, itest,
    parseResponse, pollUntil, rawRequest, startProxy, startSim, stopAll,
} from './harness.mjs';

let sim;
before(async () => { sim = await startSim(); });
after(stopAll);

const gen = (port, fault, tag) => buildRequest('POST', `/api/generate?t=${tag}`, [
    ['Host', hostOf(port)], ['Content-Type', 'application/json'], ['X-Sim-Fault', fault],
], JSON.stringify({ model: MODEL, prompt: `drain ${tag}` }));

/* Resolves true when a TCP connect to port is refused, false when it is accepted. */
function refused(port) {
    return new Promise((resolve) => {
        const s = net.connect({ host: HOST, port });
        s.once('connect', () => { s.destroy(); resolve(false); });
        s.once('error', (e) => resolve(e.code === 'ECONNREFUSED'));
    });
}

for (const sig of ['SIGTERM', 'SIGINT']) {
    itest(`${sig} during a stream: readyz 503, stream completes, refused after the grace, exit 0`, async (t) => {
        const px = await startProxy(['--drain-seconds', '2'], {}, { sim });
        await pollUntil(async () => (await httpGet(px.metricsPort, '/readyz')).status === 200, WAIT_TIMEOUT_MS, 'readyz 200 before the signal');

        // a kept-alive connection that already served one request
        const ka = await RawClient.connect(px.port);
        await ka.write(buildRequest('GET', '/api/version', [['Host', hostOf(px.port)]]));
        assert.equal((await ka.readResponse()).status, 200);

        // a stream of ~1.2 s, well inside the 2 s drain window
        const s = await RawClient.connect(px.port);
        await s.write(gen(px.port, 'chunks=8,interval-ms=150', sig));
        await s.waitFor((c) => c.buf.indexOf('\r\n\r\n') > 0, WAIT_TIMEOUT_MS, 'stream head');

        const t0 = performance.now();
        px.proc.kill(sig);
        const rz = await pollUntil(async () => (await httpGet(px.metricsPort, '/readyz')).status === 503, WAIT_TIMEOUT_MS, 'readyz 503');
        t.diagnostic(`/readyz 503 ${(performance.now() - t0).toFixed(0)} ms after ${sig}`);
        assert.ok(rz);

        // during the grace: kept-alive and new connections are still answered, with Connection: close
        await ka.write(buildRequest('GET', '/api/version', [['Host', hostOf(px.port)]]));
        const r1 = await ka.readResponse();
        assert.equal(r1.status, 200);
        assert.match(r1.header('connection') || '', /close/i, 'Connection: close while draining');
        const r2 = await rawRequest(px.port, buildRequest('GET', '/api/tags', [['Host', hostOf(px.port)]]));
        assert.equal(r2.status, 200, 'a new connection in the grace is still served');
        assert.match(r2.header('connection') || '', /close/i);

        // the stream finishes completely
        const r = await s.readResponse({ timeoutMs: WAIT_TIMEOUT_MS });
        assert.equal(r.status, 200);
        assert.ok(r.complete, 'stream completed during the drain');
        assert.equal(JSON.parse(r.chunks[r.chunks.length - 1].toString().trim().split('\n').pop()).done, true);

        // after the grace the listener is gone (or the process has exited): refused
        await pollUntil(() => refused(px.port), 10000 * SLOW, 'connections refused after the grace');
        t.diagnostic(`refused ${(performance.now() - t0).toFixed(0)} ms after ${sig}`);
        const ex = await px.waitExit(10000 * SLOW);
        assert.equal(ex.code, 0, `exit ${JSON.stringify(ex)}`);
        ka.destroy(); s.destroy();
    });
}

itest('drain deadline: a stream longer than --drain-seconds is cut, exit 0', async () => {
    const px = await startProxy(['--drain-seconds', '1'], {}, { sim });
    const s = await RawClient.connect(px.port);
    await s.write(gen(px.port, 'chunks=1000,interval-ms=20', 'deadline'));
    await s.waitFor((c) => c.buf.indexOf('\r\n\r\n') > 0, WAIT_TIMEOUT_MS, 'stream head');
    px.proc.kill('SIGTERM');
    const ex = await px.waitExit(10000 * SLOW);
    assert.equal(ex.code, 0, `exit ${JSON.stringify(ex)}`);
    await s.waitClose();
    const r = parseResponse(s.buf, { eof: true });
    assert.equal(r.status, 200);
    assert.equal(r.complete, false, 'cut: no terminating chunk');
});
