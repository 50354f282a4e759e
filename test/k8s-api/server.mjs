// server.mjs — a fake Kubernetes API server for the controller's integration tests.
//
// startK8sApi(opts) serves HTTPS on 127.0.0.1:<ephemeral> with a CA and a server certificate
// (SAN IP:127.0.0.1) made with the openssl CLI, and writes a service-account directory
// (token, ca.crt, namespace) the proxy reads through LITEBRAIN_K8S_SA_DIR.  It implements just
// what the controller uses, with the real API's semantics where they matter:
//   coordination.k8s.io/v1 leases   GET / POST (409 AlreadyExists) / PUT (resourceVersion
//                                    must match, else 409 Conflict)
//   autoscaling/v2 HPA               GET / PATCH (merge patch only; 422 when min > max)
//   apps/v1 deployments/{d}/scale    GET / PATCH (merge patch)
//   v1 pods/{p}, pods/{p}/resize     GET / PATCH (strategic merge patch; the resize's verdict
//                                    — ok, Infeasible, Deferred, InProgress, from the test's
//                                    resizeVerdict — lands on the pod's conditions 100 ms after
//                                    the PATCH, with observedGeneration, as a kubelet's does, and
//                                    never in the PATCH's answer; memoryLimitDecrease = false
//                                    refuses lower memory limits with 422, as 1.33/1.34 do)
// Every error is a v1 Status body.  Bearer tokens are checked (401 otherwise); rotateToken()
// changes the accepted token and the file.  inject() queues faults (status with optional
// Retry-After, or hang).  Every request is recorded in `requests` for assertions (the token
// itself is never recorded, only whether it was accepted).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

export const NS = 'goblinos-ai';
const RESIZE_VERDICT_MS = 100;      // a resize's verdict appears on the pod this long after its PATCH

/* A Kubernetes quantity ("16Gi", "1500m", "4") as a number (bytes or cores), for comparisons. */
function quantity(q) {
    const m = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(q));
    if (!m) return NaN;
    const mult = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
    return Number(m[1]) * (m[2] ? mult[m[2]] : 1);
}
let certCache = null;            // one CA + server cert per test process

/* CA and server certificate for 127.0.0.1, made once per process with the openssl CLI. */
function makeCerts() {
    if (certCache) return certCache;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-api-certs-'));
    const f = (n) => path.join(dir, n);
    const ossl = (...a) => execFileSync('openssl', a, { stdio: ['ignore', 'ignore', 'pipe'] });
    ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=fake-k8s-ca',
        '-keyout', f('ca.key'), '-out', f('ca.crt'),
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=kubernetes', '-keyout', f('srv.key'), '-out', f('srv.csr'));
    fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    ossl('x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
        '-days', '2', '-extfile', f('ext.cnf'), '-out', f('srv.crt'));
    certCache = { dir, ca: fs.readFileSync(f('ca.crt')), key: fs.readFileSync(f('srv.key')), cert: fs.readFileSync(f('srv.crt')) };
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    return certCache;
}

/* RFC 7386 JSON merge patch. */
function mergePatch(target, patch) {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
    const out = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
    for (const [k, v] of Object.entries(patch)) {
        if (v === null) delete out[k];
        else out[k] = mergePatch(out[k], v);
    }
    return out;
}

/* Strategic merge patch for pod specs: containers merge by name, everything else as merge patch. */
function strategicPatch(pod, patch) {
    const out = structuredClone(pod);
    const containers = patch?.spec?.containers || [];
    for (const pc of containers) {
        const c = out.spec.containers.find((x) => x.name === pc.name);
        if (!c) return { error: `container ${pc.name} not found` };
        const { name, ...rest } = pc;
        Object.assign(c, mergePatch(c, rest));
    }
    return { pod: out };
}

