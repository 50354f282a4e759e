// helpers.mjs — what the controller's integration tests share: a tiny Ollama stand-in
// upstream, policy files, a proxy started against the fake API server, a load loop of
// high-complexity requests, and /debug/scaling reads.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startProxy, httpGet, HOST } from '../integration/harness.mjs';

export const FAST_POLICY = {
    complexityThresholds: { low: 30, medium: 50, high: 80 },
    modelResourceWeights: { 'qwen2.5:3b': 1.0, 'deepseek-r1': 2.5 },
    scaleUpFactors: { low: 1.2, medium: 1.5, high: 2.0 },
    minReplicas: 1, maxReplicas: 10,
    scaleUpStabilizationSeconds: 2, scaleDownStabilizationSeconds: 3,
    evaluationIntervalSeconds: 1, scaleUpScore: 70, complexityHalfLifeSeconds: 1,
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-policy-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let npol = 0;

/* Write a policy (FAST_POLICY with overrides) to a temp file; returns its path. */
export function policyFile(over = {}) {
    const f = path.join(tmp, `policy-${npol++}.json`);
    fs.writeFileSync(f, JSON.stringify({ ...FAST_POLICY, ...over }));
    return f;
}

/* A minimal Ollama: GET / says it runs; POST /api/* answers one JSON object after delayMs. */
export async function startUpstream(delayMs = 20) {
    const srv = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
            if (req.method === 'GET') {
                res.writeHead(200, { 'Content-Type': 'text/plain' });
                res.end('Ollama is running');
                return;
            }
            setTimeout(() => {
                res.writeHead(200, { 'Content-Type': 'application/json' });
                res.end(JSON.stringify({ model: 'qwen2.5:3b', response: 'ok', done: true, prompt_eval_count: 10, eval_count: 3 }));
            }, delayMs);
        });
    });
    await new Promise((r) => srv.listen(0, HOST, r));
    srv.url = `http://${HOST}:${srv.address().port}`;
    srv.stop = () => { srv.closeAllConnections(); return new Promise((r) => srv.close(r)); };
    return srv;
}

/* Start a proxy (ephemeral ports) with the controller against api as pod `pod` (api null:
 * no cluster settings).  opts: mode (default on), policy (path), env (extra), args (extra),
 * upstream (url). */
export async function startK8sProxy(api, pod, opts = {}) {
    const args = ['--controller', opts.mode || 'on', '--policy', opts.policy || policyFile(),
        '--drain-seconds', '1', ...(opts.args || [])];
    return startProxy(args, { ...(api ? api.env(pod) : { POD_NAME: pod }), ...(opts.env || {}) },
        { upstream: opts.upstream });
}

/* /debug/scaling of a proxy, parsed. */
export async function debugScaling(px) {
    const r = await httpGet(px.metricsPort, '/debug/scaling');
    if (r.status !== 200) throw new Error(`/debug/scaling ${r.status}`);
    return JSON.parse(r.body);
}

/* A prompt of n words (static score high when n > 300; 2000 words stay high even after the
 * history blend learned that the fake upstream is fast). */
export function words(n) {
    return Array.from({ length: n }, (_, i) => `word${i % 50}`).join(' ');
}

/* Keep `concurrency` requests of a high-complexity prompt in flight until stop() is awaited.
 * Resolves stop() to {ok, failed} counts. */
export function loadLoop(port, { concurrency = 4, nwords = 2000 } = {}) {
    let running = true;
    const counts = { ok: 0, failed: 0 };
    const body = JSON.stringify({ model: 'qwen2.5:3b', prompt: words(nwords), stream: false });
    const one = () => new Promise((resolve) => {
        const req = http.request({ host: HOST, port, path: '/api/generate', method: 'POST', agent: false,
            headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
            res.resume();
            res.on('end', () => { if (res.statusCode === 200) counts.ok++; else counts.failed++; resolve(); });
        });
        req.on('error', () => { counts.failed++; resolve(); });
        req.end(body);
    });
    const workers = Array.from({ length: concurrency }, async () => { while (running) await one(); });
    return { counts, stop: async () => { running = false; await Promise.all(workers); return counts; } };
}

/* Lines of a proxy's log with msg === m (from index since). */
export function logsOf(px, m, since = 0) {
    return px.logs.slice(since).filter((o) => o.msg === m);
}
