// metrics.test.mjs — a real Prometheus (/usr/bin/prometheus, scrape interval 1 s) scrapes the
// proxy while a known workload runs through it against the simulator; then its HTTP API must
// agree with what the clients saw: request count, complexity split (X-LiteBrain-Level), status
// split, active requests back to 0, token counters equal to the simulator's reported counts
// (NDJSON and SSE, streamed and not), TTFT observations = streamed responses, and the seed
// queries return numbers.  The live /metrics also passes `promtool check metrics`.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import {
    HOST, MODEL, EMBED_MODEL, SLOW, WAIT_TIMEOUT_MS, RawClient, buildRequest, hostOf, httpGet,
    itest, metricValue, parseChunked, pollUntil, rawRequest, scrapeMetrics, startProxy, startSim, stopAll,
    freePort,
} from './harness.mjs';

const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';
const PROM_START_MS = 30000 * SLOW;     // Prometheus up and scraping
const PROM_CATCH_UP_MS = 20000 * SLOW;  // a scrape newer than the workload's end
const CHAT_MODEL = 'llama3.2:latest';

after(stopAll);

/* Start Prometheus scraping 127.0.0.1:targetPort every second, storage in a temp dir.
 * Returns {port, stop(), log()}. */
async function startPrometheus(targetPort) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lb-prom-'));
    const cfg = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(cfg, [
        'global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', '  evaluation_interval: 1s',
        'scrape_configs:', '  - job_name: litebrain', '    static_configs:',
        `      - targets: ['${hostOf(targetPort)}']`, '',
    ].join('\n'));
    const port = await freePort();
    let out = '';
    const proc = spawn(PROMETHEUS, [
        `--config.file=${cfg}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=${HOST}:${port}`, '--log.level=warn',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((r) => proc.on('exit', r));
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const stop = async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
            proc.kill('SIGTERM');
            const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
            await exited;
            clearTimeout(t);
        }
        fs.rmSync(dir, { recursive: true, force: true });
    };
    try {
        await pollUntil(async () => proc.exitCode === null && (await httpGet(port, '/-/ready')).status === 200,
            PROM_START_MS, 'prometheus /-/ready', 100);
    } catch (e) {
        await stop();
        throw new Error(`${e.message}\n${out.slice(-4000)}`);
    }
    return { port, stop, log: () => out.slice(-4000) };
}

/* Instant query; resolves to the result vector [{metric, value: [ts, "v"]}]. */
async function query(prom, q) {
    const r = await httpGet(prom.port, `/api/v1/query?query=${encodeURIComponent(q)}`);
    const j = JSON.parse(r.body);
    if (j.status !== 'success') throw new Error(`query ${q}: ${r.body}`);
    return j.data.result;
}

/* The single value of a query (sum of a 1-element vector); undefined when empty. */
async function scalar(prom, q) {
    const res = await query(prom, q);
    return res.length ? Number(res[0].value[1]) : undefined;
}

/* Token counts as the simulator reported them in a response body: the last top-level
 * prompt_eval_count/eval_count of an NDJSON line or JSON document, or the last non-null
 * `usage` of an SSE event / OpenAI JSON.  Absent → undefined. */
function reportedTokens(body, contentType) {
    const docs = [];
    if (contentType.startsWith('text/event-stream')) {
        for (const line of body.split('\n')) {
            if (line.startsWith('data: ') && line !== 'data: [DONE]') docs.push(JSON.parse(line.slice(6)));
        }
    } else if (contentType.startsWith('application/x-ndjson')) {
        for (const line of body.split('\n')) if (line.trim()) docs.push(JSON.parse(line));
    } else if (contentType.startsWith('application/json')) {
        try { docs.push(JSON.parse(body)); } catch (e) { throw new Error(`bad JSON (${e.message}): ${body.slice(0, 2000)}`); }
    }
    let prompt; let output;
    for (const d of docs) {
        if (d === null || typeof d !== 'object') continue;
        if (typeof d.prompt_eval_count === 'number') prompt = d.prompt_eval_count;
        if (typeof d.eval_count === 'number') output = d.eval_count;
        if (d.usage && typeof d.usage === 'object') {
            if (typeof d.usage.prompt_tokens === 'number') prompt = d.usage.prompt_tokens;
            if (typeof d.usage.completion_tokens === 'number') output = d.usage.completion_tokens;
        }
    }
    return prompt === undefined && output === undefined ? undefined : { prompt: prompt || 0, output: output || 0 };
}