function status(code, reason, message) {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export class FakeK8sApi {
    constructor(opts = {}) {
        this.ns = opts.namespace || NS;
        this.token = opts.token || 'token-0';
        this.requests = [];          // {t, method, path, contentType, body, code, tokenOk}
        this.faults = [];            // {match(req), status, retryAfter, hang, times, reason}
        this.rv = 100;               // global resourceVersion counter
        this.leases = new Map();     // name -> object
        this.hpas = new Map();       // name -> object
        this.scales = new Map();     // deployment name -> {spec:{replicas}, status:{replicas}}
        this.pods = new Map();       // name -> pod object
        this.hpaBaseline = 1;        // replicas the fake HPA's own metric asks for
        this.resizeOutcome = 'ok';   // ok | Infeasible | Deferred | InProgress
        // the kubelet's verdict on a resize, as a function of the new container resources;
        // set RESIZE_VERDICT_MS after the PATCH, never in its answer (as a real cluster does)
        this.resizeVerdict = () => this.resizeOutcome;
        this.timers = new Set();      // pending verdicts
        this.memoryLimitDecrease = true;  // false: refuse it with 422, as Kubernetes 1.33/1.34 do
        this.hung = new Set();       // sockets of hung requests
        this.listeners = new Set();  // callbacks notified on every request
        const c = makeCerts();
        this.saDir = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-sa-'));
        fs.writeFileSync(path.join(this.saDir, 'ca.crt'), c.ca);
        fs.writeFileSync(path.join(this.saDir, 'namespace'), this.ns);
        fs.writeFileSync(path.join(this.saDir, 'token'), this.token + '\n');
        this.server = https.createServer({ key: c.key, cert: c.cert }, (req, res) => this.handle(req, res));
    }

    async listen() {
        await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
        this.port = this.server.address().port;
        return this;
    }

    /* Environment for a proxy using this server (short lease timings by default). */
    env(pod, extra = {}) {
        return {
            KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(this.port),
            LITEBRAIN_K8S_SA_DIR: this.saDir, POD_NAME: pod,
            LITEBRAIN_K8S_LEASE_SECONDS: '1', LITEBRAIN_K8S_RENEW_SECONDS: '0.7',
            LITEBRAIN_K8S_RETRY_SECONDS: '0.2', ...extra,
        };
    }

    addHpa(name = 'ollama-hpa', min = 1, max = 10, current = min) {
        this.hpas.set(name, {
            apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler',
            metadata: { name, namespace: this.ns, resourceVersion: String(++this.rv), generation: 1 },
            spec: { minReplicas: min, maxReplicas: max, scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'ollama-inference' } },
            status: { currentReplicas: current, desiredReplicas: current },
        });
    }

    addScale(name = 'ollama-inference', replicas = 1) {
        this.scales.set(name, {
            apiVersion: 'autoscaling/v1', kind: 'Scale',
            metadata: { name, namespace: this.ns, resourceVersion: String(++this.rv) },
            spec: { replicas }, status: { replicas, selector: 'app=ollama-inference' },
        });
    }

    addPod(name, resources, container = 'ollama') {
        this.pods.set(name, {
            apiVersion: 'v1', kind: 'Pod',
            metadata: { name, namespace: this.ns, resourceVersion: String(++this.rv) },
            spec: { containers: [{ name: container, image: 'ollama/ollama', resources: structuredClone(resources) },
                { name: 'metrics-sidecar', image: 'litebrain-proxy', resources: {} }] },
            status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
        });
    }

    /* Accept only `token` from now on and write it to the token file. */
    rotateToken(token) {
        this.token = token;
        fs.writeFileSync(path.join(this.saDir, 'token'), token + '\n');
    }

    /* Queue a fault: match(req) picks requests ({method, path}); status + optional reason and
     * retryAfter, or hang: true (never answered until close()), or delayMs: the normal answer
     * (or the status, when one is given) that much later (a slow API server); times (default
     * 1, Infinity ok). */
    inject(f) { this.faults.push({ times: 1, ...f }); }
    clearFaults() { this.faults = []; }

    /* Resolves with the first recorded request (from index since) matching pred. */
    waitRequest(pred, timeoutMs = 10000, since = 0, what = 'request') {
        return new Promise((resolve, reject) => {
            const check = () => {
                for (let i = since; i < this.requests.length; i++) if (pred(this.requests[i], i)) { done(); resolve(this.requests[i]); return true; }
                return false;
            };
            const done = () => { this.listeners.delete(check); clearTimeout(timer); };
            const timer = setTimeout(() => { done(); reject(new Error(`fake k8s: timeout waiting for ${what}`)); }, timeoutMs);
            this.listeners.add(check);
            check();
        });
    }

    mark() { return this.requests.length; }

    handle(req, res) {
        const parts = [];
        req.on('data', (d) => parts.push(d));
        req.on('end', () => {
            const raw = Buffer.concat(parts).toString();
            let body = null;
            try { body = raw ? JSON.parse(raw) : null; } catch { body = { unparsable: raw }; }
            const url = new URL(req.url, 'https://x');
            const rec = {
                t: performance.now(), method: req.method, path: url.pathname, contentType: req.headers['content-type'] || '',
                body, code: 0, tokenOk: req.headers.authorization === `Bearer ${this.token}`,
                userAgent: req.headers['user-agent'] || '',
            };
            this.requests.push(rec);
            const send = (code, obj, headers = {}) => {
                rec.code = code;
                res.writeHead(code, { 'Content-Type': 'application/json', ...headers });
                res.end(JSON.stringify(obj));
                for (const l of [...this.listeners]) l();
            };
            if (!rec.tokenOk) return send(401, status(401, 'Unauthorized', 'Unauthorized'));
            const f = this.faults.find((x) => x.times > 0 && x.match(rec));
            if (f) {
                f.times--;
                if (f.hang) {
                    rec.code = -1;
                    this.hung.add(res);
                    for (const l of [...this.listeners]) l();
                    return undefined;
                }
                if (f.delayMs !== undefined) {
                    setTimeout(() => {
                        const r = f.status !== undefined
                            ? [f.status, status(f.status, f.reason || 'InternalError', `injected ${f.status}`)]
                            : this.route(req.method, url.pathname, body, rec.contentType);
                        send(r[0], r[1]);
                    }, f.delayMs);
                    return undefined;
                }
                const h = f.retryAfter !== undefined ? { 'Retry-After': String(f.retryAfter) } : {};
                return send(f.status, status(f.status, f.reason || 'InternalError', `injected ${f.status}`), h);
            }
            const r = this.route(req.method, url.pathname, body, rec.contentType);
            return send(r[0], r[1]);
        });
    }

    /* [code, body] for one request. */
    route(method, p, body, ctype) {
        const ns = this.ns;
        let m;
        const notFound = (kind, name) => [404, status(404, 'NotFound', `${kind} "${name}" not found`)];
        if ((m = new RegExp(`^/apis/coordination\\.k8s\\.io/v1/namespaces/${ns}/leases(?:/([^/]+))?$`).exec(p))) {
            const name = m[1];
            if (method === 'GET' && name) return this.leases.has(name) ? [200, this.leases.get(name)] : notFound('leases.coordination.k8s.io', name);
            if (method === 'POST' && !name) {
                const n = body?.metadata?.name;
                if (this.leases.has(n)) return [409, status(409, 'AlreadyExists', `leases.coordination.k8s.io "${n}" already exists`)];
                const o = { ...body, metadata: { ...body.metadata, namespace: ns, resourceVersion: String(++this.rv) } };
                this.leases.set(n, o);
                return [201, o];
            }
            if (method === 'PUT' && name) {
                const cur = this.leases.get(name);
                if (!cur) return notFound('leases.coordination.k8s.io', name);
                if (body?.metadata?.resourceVersion !== cur.metadata.resourceVersion) {
                    return [409, status(409, 'Conflict', `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`)];
                }
                const o = { ...body, metadata: { ...body.metadata, namespace: ns, resourceVersion: String(++this.rv) } };
                this.leases.set(name, o);
                return [200, o];
            }
            return [405, status(405, 'MethodNotAllowed', 'method not allowed')];
        }
        if ((m = new RegExp(`^/apis/autoscaling/v2/namespaces/${ns}/horizontalpodautoscalers/([^/]+)$`).exec(p))) {
            const h = this.hpas.get(m[1]);
            if (!h) return notFound('horizontalpodautoscalers.autoscaling', m[1]);
            if (method === 'GET') return [200, h];
            if (method === 'PATCH') {
                if (ctype !== 'application/merge-patch+json') return [415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json`)];
                const n = mergePatch(h, body);
                if (n.spec.minReplicas > n.spec.maxReplicas) return [422, status(422, 'Invalid', 'spec.minReplicas: Invalid value: must be less than or equal to maxReplicas')];
                n.metadata = { ...n.metadata, resourceVersion: String(++this.rv) };
                // the fake HPA controller: its metric wants `hpaBaseline` replicas, the floor wins
                n.status = { ...n.status, currentReplicas: Math.min(n.spec.maxReplicas, Math.max(n.spec.minReplicas, this.hpaBaseline)) };
                this.hpas.set(m[1], n);
                return [200, n];
            }
            return [405, status(405, 'MethodNotAllowed', 'method not allowed')];
        }
        if ((m = new RegExp(`^/apis/apps/v1/namespaces/${ns}/deployments/([^/]+)/scale$`).exec(p))) {
            const s = this.scales.get(m[1]);
            if (!s) return notFound('deployments.apps', m[1]);
            if (method === 'GET') return [200, s];
            if (method === 'PATCH') {
                if (ctype !== 'application/merge-patch+json') return [415, status(415, 'UnsupportedMediaType', 'unsupported patch type')];
                const n = mergePatch(s, body);
                n.metadata = { ...n.metadata, resourceVersion: String(++this.rv) };
                n.status = { ...n.status, replicas: n.spec.replicas };
                this.scales.set(m[1], n);
                return [200, n];
            }
            return [405, status(405, 'MethodNotAllowed', 'method not allowed')];
        }
        if ((m = new RegExp(`^/api/v1/namespaces/${ns}/pods/([^/]+)(/resize)?$`).exec(p))) {
            const pod = this.pods.get(m[1]);
            if (!pod) return notFound('pods', m[1]);
            if (method === 'GET' && !m[2]) return [200, pod];
            if (method === 'PATCH' && m[2]) {
                if (ctype !== 'application/strategic-merge-patch+json') return [415, status(415, 'UnsupportedMediaType', 'unsupported patch type')];
                const r = strategicPatch(pod, body);
                if (r.error) return [422, status(422, 'Invalid', r.error)];
                const n = r.pod;
                const memLimit = (x) => x.spec.containers.find((c) => c.name === 'ollama')?.resources?.limits?.memory;
                if (!this.memoryLimitDecrease && memLimit(pod) && memLimit(n) && quantity(memLimit(n)) < quantity(memLimit(pod)))
                    return [422, status(422, 'Invalid', `Pod "${m[1]}" is invalid: spec.containers[0].resources.limits[memory]: Forbidden: memory limits cannot be decreased unless resizePolicy is RestartContainer`)];
                n.metadata.resourceVersion = String(++this.rv);
                n.metadata.generation = (pod.metadata.generation || 1) + 1;
                this.pods.set(m[1], n);
                const name = m[1], gen = n.metadata.generation;
                const verdict = this.resizeVerdict(n.spec.containers.find((c) => c.name === 'ollama')?.resources || {});
                const timer = setTimeout(() => {
                    this.timers.delete(timer);
                    const cur = this.pods.get(name);
                    if (!cur || cur.metadata.generation !== gen) return;    // a newer resize came
                    const conds = cur.status.conditions.filter((c) => c.type !== 'PodResizePending' && c.type !== 'PodResizeInProgress');
                    if (verdict === 'Infeasible' || verdict === 'Deferred') {
                        conds.push({ type: 'PodResizePending', status: 'True', reason: verdict, observedGeneration: gen, message: `Node didn't have enough capacity (${verdict})` });
                    } else if (verdict === 'InProgress') {
                        conds.push({ type: 'PodResizeInProgress', status: 'True', observedGeneration: gen });
                    }
                    cur.status = { ...cur.status, conditions: conds };
                }, RESIZE_VERDICT_MS);
                this.timers.add(timer);
                return [200, JSON.parse(JSON.stringify(n))];
            }
            return [405, status(405, 'MethodNotAllowed', 'method not allowed')];
        }
        return [404, status(404, 'NotFound', `the server could not find the requested resource (${method} ${p})`)];
    }

    /* Successful lease writes as [{t, holder, duration, method}] in order. */
    leaseWrites(name = 'litebrain-scaler') {
        return this.requests.filter((r) => r.path.endsWith(`/leases${r.method === 'POST' ? '' : '/' + name}`)
            && (r.method === 'PUT' || r.method === 'POST') && (r.code === 200 || r.code === 201))
            .map((r) => ({ t: r.t, holder: r.body.spec.holderIdentity, duration: r.body.spec.leaseDurationSeconds, method: r.method, body: r.body }));
    }

    holder(name = 'litebrain-scaler') {
        const l = this.leases.get(name);
        return l ? l.spec.holderIdentity : undefined;
    }

    writes() { return this.requests.filter((r) => r.method !== 'GET'); }

    async close() {
        for (const t of this.timers) clearTimeout(t);
        for (const res of this.hung) { try { res.socket?.destroy(); } catch { /* gone */ } }
        this.server.closeAllConnections?.();
        await new Promise((r) => this.server.close(r));
        fs.rmSync(this.saDir, { recursive: true, force: true });
    }
}

/* A listening fake API server. */
export async function startK8sApi(opts = {}) {
    return new FakeK8sApi(opts).listen();
}
