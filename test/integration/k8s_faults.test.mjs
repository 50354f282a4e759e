// k8s_faults.test.mjs — the controller against a misbehaving API server: a rotated token
// (401 → re-read → success), 403/500/409 logged, counted and retried with backoff, 429 with
// Retry-After honoured, an API server that hangs while the proxy keeps serving, and one so slow
// that the leader's renew deadline passes between its decision and its write.
// The writes are provoked without load: policy minReplicas 2 against an HPA at 1.

import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { itest, stopAll, scrapeMetrics, metricValue, httpGet, WAIT_TIMEOUT_MS, SLOW, PROXY_BIN, STOP_TIMEOUT_MS } from './harness.mjs';
import { startK8sApi } from '../k8s-api/server.mjs';
import { startK8sProxy, startUpstream, policyFile, debugScaling, logsOf, loadLoop } from '../k8s-api/helpers.mjs';

after(stopAll);
const HPA_PATCH = (r) => r.method === 'PATCH' && r.path.includes('horizontalpodautoscalers');
const FLOOR2 = () => policyFile({ minReplicas: 2 });
// every Lease renewal fails from now on (leadership lapses at the renew deadline)
const RENEWALS_FAIL = { match: (r) => r.method === 'PUT' && r.path.endsWith('/leases/litebrain-scaler'), status: 500, times: Infinity };
// a lease whose renew deadline (3.9 s) is close to its duration (4 s): call timeout 1.95 s
const NEAR_LEASE = { LITEBRAIN_K8S_LEASE_SECONDS: '4', LITEBRAIN_K8S_RENEW_SECONDS: '3.9', LITEBRAIN_K8S_RETRY_SECONDS: '0.25' };

/* Someone lowers the HPA floor to 1: a leader under FLOOR2 wants to write 2 again. */
function lowerFloor(api) {
    const h = api.hpas.get('ollama-hpa');
    h.spec.minReplicas = 1;
    h.metadata.resourceVersion = String(++api.rv);
}

/* A leader under FLOOR2 with NEAR_LEASE timings that has made its first write, caught at the
 * start of an evaluation (its GET of the HPA). */
async function nearLeaseLeader(api) {
    api.addHpa();
    const px = await startK8sProxy(api, 'pod-a', { policy: FLOOR2(), env: NEAR_LEASE });
    await api.waitRequest((r) => HPA_PATCH(r) && r.code === 200, WAIT_TIMEOUT_MS, 0, 'the first write');
    await api.waitRequest((r) => r.method === 'GET' && r.path.includes('horizontalpodautoscalers'), WAIT_TIMEOUT_MS, api.mark(), 'an evaluation');
    return px;
}

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

