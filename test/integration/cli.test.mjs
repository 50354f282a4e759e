// cli.test.mjs — the command line: bad flags, bad values (flags and environment), bad policy
// files and ports that cannot be bound each give exactly one clear line on stderr and exit
// code 2; --help and --version exit 0; --check-policy exits 0 on a good file (printing the
// effective policy) and 2 on a bad one; an upstream that is not up yet is not an error
// (start, /readyz 503, requests 502, and /readyz 200 once a sim listens there).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import {
    HOST, SLOW, WAIT_TIMEOUT_MS, buildRequest, freePort, hostOf, httpGet, itest, pollUntil,
    rawRequest, startProxy, startSim, stopAll,
} from './harness.mjs';

let dir;
const SEED = {
    complexityThresholds: { low: 30, medium: 50, high: 80 },
    modelResourceWeights: { 'qwen2.5:3b': 1.0, 'deepseek-r1': 2.5, codellama: 2.0 },
    scaleUpFactors: { low: 1.2, medium: 1.5, high: 2.0 },
};
const file = (name, content) => { const p = path.join(dir, name); fs.writeFileSync(p, content); return p; };
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lb-cli-')); });
after(async () => { await stopAll(); fs.rmSync(dir, { recursive: true, force: true }); });

/* Run the proxy with exactly `args` until it exits by itself; {code, err: [stderr lines],
 * out: stdout text}. */
async function run(args, env = {}) {
    const p = await startProxy(args, env, { raw: true, noWait: true });
    const ex = await p.waitExit(5000 * SLOW);      // a proxy that wrongly starts runs on
    await new Promise((r) => setImmediate(r));      // let the last stderr line be parsed
    const err = p.lines.map((l) => (l.raw !== undefined ? l.raw : JSON.stringify(l))).filter((l) => l.trim() !== '');
    return { code: ex.code, signal: ex.signal, err, out: p.other };
}

/* Listen on an ephemeral loopback port and keep it busy. */
async function busyPort() {
    const s = net.createServer();
    s.listen(0, HOST);
    await once(s, 'listening');
    return s;
}

const LOCAL = ['--listen', `${HOST}:0`, '--metrics-listen', `${HOST}:0`];

itest('startup errors: exactly one stderr line and exit code 2', async (t) => {
    const good = file('good.json', JSON.stringify(SEED));
    const cases = [
        ['unknown flag', ['--bogus-flag']],
        ['missing value', [...LOCAL, '--listen']],
        ['bad size', [...LOCAL, '--max-body', 'lots']],
        ['bad size suffix', [...LOCAL, '--max-body', '10XB']],
        ['bad duration', [...LOCAL, '--header-timeout', 'soon']],
        ['negative duration', [...LOCAL, '--drain-seconds', '-3']],
        ['bad controller mode', [...LOCAL, '--controller', 'maybe']],
        ['bad log level', [...LOCAL, '--log-level', 'loud']],
        ['bad max connections', [...LOCAL, '--max-connections', 'many']],
        ['bad io_uring mode', [...LOCAL, '--io-uring', 'on']],
        ['bad io_uring env', [...LOCAL], { LITEBRAIN_IO_URING: 'yes' }],
        ['bad listen address', ['--listen', 'not-an-address:xx', '--metrics-listen', `${HOST}:0`]],
        ['bad upstream', [...LOCAL, '--upstream', 'http://127.0.0.1:99999']],
        ['missing policy file', [...LOCAL, '--policy', path.join(dir, 'nope.json')]],
        ['policy not JSON', [...LOCAL, '--policy', file('notjson.json', '{"complexityThresholds": ')]],
        ['policy unknown key', [...LOCAL, '--policy', file('unknown.json', JSON.stringify({ ...SEED, bogusKey: 1 }))]],
        ['policy bad value', [...LOCAL, '--policy', file('badval.json', JSON.stringify({ ...SEED, complexityThresholds: { low: 'x', medium: 50, high: 80 } }))]],
        ['bad env value', [...LOCAL], { LITEBRAIN_MAX_BODY: 'huge' }],
        ['bad env policy', [...LOCAL], { LITEBRAIN_POLICY: path.join(dir, 'nope.json') }],
    ];
    for (const [name, args, env] of cases) {
        await t.test(name, async () => {
            const r = await run(args, env);
            assert.equal(r.code, 2, `exit ${r.code} ${r.signal || ''}; stderr: ${r.err.join(' | ')}`);
            assert.equal(r.err.length, 1, `one stderr line, got: ${r.err.join(' | ')}`);
            assert.ok(r.err[0].length > 10, 'a message that says something');
        });
    }
    assert.ok(fs.existsSync(good));
});

