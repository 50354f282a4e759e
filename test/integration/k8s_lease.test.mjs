// k8s_lease.test.mjs — Lease leader election of real proxies against the fake API server
// (lease 1 s, renew deadline 0.7 s, retry 0.2 s): one leader among three; kill -9 → a
// successor only after the record went stale for leaseDurationSeconds; SIGTERM releases.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import { itest, stopAll, scrapeMetrics, metricValue, WAIT_TIMEOUT_MS } from './harness.mjs';
import { startK8sApi } from '../k8s-api/server.mjs';
import { startK8sProxy, debugScaling, logsOf } from '../k8s-api/helpers.mjs';

after(stopAll);
const LEASE_MS = 1000;
const MICROTIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

/* Start three contenders; resolves once the Lease has a holder that renewed three times. */
async function threeContenders(api) {
    const pods = ['pod-a', 'pod-b', 'pod-c'];
    const pxs = await Promise.all(pods.map((p) => startK8sProxy(api, p)));
    const byName = Object.fromEntries(pods.map((p, i) => [p, pxs[i]]));
    await api.waitRequest(() => {
        const w = api.leaseWrites();
        const h = api.holder();
        return h && w.filter((x) => x.holder === h).length >= 3;
    }, WAIT_TIMEOUT_MS, 0, 'a holder with three renewals');
    return { pxs, byName };
}

/* Run fn(api, {pxs, byName}) against a fresh fake API server with an HPA and three contenders
 * settled on a holder; the API server is closed when fn ends. */
async function withContenders(fn) {
    const api = await startK8sApi();
    try {
        api.addHpa();
        await fn(api, await threeContenders(api));
    } finally { await api.close(); }
}

/* Every change of holder (other than from a released record) happened no earlier than
 * leaseDurationSeconds after the previous holder's last successful write. */
function assertNoOverlap(api) {
    const w = api.leaseWrites();
    for (let i = 1; i < w.length; i++) {
        const prev = w[i - 1];
        if (w[i].holder !== prev.holder && prev.holder !== '' && w[i].holder !== '') {
            assert.ok(w[i].t - prev.t >= prev.duration * 1000,
                `${w[i].holder} took over ${Math.round(w[i].t - prev.t)} ms after ${prev.holder}'s last renewal`);
        }
    }
}

itest('three proxies contend: exactly one leader, the others see it', () => withContenders(async (api, { pxs }) => {
    const holder = api.holder();
    const views = await Promise.all(pxs.map(debugScaling));
    assert.equal(views.filter((v) => v.is_leader).length, 1);
    for (const v of views) {
        assert.equal(v.mode, 'on');
        assert.equal(v.is_leader, v.identity === holder);
    }
    const lease = api.leases.get('litebrain-scaler');
    assert.equal(lease.spec.leaseDurationSeconds, 1);
    assert.match(lease.spec.renewTime, MICROTIME);
    assert.match(lease.spec.acquireTime, MICROTIME);
    // the losers' creates/updates were refused with 409, never accepted twice
    const creates = api.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/leases'));
    assert.equal(creates.filter((r) => r.code === 201).length, 1);
    for (let i = 0; i < pxs.length; i++) {
        assert.equal(metricValue(await scrapeMetrics(pxs[i]), 'litebrain_controller_leader'),
            views[i].is_leader ? 1 : 0);
    }
    assertNoOverlap(api);
}));

itest('kill -9 the leader: another leads after the lease went stale', () => withContenders(async (api, { byName }) => {
    const old = api.holder();
    const since = api.mark();
    await byName[old].stop('SIGKILL');
    await api.waitRequest((r) => r.method === 'PUT' && r.code === 200 && r.body.spec.holderIdentity !== old,
        WAIT_TIMEOUT_MS, since, 'a takeover');
    const nu = api.holder();
    assert.notEqual(nu, old);
    const w = api.leaseWrites();
    const lastOld = w.filter((x) => x.holder === old).pop();
    const first = w.find((x) => x.holder === nu && x.t > lastOld.t);
    assert.ok(first.t - lastOld.t >= LEASE_MS, `took over after ${first.t - lastOld.t} ms`);
    assert.equal(first.body.spec.leaseTransitions, lastOld.body.spec.leaseTransitions + 1);
    await byName[nu].waitLog((o) => o.msg === 'leader elected');
    assert.equal((await debugScaling(byName[nu])).is_leader, true);
    assertNoOverlap(api);
}));

itest('SIGTERM releases the lease at once; a successor takes it without waiting it out', () => withContenders(async (api, { byName }) => {
    const old = api.holder();
    const since = api.mark();
    const stopped = byName[old].stop('SIGTERM');
    const rel = await api.waitRequest((r) => r.method === 'PUT' && r.code === 200 && r.body.spec.holderIdentity === '',
        WAIT_TIMEOUT_MS, since, 'the release');
    assert.equal(rel.body.spec.leaseDurationSeconds, 1);
    assert.match(rel.body.spec.renewTime, MICROTIME);
    const take = await api.waitRequest((r, i) => i > api.requests.indexOf(rel) && r.method === 'PUT' && r.code === 200
        && r.body.spec.holderIdentity && r.body.spec.holderIdentity !== old, WAIT_TIMEOUT_MS, since, 'a successor');
    assert.notEqual(take.body.spec.holderIdentity, old);
    assert.equal(await stopped, 0);
    assert.equal(logsOf(byName[old], 'leader lost').at(-1).reason, 'released on shutdown');
}));
