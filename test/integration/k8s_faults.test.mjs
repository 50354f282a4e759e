// k8s_faults.test.mjs — the controller against a misbehaving API server: a rotated token
// (401 → re-read → success), 403/500/409 logged, counted and retried with backoff, 429 with
// Retry-After honoured, and an API server that hangs while the proxy keeps serving.
// The writes are provoked without load: policy minReplicas 2 against an HPA at 1.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import { itest, stopAll, scrapeMetrics, metricValue, httpGet, WAIT_TIMEOUT_MS, SLOW } from './harness.mjs';
import { startK8sApi } from '../k8s-api/server.mjs';
import { startK8sProxy, startUpstream, policyFile, debugScaling, logsOf, loadLoop } from '../k8s-api/helpers.mjs';

after(stopAll);
const HPA_PATCH = (r) => r.method === 'PATCH' && r.path.includes('horizontalpodautoscalers');
const FLOOR2 = () => policyFile({ minReplicas: 2 });

itest('token rotated: 401, the token file is re-read, the retry succeeds', async () => {
    const api = await startK8sApi();
    try {
        api.addHpa();
        const px = await startK8sProxy(api, 'pod-a');
        await px.waitLog((o) => o.msg === 'leader elected');
        const since = api.mark();
        api.rotateToken('token-1-rotated');
        const denied = await api.waitRequest((r) => r.code === 401, WAIT_TIMEOUT_MS, since, 'a 401');
        const i = api.requests.indexOf(denied);
        const retry = await api.waitRequest((r, k) => k > i && r.tokenOk, WAIT_TIMEOUT_MS, i, 'the retry');
        assert.equal(retry.path, denied.path);
        assert.equal(retry.method, denied.method);
        assert.equal(retry.code, 200);
        await px.waitLog((o) => o.msg === 'k8s token re-read after 401');
        assert.equal((await debugScaling(px)).is_leader, true);
        // the token never reaches a log line
        assert.ok(!px.logs.some((o) => JSON.stringify(o).includes('token-1-rotated') || JSON.stringify(o).includes('token-0')));
    } finally { await api.close(); }
});

itest('403 and 500 are logged, counted, retried with backoff; no crash', async () => {
    const api = await startK8sApi();
    try {
        api.addHpa();
        api.inject({ match: HPA_PATCH, status: 403, reason: 'Forbidden' });
        api.inject({ match: HPA_PATCH, status: 500, reason: 'InternalError' });
        api.inject({ match: HPA_PATCH, status: 409, reason: 'Conflict' });
        const px = await startK8sProxy(api, 'pod-a', { policy: FLOOR2() });
        const ok = await api.waitRequest((r) => HPA_PATCH(r) && r.code === 200, WAIT_TIMEOUT_MS * 2, 0, 'a successful patch');
        const tries = api.requests.filter(HPA_PATCH);
        assert.deepEqual(tries.map((r) => r.code), [403, 500, 409, 200]);
        assert.deepEqual(ok.body, { spec: { minReplicas: 2 } });
        // backoff: equal jitter keeps at least half of base·2^n between attempts (0.25 s base)
        for (let n = 1; n < tries.length; n++) {
            assert.ok(tries[n].t - tries[n - 1].t >= 125 * 2 ** (n - 1) - 5,
                `attempt ${n} came ${Math.round(tries[n].t - tries[n - 1].t)} ms after the previous`);
        }
        const m = await scrapeMetrics(px);
        assert.equal(metricValue(m, 'litebrain_controller_api_requests_total', { verb: 'PATCH', code: '403' }), 1);
        assert.equal(metricValue(m, 'litebrain_controller_api_requests_total', { verb: 'PATCH', code: '500' }), 1);
        assert.equal(metricValue(m, 'litebrain_controller_api_requests_total', { verb: 'PATCH', code: '200' }), 1);
        const errs = logsOf(px, 'k8s api error').filter((o) => o.verb === 'PATCH');
        assert.deepEqual(errs.map((o) => o.code), [403, 500, 409]);
        assert.match(errs[0].error, /Forbidden: injected 403/);
        assert.equal(px.exit, null);
    } finally { await api.close(); }
});

itest('429 with Retry-After: the next attempt waits at least that long', async () => {
    const api = await startK8sApi();
    try {
        api.addHpa();
        api.inject({ match: HPA_PATCH, status: 429, reason: 'TooManyRequests', retryAfter: 2 });
        const px = await startK8sProxy(api, 'pod-a', { policy: FLOOR2() });
        await api.waitRequest((r) => HPA_PATCH(r) && r.code === 200, WAIT_TIMEOUT_MS * 2, 0, 'a successful patch');
        const tries = api.requests.filter(HPA_PATCH);
        assert.deepEqual(tries.map((r) => r.code), [429, 200]);
        assert.ok(tries[1].t - tries[0].t >= 2000 - 5, `retried after ${Math.round(tries[1].t - tries[0].t)} ms`);
        const dbg = await debugScaling(px);
        assert.match(dbg.last_api_error.error, /PATCH .* 429 TooManyRequests/);
    } finally { await api.close(); }
});

itest('API server hangs: proxy requests keep completing, endpoints answer, leadership lapses', async () => {
    const api = await startK8sApi();
    const up = await startUpstream(5);
    try {
        api.addHpa();
        const px = await startK8sProxy(api, 'pod-a', { upstream: up.url });
        await px.waitLog((o) => o.msg === 'leader elected');
        api.inject({ match: () => true, hang: true, times: Infinity });
        await api.waitRequest((r) => r.code === -1, WAIT_TIMEOUT_MS, 0, 'a hung request');
        const load = loadLoop(px.port, { concurrency: 2, nwords: 50 });
        await px.waitLog((o) => o.msg === 'leader lost', WAIT_TIMEOUT_MS * SLOW);
        const counts = await load.stop();
        assert.ok(counts.ok > 0);
        assert.equal(counts.failed, 0);
        assert.equal((await httpGet(px.metricsPort, '/metrics')).status, 200);
        const dbg = await debugScaling(px);
        assert.equal(dbg.is_leader, false);
        assert.match(dbg.last_api_error.error, / 0 /);                   // no response: code 0
        assert.equal(px.exit, null);
    } finally { await up.stop(); await api.close(); }
});