const words = (n, w = 'word') => Array.from({ length: n }, (_, i) => `${w}${i % 50}`).join(' ');

/* The workload: [method, path, body object or null, extra headers]. */
function workload() {
    const gen = (prompt, stream, model = MODEL) => ['POST', '/api/generate', { model, prompt, stream }];
    const chat = (text, stream, model = CHAT_MODEL) => ['POST', '/api/chat',
        { model, stream, messages: [{ role: 'user', content: text }] }];
    const oai = (text, stream, usage, model = MODEL) => ['POST', '/v1/chat/completions', {
        model, stream, messages: [{ role: 'user', content: text }],
        ...(usage ? { stream_options: { include_usage: true } } : {}),
    }];
    return [
        gen('hi', true), gen(words(150), true), gen(words(400), true),
        gen('why is the sky blue?', false), gen(`refactor this ${words(120)}`, false, 'codellama:7b'),
        chat('hello there', true), chat(words(200), true), chat('design a cache', false),
        oai('hi', true, true), oai(words(350), true, true), oai('hello', true, false),
        oai('explain monads', false, false, CHAT_MODEL),
        ['POST', '/v1/completions', { model: MODEL, prompt: 'once upon a time' }],
        ['POST', '/api/embed', { model: EMBED_MODEL, input: 'embed me' }],
        ['POST', '/v1/embeddings', { model: EMBED_MODEL, input: 'embed me too' }],
        ['POST', '/api/generate', { model: 'no-such-model:1b', prompt: 'hi' }],
        ['GET', '/api/tags', null], ['GET', '/api/version', null], ['HEAD', '/', null],
        ['GET', '/api/tags', null, { 'X-Sim-Fault': 'close-before-head' }],
    ];
}

