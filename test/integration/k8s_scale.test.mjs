// k8s_scale.test.mjs — what the controller writes, against the fake API server with a fast
// policy (evaluation 1 s, up window 2 s, down window 3 s): the HPA floor rises by the policy's
// factor under high-complexity load and falls one replica at a time after it; maxReplicas is
// never written; a new leader steps from the cluster's floor; without an HPA the scale
// subresource is patched; dry-run writes nothing;
// the pod resize patch is exactly right; Infeasible causes no retry storm.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import { itest, stopAll, WAIT_TIMEOUT_MS, SLOW } from './harness.mjs';
import { startK8sApi } from '../k8s-api/server.mjs';
import { startK8sProxy, startUpstream, policyFile, loadLoop, debugScaling, logsOf } from '../k8s-api/helpers.mjs';

after(stopAll);
const LONG = 30000 * SLOW;       // generous bound for multi-window sequences
const HPA_PATH = '/apis/autoscaling/v2/namespaces/goblinos-ai/horizontalpodautoscalers/ollama-hpa';
const SCALE_PATH = '/apis/apps/v1/namespaces/goblinos-ai/deployments/ollama-inference/scale';
const RESIZE_PATH = (pod) => `/api/v1/namespaces/goblinos-ai/pods/${pod}/resize`;

itest('high-complexity load raises the HPA floor by the factor; it falls one step per window after', async () => {
    const api = await startK8sApi();
    const up = await startUpstream(20);
    try {
        api.addHpa('ollama-hpa', 1, 10, 1);
        const px = await startK8sProxy(api, 'pod-a', { upstream: up.url });
        await px.waitLog((o) => o.msg === 'leader elected');
        const load = loadLoop(px.port, { concurrency: 4 });
        const patches = () => api.requests.filter((r) => r.method === 'PATCH' && r.path === HPA_PATH && r.code === 200);
        await api.waitRequest(() => patches().some((r) => r.body.spec.minReplicas === 4), LONG, 0, 'minReplicas 4');
        const counts = await load.stop();
        assert.ok(counts.ok > 0);
        assert.equal(counts.failed, 0);
        await api.waitRequest(() => patches().length > 2 && patches().at(-1).body.spec.minReplicas === 1, LONG, 0, 'minReplicas back to 1');
        const vals = patches().map((r) => r.body.spec.minReplicas);
        const peak = vals.indexOf(Math.max(...vals));
        // up: x2.0 per step (level high: current 1 -> 2 -> 4 ...)
        for (let i = 1; i <= peak; i++) assert.equal(vals[i], Math.min(10, vals[i - 1] * 2), `up ${vals}`);
        assert.equal(vals[0], 2);
        // down: one replica at a time
        for (let i = peak + 1; i < vals.length; i++) assert.equal(vals[i], vals[i - 1] - 1, `down ${vals}`);
        // each write's decision names the value it replaced and the new one
        await px.waitLog((o) => o.msg === 'scaling decision' && o.action === 'set hpa minReplicas 2 -> 1');
        const sets = logsOf(px, 'scaling decision').map((d) => d.action).filter((a) => a.startsWith('set '));
        assert.deepEqual(sets, vals.map((v, i) => `set hpa minReplicas ${i ? vals[i - 1] : 1} -> ${v}`));
        for (const r of api.writes().filter((x) => !x.path.includes('/leases'))) {
            assert.equal(r.path, HPA_PATH);
            assert.equal(r.contentType, 'application/merge-patch+json');
            assert.deepEqual(Object.keys(r.body), ['spec']);
            assert.deepEqual(Object.keys(r.body.spec), ['minReplicas']);      // never maxReplicas
        }
        assert.equal(api.hpas.get('ollama-hpa').spec.maxReplicas, 10);
        const dec = logsOf(px, 'scaling decision');
        assert.ok(dec.some((d) => d.direction === 'up' && /scaleUpScore/.test(d.reason)));
        assert.ok(dec.some((d) => d.direction === 'down' && /idle/.test(d.reason)));
        const dbg = await debugScaling(px);
        assert.equal(dbg.is_leader, true);
        assert.equal(dbg.desired_replicas, 1);
        assert.ok(dbg.decisions.length > 0 && dbg.decisions[0].reason);
        assert.ok(Array.isArray(dbg.window.recommendations));
    } finally { await up.stop(); await api.close(); }
});