// A write backed off (429, Retry-After 30 s) in one term of leadership does not delay the
// first write of the next term: leadership is lost (renewals fail past the renew deadline) and
// regained, and the floor is written at once, not 30 s after the 429.
itest('a backoff from an earlier term of leadership does not hold up the next one', async () => {
    const api = await startK8sApi();
    try {
        const env = { LITEBRAIN_K8S_LEASE_SECONDS: '2', LITEBRAIN_K8S_RENEW_SECONDS: '1.5', LITEBRAIN_K8S_RETRY_SECONDS: '0.25' };
        api.addHpa();
        api.inject({ match: HPA_PATCH, status: 429, reason: 'TooManyRequests', retryAfter: 30 });
        const px = await startK8sProxy(api, 'pod-a', { policy: FLOOR2(), env });
        await api.waitRequest((r) => HPA_PATCH(r) && r.code === 429, WAIT_TIMEOUT_MS, 0, 'the refused write');
        const mark = px.mark();
        api.inject(RENEWALS_FAIL);
        await px.waitLog((o) => o.msg === 'leader lost', WAIT_TIMEOUT_MS, mark);
        api.clearFaults();
        const again = px.mark();
        await px.waitLog((o) => o.msg === 'leader elected', WAIT_TIMEOUT_MS, again);
        const w = await api.waitRequest((r) => HPA_PATCH(r) && r.code === 200, WAIT_TIMEOUT_MS, 0, 'the next term\'s write');
        const refused = api.requests.find((r) => HPA_PATCH(r) && r.code === 429);
        assert.ok(w.t - refused.t < 15000, `written ${Math.round(w.t - refused.t)} ms after the 429`);
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

itest('slow GETs use up the renew deadline: the leader does not write after it', async () => {
    const api = await startK8sApi();
    try {
        // lease 2 s, renew deadline 1.5 s, retry 0.25 s: each API call may take 0.75 s
        const env = { LITEBRAIN_K8S_LEASE_SECONDS: '2', LITEBRAIN_K8S_RENEW_SECONDS: '1.5', LITEBRAIN_K8S_RETRY_SECONDS: '0.25' };
        const res = { requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '2', memory: '8Gi' } };
        api.addHpa();
        api.addPod('pod-a', res);
        const pol = policyFile({ minReplicas: 2, resources: { low: res.requests, medium: res.requests, high: res.requests } });
        const px = await startK8sProxy(api, 'pod-a', { policy: pol, env });
        await api.waitRequest((r) => HPA_PATCH(r) && r.code === 200, WAIT_TIMEOUT_MS, 0, 'the first write');
        // right after an evaluation began (its GET of the HPA): renewals start failing, so the
        // last good one is at most one retry period old; the next evaluation, 1 s later, still
        // leads, then spends 2 x 0.7 s on its GETs: 2.2 s or more after that renewal
        const g = await api.waitRequest((r) => r.method === 'GET' && r.path.includes('horizontalpodautoscalers'), WAIT_TIMEOUT_MS, api.mark(), 'an evaluation');
        const since = api.requests.indexOf(g) + 1;
        api.inject(RENEWALS_FAIL);
        api.inject({ match: (r) => r.method === 'GET' && !r.path.includes('/leases/'), delayMs: 700, times: Infinity });
        lowerFloor(api);
        const d = await px.waitLog((o) => o.msg === 'scaling decision' && o.leader === true && o.action.startsWith('no write: lease renewal'), 15000 * SLOW);
        assert.equal(d.desired, 2);
        await px.waitLog((o) => o.msg === 'scaling decision' && o.leader === false, 15000 * SLOW);
        assert.deepEqual(api.requests.slice(since).filter(HPA_PATCH), []);
    } finally { await api.close(); }
});

// Lease 4 s, renew deadline 3.9 s, so each API call may take 1.95 s: a write must be sent at
// least 1.95 s before the lease could pass to another pod, i.e. within 2.05 s of the last
// renewal, although leadership itself lasts 3.9 s.  Renewals fail from an evaluation on and the
// HPA GETs are slowed by 0.6 s; once the next evaluation has passed (about 1.6-1.9 s after the
// last good renewal) the floor is lowered, and the one after decides about 2.6-2.9 s after that
// renewal: still leader, and the write is not sent.
itest('a write that could land after the lease passed to another pod is not sent', async () => {
    const api = await startK8sApi();
    try {
        const px = await nearLeaseLeader(api);
        api.inject(RENEWALS_FAIL);
        api.inject({ match: (r) => r.method === 'GET' && r.path.includes('horizontalpodautoscalers'), delayMs: 600, times: Infinity });
        const mark = px.mark(), injected = Date.now();
        // the first decision made after the injection (its HPA GET slowed), not one in flight
        await px.waitLog((o) => o.msg === 'scaling decision' && Date.parse(o.ts) > injected + 300, 15000 * SLOW, mark);
        const lowered = api.mark();
        lowerFloor(api);
        const d = await px.waitLog((o) => o.msg === 'scaling decision' && o.leader === true && o.action.startsWith('no write: the lease could pass'), 15000 * SLOW, mark);
        assert.equal(d.desired, 2);
        await px.waitLog((o) => o.msg === 'scaling decision' && o.leader === false, 15000 * SLOW);
        assert.deepEqual(api.requests.slice(lowered).filter(HPA_PATCH), []);
    } finally { await api.close(); }
});

// The same bound for the retry after a 401: lease 4 s, renew deadline 3.9 s, call timeout
// 1.95 s.  Renewals fail from an evaluation on and the floor is lowered at once: the next
// evaluation sends its write about 1-1.3 s after the last good renewal (in time), but its 401
// comes back 1.5 s later, when a retry could land after the lease might have passed: it is
// not sent (the token is re-read all the same).
itest('the retry of a write after a 401 is not sent when it could land after the lease passed', async () => {
    const api = await startK8sApi();
    try {
        const px = await nearLeaseLeader(api);
        api.inject(RENEWALS_FAIL);
        api.inject({ match: HPA_PATCH, status: 401, reason: 'Unauthorized', delayMs: 1500 });
        const lowered = api.mark();
        lowerFloor(api);
        await px.waitLog((o) => o.msg === 'k8s write not retried after 401: it could land too late', 15000 * SLOW);
        await px.waitLog((o) => o.msg === 'scaling decision' && o.leader === false, 15000 * SLOW);
        assert.deepEqual(api.requests.slice(lowered).filter(HPA_PATCH).map((r) => r.code), [401]);
    } finally { await api.close(); }
});

// Only the service account's ca.crt is trusted.  The fake API server's CA is put where
// libcurl's built-in CA directory points (/etc/ssl/certs, bind-mounted over in a private mount
// namespace, standing in for the image's ca-certificates) and ca.crt holds an unrelated CA: the
// controller must refuse the server, not talk to it.  Needs root with CAP_SYS_ADMIN (unshare -m).
itest('the API server is verified against ca.crt alone, not the system CA directory', async (t) => {
    if (spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind /tmp /mnt'], { stdio: 'ignore' }).status !== 0) {
        t.skip('needs unshare -m and mount --bind (root with CAP_SYS_ADMIN)');
        return;
    }
    const api = await startK8sApi();
    const sa = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-other-ca-'));
    const sys = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-sys-certs-'));
    let proc = null;
    try {
        api.addHpa();
        for (const f of ['token', 'namespace']) fs.copyFileSync(path.join(api.saDir, f), path.join(sa, f));
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=other-ca',
            '-keyout', path.join(sa, 'ca.key'), '-out', path.join(sa, 'ca.crt')], { stdio: 'ignore' });
        const real = path.join(api.saDir, 'ca.crt');
        const hash = execFileSync('openssl', ['x509', '-noout', '-subject_hash', '-in', real]).toString().trim();
        fs.copyFileSync(real, path.join(sys, `${hash}.0`));
        proc = spawn('unshare', ['-m', 'sh', '-c', `mount --bind ${sys} /etc/ssl/certs && exec "$0" "$@"`, PROXY_BIN,
            '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:9',
            '--controller', 'on', '--policy', FLOOR2()],
            { env: { ...process.env, ...api.env('pod-a'), LITEBRAIN_K8S_SA_DIR: sa }, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        const failed = new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no k8s api error within ${WAIT_TIMEOUT_MS} ms:\n${err}`)), WAIT_TIMEOUT_MS);
            proc.stderr.on('data', (d) => {
                err += d;
                if (/k8s api error/.test(err)) { clearTimeout(timer); resolve(); }
            });
        });
        await failed;
        assert.equal(api.requests.length, 0, 'the controller talked to a server ca.crt does not vouch for');
        assert.match(err.split('\n').find((l) => /k8s api error/.test(l)), /certificate|SSL/i);
        assert.doesNotMatch(err, /leader elected/);
    } finally {
        if (proc && proc.exitCode === null) {
            const gone = new Promise((r) => proc.on('close', r));
            proc.kill('SIGTERM');
            const kill = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
            await gone;
            clearTimeout(kill);
        }
        await api.close();
        fs.rmSync(sa, { recursive: true, force: true });
        fs.rmSync(sys, { recursive: true, force: true });
    }
});