itest('a port that cannot be bound: one line, exit 2 (proxy port and metrics port)', async () => {
    const busy = await busyPort();
    try {
        const port = busy.address().port;
        let r = await run(['--listen', `${HOST}:${port}`, '--metrics-listen', `${HOST}:0`]);
        assert.equal(r.code, 2, r.err.join(' | '));
        assert.equal(r.err.length, 1, r.err.join(' | '));
        assert.match(r.err[0], new RegExp(String(port)));
        r = await run(['--listen', `${HOST}:0`, '--metrics-listen', `${HOST}:${port}`]);
        assert.equal(r.code, 2, r.err.join(' | '));
        assert.equal(r.err.length, 1, r.err.join(' | '));
    } finally { busy.close(); }
});

itest('--help and --version exit 0', async () => {
    let r = await run(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.out + r.err.join('\n'), /--listen/);
    assert.match(r.out + r.err.join('\n'), /--upstream/);
    r = await run(['--version']);
    assert.equal(r.code, 0);
    assert.ok((r.out + r.err.join('')).trim().length > 0);
});

itest('--check-policy: ok → 0 with the effective policy, bad → 2 with the JSON path', async () => {
    let r = await run(['--check-policy', file('check-good.json', JSON.stringify(SEED))]);
    assert.equal(r.code, 0, r.err.join(' | '));
    assert.match(r.out, /complexityThresholds/);
    assert.match(r.out, /scaleUpScore/, 'defaults of the extensions shown in the effective policy');
    const eff = JSON.parse(r.out);
    assert.deepEqual(eff.complexityThresholds, SEED.complexityThresholds);
    assert.deepEqual(eff.scaleUpFactors, SEED.scaleUpFactors);
    const again = await run(['--check-policy', file('check-again.json', r.out)]);
    assert.equal(again.code, 0, `the printed policy is accepted back: ${again.err.join(' | ')}`);
    assert.equal(again.out, r.out, 'printing is a fixed point');

    r = await run(['--check-policy', file('check-bad.json', JSON.stringify({ ...SEED, scaleUpFactors: { low: 1.2, medium: 'fast', high: 2 } }))]);
    assert.equal(r.code, 2);
    assert.equal(r.err.length, 1, r.err.join(' | '));
    assert.match(r.err[0], /scaleUpFactors/);
    assert.match(r.err[0], /medium/);

    r = await run(['--check-policy', file('check-unknown.json', JSON.stringify({ ...SEED, minReplicaz: 2 }))]);
    assert.equal(r.code, 2);
    assert.match(r.err.join(' '), /minReplicaz/);

});

itest('an upstream that is not up yet: start, readyz 503 and 502s, then ready once it listens', async (t) => {
    const port = await freePort();
    const px = await startProxy([], {}, { upstream: `http://${HOST}:${port}` });
    assert.equal((await httpGet(px.metricsPort, '/readyz')).status, 503);
    assert.equal((await httpGet(px.metricsPort, '/healthz')).status, 200);
    const r = await rawRequest(px.port, buildRequest('GET', '/api/tags', [['Host', hostOf(px.port)]]));
    assert.equal(r.status, 502);

    const sim = await startSim(['--listen', `${HOST}:${port}`]);
    assert.equal(sim.port, port);
    const t0 = performance.now();
    await pollUntil(async () => (await httpGet(px.metricsPort, '/readyz')).status === 200, 10000 * SLOW, '/readyz 200 after the upstream came up');
    t.diagnostic(`ready ${(performance.now() - t0).toFixed(0)} ms after the sim started`);
    const r2 = await rawRequest(px.port, buildRequest('GET', '/api/tags', [['Host', hostOf(px.port)]]));
    assert.equal(r2.status, 200);
});