itest('a new leader steps the floor down one replica from what the cluster has, not from its own idle value', async () => {
    const api = await startK8sApi();
    const up = await startUpstream(20);
    try {
        api.addHpa('ollama-hpa', 1, 10, 1);
        const A = await startK8sProxy(api, 'pod-a', { upstream: up.url });
        await A.waitLog((o) => o.msg === 'leader elected');
        const B = await startK8sProxy(api, 'pod-b', { upstream: up.url });   // idle all along
        const load = loadLoop(A.port, { concurrency: 4 });
        await api.waitRequest((r) => r.method === 'PATCH' && r.code === 200 && r.body.spec.minReplicas >= 4, LONG, 0, 'A raises the floor to 4');
        await load.stop();
        const top = api.hpas.get('ollama-hpa').spec.minReplicas;
        // B's pod was idle all along: its engine alone would have stepped towards minReplicas
        await B.waitLog((o) => o.msg === 'scaling decision' && o.action === 'not leader');
        const since = api.mark();
        await A.stop('SIGKILL');
        const first = await api.waitRequest((r) => r.method === 'PATCH' && r.path === HPA_PATH, LONG, since, "B's first write");
        assert.equal(api.holder(), 'pod-b');
        assert.equal(first.body.spec.minReplicas, top - 1, `B wrote ${first.body.spec.minReplicas} over ${top}`);
    } finally { await up.stop(); await api.close(); }
});

itest('the floor never goes above the HPA maxReplicas', async () => {
    const api = await startK8sApi();
    try {
        api.addHpa('ollama-hpa', 1, 3, 1);
        const px = await startK8sProxy(api, 'pod-a', { policy: policyFile({ minReplicas: 5 }) });
        const r = await api.waitRequest((x) => x.method === 'PATCH' && x.code === 200, WAIT_TIMEOUT_MS, 0, 'a patch');
        assert.equal(r.body.spec.minReplicas, 3);
        await px.waitLog((o) => o.msg === 'scaling decision' && o.action === 'unchanged');
        assert.equal(api.writes().filter((x) => x.method === 'PATCH').length, 1);   // write only on change
    } finally { await api.close(); }
});

itest('without an HPA the deployment scale subresource is patched', async () => {
    const api = await startK8sApi();
    try {
        api.addScale('ollama-inference', 1);
        await startK8sProxy(api, 'pod-a', { policy: policyFile({ minReplicas: 2 }), env: { LITEBRAIN_K8S_HPA: '' } });
        const r = await api.waitRequest((x) => x.method === 'PATCH', WAIT_TIMEOUT_MS, 0, 'a scale patch');
        assert.equal(r.path, SCALE_PATH);
        assert.equal(r.contentType, 'application/merge-patch+json');
        assert.deepEqual(r.body, { spec: { replicas: 2 } });
        assert.equal(r.code, 200);
        assert.equal(api.scales.get('ollama-inference').spec.replicas, 2);
        assert.equal(api.requests.filter((x) => x.path.includes('horizontalpodautoscalers')).length, 0);
    } finally { await api.close(); }
});

itest('dry-run decides and logs the same but makes no write and takes no Lease', async () => {
    const api = await startK8sApi();
    const up = await startUpstream(20);
    try {
        api.addHpa('ollama-hpa', 1, 10, 1);
        const px = await startK8sProxy(api, 'pod-a', { mode: 'dry-run', upstream: up.url });
        const load = loadLoop(px.port, { concurrency: 4 });
        const d = await px.waitLog((o) => o.msg === 'scaling decision' && o.desired >= 2, LONG);
        await load.stop();
        assert.equal(d.mode, 'dry-run');
        assert.match(d.action, /^dry-run: would set hpa minReplicas to 2$/);
        assert.ok(api.requests.length > 0);                               // it did read
        assert.deepEqual(api.writes(), []);
        assert.equal(api.requests.filter((x) => x.path.includes('/leases')).length, 0);
        const dbg = await debugScaling(px);
        assert.equal(dbg.mode, 'dry-run');
        assert.equal(dbg.is_leader, false);
    } finally { await up.stop(); await api.close(); }
});

const RESOURCES = {
    low: { cpu: '2', memory: '8Gi' }, medium: { cpu: '4', memory: '12Gi' }, high: { cpu: '6', memory: '16Gi' },
};

itest('idle pod resizes its own container to the low profile: path, type and body exact', async () => {
    const api = await startK8sApi();
    try {
        api.addHpa();
        api.addPod('pod-a', { requests: { cpu: '4', memory: '12Gi' }, limits: { cpu: '4', memory: '12Gi' } });
        const px = await startK8sProxy(api, 'pod-a', { policy: policyFile({ resources: RESOURCES }) });
        const r = await api.waitRequest((x) => x.method === 'PATCH' && x.path.endsWith('/resize'), LONG, 0, 'a resize');
        assert.equal(r.path, RESIZE_PATH('pod-a'));
        assert.equal(r.contentType, 'application/strategic-merge-patch+json');
        assert.deepEqual(r.body, { spec: { containers: [{ name: 'ollama', resources: {
            requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '2', memory: '8Gi' } } }] } });
        assert.equal(r.code, 200);
        await px.waitLog((o) => o.msg === 'pod resize' && o.code === 200);
        const dbg = await debugScaling(px);
        assert.deepEqual({ cpu: dbg.resources.cpu, memory: dbg.resources.memory }, { cpu: '2', memory: '8Gi' });
    } finally { await api.close(); }
});