itest('a real Prometheus scraping the proxy agrees with the workload', { timeout: 120000 * SLOW }, async (t) => {
    const sim = await startSim();
    const px = await startProxy([], {}, { sim });
    const prom = await startPrometheus(px.metricsPort);
    try {
        // Prometheus has scraped the idle proxy once, so rate() sees the workload's increase
        await pollUntil(async () => (await scalar(prom, 'up{job="litebrain"}')) === 1, PROM_START_MS, 'first scrape', 100);

        const sent = [];        // {status, level, streamed, tokens, model}
        for (const [method, p, body, headers = {}] of workload()) {
            const r = await httpGet(px.port, p, {
                method, headers: { 'Content-Type': 'application/json', ...headers },
                body: body ? JSON.stringify(body) : undefined,
            });
            const ct = r.headers['content-type'] || '';
            sent.push({
                status: r.status, level: r.headers['x-litebrain-level'] || 'none',
                streamed: r.body.length > 0 && (ct.startsWith('application/x-ndjson') || ct.startsWith('text/event-stream')),
                tokens: r.status === 200 && body ? reportedTokens(r.body, ct) : undefined,
                model: body && body.model,
            });
        }

        // one client that leaves mid-stream: 499
        const c = await RawClient.connect(px.port);
        const pmark = px.mark();
        await c.write(buildRequest('POST', '/api/generate', [['Host', hostOf(px.port)],
            ['Content-Type', 'application/json'], ['X-Sim-Fault', 'chunks=2000,interval-ms=10']],
        JSON.stringify({ model: MODEL, prompt: 'a long story', stream: true })));
        await c.waitFor((cl) => { const i = cl.buf.indexOf('\r\n\r\n'); return i > 0 && parseChunked(cl.buf.subarray(i + 4)).chunks.length >= 2; });
        const head = c.buf.subarray(0, c.buf.indexOf('\r\n\r\n')).toString();
        const lvl = /\r\nx-litebrain-level: *(\w+)/i.exec(head);
        c.reset();
        await px.waitLog((o) => o.status === 499, WAIT_TIMEOUT_MS, pmark);
        sent.push({ status: 499, level: lvl ? lvl[1] : 'none', streamed: true, tokens: undefined, model: MODEL });

        // the proxy's own view settles: every request counted, none in flight
        const N = sent.length;
        await pollUntil(async () => {
            const m = await scrapeMetrics(px);
            return metricValue(m, 'litebrain_requests_total') === N && metricValue(m, 'litebrain_active_requests') === 0;
        }, WAIT_TIMEOUT_MS, `litebrain_requests_total = ${N} and no active request`);
        const tEnd = Date.now() / 1000;

        // wait for a Prometheus scrape newer than the workload's end
        await pollUntil(async () => (await scalar(prom, 'timestamp(litebrain_active_requests{job="litebrain"})')) > tEnd,
            PROM_CATCH_UP_MS, 'a scrape after the workload', 200);

        assert.equal(await scalar(prom, 'sum(litebrain_requests_total)'), N, 'every request counted once');
        assert.equal(await scalar(prom, 'sum(litebrain_request_duration_seconds_count)'), N, 'every request in the histogram');
        assert.equal(await scalar(prom, 'litebrain_active_requests'), 0);
        assert.equal(await scalar(prom, 'litebrain_waiting_requests'), 0);

        const tally = (key) => sent.reduce((o, s) => { o[s[key]] = (o[s[key]] || 0) + 1; return o; }, {});
        const byLevel = Object.fromEntries((await query(prom, 'sum by (complexity) (litebrain_requests_total)'))
            .map((r) => [r.metric.complexity, Number(r.value[1])]));
        assert.deepEqual(byLevel, tally('level'), 'complexity split = X-LiteBrain-Level headers');
        assert.ok(Object.keys(tally('level')).length >= 3, `the workload spans levels: ${JSON.stringify(tally('level'))}`);
        const byStatus = Object.fromEntries((await query(prom, 'sum by (status) (litebrain_requests_total)'))
            .map((r) => [r.metric.status, Number(r.value[1])]));
        assert.deepEqual(byStatus, tally('status'), 'status split = statuses the clients saw');
        assert.ok(byStatus['499'] === 1 && byStatus['502'] === 1 && byStatus['404'] === 1);
        assert.equal(await scalar(prom, 'litebrain_upstream_errors_total{reason="reset"}'), 1);

        // tokens: per model, what the simulator reported in the bodies
        const want = {};
        for (const s of sent) {
            if (!s.tokens) continue;
            want[s.model] = want[s.model] || { prompt: 0, output: 0 };
            want[s.model].prompt += s.tokens.prompt;
            want[s.model].output += s.tokens.output;
        }
        assert.ok(Object.keys(want).length >= 3, `token reports from several models: ${JSON.stringify(want)}`);
        for (const [model, w] of Object.entries(want)) {
            assert.equal(await scalar(prom, `litebrain_prompt_tokens_total{model="${model}"}`), w.prompt, `prompt tokens of ${model}`);
            assert.equal(await scalar(prom, `litebrain_output_tokens_total{model="${model}"}`), w.output, `output tokens of ${model}`);
        }
        assert.equal(await scalar(prom, 'sum(litebrain_output_tokens_total)'),
            Object.values(want).reduce((a, w) => a + w.output, 0), 'no tokens from anywhere else');
        const streamed = sent.filter((s) => s.streamed).length;
        assert.equal(await scalar(prom, 'litebrain_time_to_first_token_seconds_count'), streamed, 'one TTFT per streamed response');
        assert.ok(await scalar(prom, 'litebrain_time_per_output_token_seconds_count') > 0);

        // the seed queries return numbers
        const mean = await query(prom, 'rate(litebrain_request_duration_seconds_sum[5m]) / rate(litebrain_request_duration_seconds_count[5m])');
        for (const level of Object.keys(tally('level'))) {
            const r = mean.find((x) => x.metric.complexity === level);
            assert.ok(r && Number.isFinite(Number(r.value[1])), `mean duration of ${level}: ${JSON.stringify(r)}`);
        }
        const avg = await scalar(prom, 'avg_over_time(litebrain_complexity_score[5m])');
        assert.ok(Number.isFinite(avg) && avg > 0 && avg <= 100, `avg_over_time ${avg}`);
        const deriv = await scalar(prom, 'deriv(litebrain_complexity_score[5m])');
        assert.ok(Number.isFinite(deriv), `deriv ${deriv}`);
        t.diagnostic(`${N} requests; levels ${JSON.stringify(byLevel)}; statuses ${JSON.stringify(byStatus)}; ` +
            `avg complexity ${avg.toFixed(2)}, deriv ${deriv.toFixed(4)}/s; streamed ${streamed}`);

        // the live exposition passes promtool
        const text = await scrapeMetrics(px);
        const pt = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
        assert.equal(pt.status, 0, `promtool check metrics: ${pt.stdout}${pt.stderr}`);
        const headResp = await httpGet(px.metricsPort, '/metrics', { method: 'HEAD' });
        assert.equal(headResp.status, 200);
        assert.equal(headResp.body, '');
        assert.equal(headResp.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    } catch (e) {
        process.stderr.write(`\n----- prometheus\n${prom.log()}\n`);
        throw e;
    } finally {
        await prom.stop();
    }
});

itest('an /api/tags poller does not bring a decayed complexity back; pulls are no TTFT, whole OpenAI answers no TPOT', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lb-cx-'));
    const policy = path.join(dir, 'policy.json');
    fs.writeFileSync(policy, JSON.stringify({ complexityHalfLifeSeconds: 1 }));
    try {
        const sim = await startSim();
        const px = await startProxy(['--policy', policy], {}, { sim });
        const post = (p, body) => rawRequestJson(px.port, p, body);
        let r = await post('/api/generate', { model: MODEL, prompt: words(400), stream: false });
        assert.equal(r.status, 200);
        assert.equal(r.header('x-litebrain-level'), 'high');
        // idle: the gauge halves every second and reads 0 below 0.5
        await pollUntil(async () => metricValue(await scrapeMetrics(px), 'litebrain_complexity_score') === 0,
            30000 * SLOW, 'the gauge to decay to 0', 250);
        for (let i = 0; i < 3; i++) {
            r = await rawRequest(px.port, buildRequest('GET', '/api/tags', [['Host', hostOf(px.port)]]));
            assert.equal(r.status, 200);
            assert.equal(metricValue(await scrapeMetrics(px), 'litebrain_complexity_score'), 0,
                'an unscored request does not bring the old score back');
        }
        const before = await scrapeMetrics(px);
        r = await post('/api/pull', { model: MODEL, stream: true });
        assert.equal(r.status, 200);
        r = await post('/v1/chat/completions', { model: MODEL, stream: false, messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(r.status, 200);
        const mid = await scrapeMetrics(px);
        assert.equal(metricValue(mid, 'litebrain_time_to_first_token_seconds_count'),
            metricValue(before, 'litebrain_time_to_first_token_seconds_count'), 'a pull is no first token');
        assert.equal(metricValue(mid, 'litebrain_time_per_output_token_seconds_count'),
            metricValue(before, 'litebrain_time_per_output_token_seconds_count'), 'a whole OpenAI answer tells no token pace');
        r = await post('/api/chat', { model: MODEL, stream: false, messages: [{ role: 'user', content: 'hi' }] });
        assert.equal(r.status, 200);
        assert.equal(metricValue(await scrapeMetrics(px), 'litebrain_time_per_output_token_seconds_count'),
            metricValue(before, 'litebrain_time_per_output_token_seconds_count') + 1, "Ollama's eval_duration is");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

/* POST a JSON body on a fresh connection; the parsed response. */
function rawRequestJson(port, target, body) {
    return rawRequest(port, buildRequest('POST', target, [['Host', hostOf(port)], ['Content-Type', 'application/json']],
        JSON.stringify(body)));
}
