// k8s_modes.test.mjs — controller modes: auto resolves to on with in-cluster credentials and
// to dry-run without; on without credentials is a startup error (exit 2, one line); dry-run
// without credentials still decides and shows it in /debug/scaling and /metrics.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { itest, stopAll, startProxy, scrapeMetrics, metricValue, WAIT_TIMEOUT_MS } from './harness.mjs';
import { startK8sApi } from '../k8s-api/server.mjs';
import { startK8sProxy, debugScaling, policyFile } from '../k8s-api/helpers.mjs';

after(stopAll);
const NO_CLUSTER = { KUBERNETES_SERVICE_HOST: '', LITEBRAIN_K8S_SA_DIR: '/nonexistent-sa-dir' };

itest('auto with credentials is on (takes the Lease); proxy variables are ignored', async () => {
    const api = await startK8sApi();
    try {
        api.addHpa();
        const dead = 'http://127.0.0.1:9';                 // a proxy here would fail every call
        const px = await startK8sProxy(api, 'pod-a', { mode: 'auto',
            env: { HTTPS_PROXY: dead, https_proxy: dead, ALL_PROXY: dead, all_proxy: dead } });
        await px.waitLog((o) => o.msg === 'leader elected');
        const dbg = await debugScaling(px);
        assert.equal(dbg.mode, 'on');
        assert.equal(dbg.configured_mode, 'auto');
    } finally { await api.close(); }
});

itest('auto without credentials is dry-run and still decides', async () => {
    const px = await startK8sProxy(null, 'pod-x', { mode: 'auto', env: NO_CLUSTER });
    const d = await px.waitLog((o) => o.msg === 'scaling decision', WAIT_TIMEOUT_MS);
    assert.equal(d.mode, 'dry-run');
    assert.equal(d.desired, 1);
    const dbg = await debugScaling(px);
    assert.equal(dbg.mode, 'dry-run');
    assert.equal(dbg.is_leader, false);
    assert.equal(dbg.last_api_error, null);
    const m = await scrapeMetrics(px);
    assert.equal(metricValue(m, 'litebrain_controller_info', { mode: 'dry-run' }), 1);
    assert.ok(metricValue(m, 'litebrain_controller_decisions_total', { direction: 'hold' }) >= 1);
    assert.equal(metricValue(m, 'litebrain_controller_desired_replicas'), 1);
});

itest('on without credentials: one line on stderr, exit 2', async () => {
    const px = await startProxy(['--controller', 'on', '--policy', policyFile()], NO_CLUSTER, { noWait: true });
    const code = await px.exited;
    assert.equal(code.code, 2);
    assert.match(px.lines.map((o) => o.raw || '').join('\n'), /controller on: no in-cluster credentials/);
});

itest('bad lease timings are rejected at startup', async () => {
    const api = await startK8sApi();
    try {
        const px = await startProxy(['--controller', 'on', '--policy', policyFile()],
            api.env('pod-a', { LITEBRAIN_K8S_RENEW_SECONDS: '5' }), { noWait: true });
        assert.equal((await px.exited).code, 2);
        assert.match(px.lines.map((o) => o.raw || '').join('\n'), /lease \(1\) > renew deadline \(5\)/);
    } finally { await api.close(); }
});

itest('TLS is verified against ca.crt: a server cert from another CA gets no request', async () => {
    const api = await startK8sApi();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-wrong-ca-'));
    try {
        api.addHpa();
        for (const f of ['token', 'namespace']) fs.copyFileSync(path.join(api.saDir, f), path.join(dir, f));
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=other-ca',
            '-keyout', path.join(dir, 'ca.key'), '-out', path.join(dir, 'ca.crt')], { stdio: 'ignore' });
        const px = await startK8sProxy(api, 'pod-a', { env: { LITEBRAIN_K8S_SA_DIR: dir } });
        const e = await px.waitLog((o) => o.msg === 'k8s api error');
        assert.equal(e.code, 0);
        assert.match(e.error, /certificate|SSL/i);
        assert.equal(api.requests.length, 0);
        assert.equal((await debugScaling(px)).is_leader, false);
    } finally { await api.close(); fs.rmSync(dir, { recursive: true, force: true }); }
});