itest('a Burstable container stays Burstable: requests keep their ratio below the limits', async () => {
    const api = await startK8sApi();
    try {
        api.addHpa();
        api.addPod('pod-a', { requests: { cpu: '2', memory: '6Gi' }, limits: { cpu: '4', memory: '12Gi' } });
        await startK8sProxy(api, 'pod-a', { policy: policyFile({ resources: RESOURCES }) });
        const r = await api.waitRequest((x) => x.method === 'PATCH' && x.path.endsWith('/resize'), LONG, 0, 'a resize');
        assert.deepEqual(r.body.spec.containers[0].resources, {
            requests: { cpu: '1', memory: '4Gi' }, limits: { cpu: '2', memory: '8Gi' } });
    } finally { await api.close(); }
});

itest('Infeasible resize: no retry storm, the state shows it', async () => {
    const api = await startK8sApi();
    try {
        api.addHpa();
        api.resizeOutcome = 'Infeasible';
        api.addPod('pod-a', { requests: { cpu: '4', memory: '12Gi' }, limits: { cpu: '4', memory: '12Gi' } });
        const px = await startK8sProxy(api, 'pod-a', { policy: policyFile({ resources: RESOURCES }) });
        await api.waitRequest((x) => x.method === 'PATCH' && x.path.endsWith('/resize'), LONG, 0, 'a resize');
        const mark = px.mark();
        await px.waitLog((o, i) => o.msg === 'scaling decision' && logsOf(px, 'scaling decision', mark).length >= 6, LONG, mark);
        assert.equal(api.requests.filter((x) => x.method === 'PATCH' && x.path.endsWith('/resize')).length, 1);
        const dbg = await debugScaling(px);
        assert.equal(dbg.resources.state, 'Infeasible');
    } finally { await api.close(); }
});

itest('Kubernetes 1.33/1.34 refuse a memory-limit decrease: CPU is resized alone, once', async () => {
    const api = await startK8sApi();
    try {
        api.addHpa();
        api.memoryLimitDecrease = false;
        api.addPod('pod-a', { requests: { cpu: '6', memory: '16Gi' }, limits: { memory: '16Gi' } });
        const px = await startK8sProxy(api, 'pod-a', { policy: policyFile({ resources: RESOURCES }) });
        const isResize = (x) => x.method === 'PATCH' && x.path.endsWith('/resize');
        const ok = await api.waitRequest((x) => isResize(x) && x.code === 200, LONG, 0, 'the CPU-only resize');
        const first = api.requests.filter(isResize)[0];
        assert.equal(first.code, 422);
        assert.deepEqual(first.body.spec.containers[0].resources, {
            requests: { cpu: '2', memory: '8Gi' }, limits: { memory: '8Gi' } });
        assert.deepEqual(ok.body.spec.containers[0].resources, { requests: { cpu: '2' } });
        assert.deepEqual(api.pods.get('pod-a').spec.containers[0].resources, {
            requests: { cpu: '2', memory: '16Gi' }, limits: { memory: '16Gi' } });
        const mark = px.mark();         // a few more evaluations: no retry of the memory decrease
        await px.waitLog((o) => o.msg === 'scaling decision' && logsOf(px, 'scaling decision', mark).length >= 4, LONG, mark);
        assert.equal(api.requests.filter(isResize).length, 2);
        assert.equal(logsOf(px, 'pod resize: memory limit decrease refused, resizing CPU only').length, 1);
        const dbg = await debugScaling(px);
        assert.deepEqual({ cpu: dbg.resources.cpu, memory: dbg.resources.memory }, { cpu: '2', memory: '16Gi' });
    } finally { await api.close(); }
});

itest('the kubelet\'s verdict is read from the pod later; a stale Infeasible is not blamed on the next resize', async () => {
    const api = await startK8sApi();
    try {
        api.addHpa();
        // the pod's current spec (6 CPUs) was judged Infeasible; the PATCH's answer still carries
        // that condition, as a real API server's does, until the kubelet looks at the new spec
        api.addPod('pod-a', { requests: { cpu: '6', memory: '16Gi' }, limits: { cpu: '6', memory: '16Gi' } });
        api.pods.get('pod-a').status.conditions.push({ type: 'PodResizePending', status: 'True',
            reason: 'Infeasible', observedGeneration: 1, message: 'Node didn\'t have enough capacity' });
        const px = await startK8sProxy(api, 'pod-a', { policy: policyFile({ resources: RESOURCES }) });
        await api.waitRequest((x) => x.method === 'PATCH' && x.path.endsWith('/resize') && x.code === 200, LONG, 0, 'a resize');
        const logged = await px.waitLog((o) => o.msg === 'pod resize');
        assert.equal(logged.cpu_m, 2000);
        assert.equal(logged.state, 'patched');  // not the old spec's Infeasible
        const mark = px.mark();
        await px.waitLog((o) => o.msg === 'scaling decision' && logsOf(px, 'scaling decision', mark).length >= 2, LONG, mark);
        assert.equal((await debugScaling(px)).resources.state, 'applied');
    } finally { await api.close(); }
});
