// manifests.test.mjs — k8s/manifests checked offline: every document against the Kubernetes
// (kubernetes-models 4.5) and prometheus-operator (4.4) schemas plus a strict unknown-field
// walk; the names, namespace and labels the seed's kubectl commands (DESIGN §7 and the
// README's Deploying section) use; the sidecar's env names, ports and probe paths against what
// the binary accepts (`litebrain-proxy --help`, DESIGN §2 when not built); RBAC = exactly the
// controller's calls; the policy ConfigMap = DESIGN §6's seed; termination wiring; the HPA;
// the adapter rule.  The last tests run the real binary with the Deployment's own sidecar env
// and check that every litebrain_* series the dashboard, the alerts and the adapter read is
// one it exports, and that the probe paths answer.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import YAML from 'yaml';
import {
    MODEL, PROXY_BIN, buildRequest, hostOf, httpGet, itest, pollUntil, rawRequest, scrapeMetrics,
    startProxy, startSim, stopAll,
} from './harness.mjs';
import {
    ADAPTER_MANIFEST, DASHBOARD, MAIN_MANIFEST, MANIFEST_DIR, REPO, adapterExprs, dashboardExprs,
    designContract, designCopyData, designKubectlCommands, designSaDir, designSeedPolicy, find,
    haveDesign, loadDocs, metricNames,
    proxyContract, unknownFields, validateDoc,
} from '../rules/manifests-lib.mjs';

after(stopAll);

const NS = 'goblinos-ai';
const docs = loadDocs(MAIN_MANIFEST);
const adapterDocs = loadDocs(ADAPTER_MANIFEST);
const dep = find(docs, 'Deployment', 'ollama-inference');
const pod = dep.spec.template.spec;
const byName = (list, name) => (list || []).find((x) => x.name === name);
const sidecar = byName(pod.containers, 'metrics-sidecar');
const ollama = byName(pod.containers, 'ollama');
const envOf = (c) => Object.fromEntries((c.env || []).map((e) => [e.name, e]));
const sideEnv = envOf(sidecar);
const contract = proxyContract();
const flagDefault = (flag) => {
    const f = contract.flags.find((x) => x.flag === flag);
    assert.ok(f, `${flag} missing from ${contract.source}`);
    return f.def;
};
const portOf = (hostport) => Number(/:(\d+)$/.exec(hostport)[1]);
const matches = (selector, labels) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/* The value an env var has in the sidecar: its manifest value, else the binary's default. */
function sideValue(envName) {
    if (sideEnv[envName]) return sideEnv[envName].value;
    const f = contract.flags.find((x) => x.env === envName);
    return f ? f.def : undefined;
}

/* ------------------------------------------------------------------ schemas */

test('every document validates against its schema, with no unknown fields', async () => {
    const all = [...docs, ...adapterDocs];
    assert.ok(all.length >= 11, `documents: ${all.length}`);
    const problems = [];
    for (const d of all) problems.push(...await validateDoc(d));
    assert.deepEqual(problems, []);
});

test('the validator rejects wrong types and misspelt fields (it can fail)', async () => {
    const bad = structuredClone(dep);
    bad.spec.template.spec.containers[1].readinessProbe.periodSeconds = 'often';
    bad.spec.template.spec.containers[1].readinesProbe = {};
    const problems = (await validateDoc(bad)).join('\n');
    assert.match(problems, /periodSeconds/);
    assert.match(problems, /unknown field \.spec\.template\.spec\.containers\[1\]\.readinesProbe/);
    const pr = structuredClone(find(docs, 'PrometheusRule', 'litebrain-alerts'));
    pr.spec.groups[0].rules[0].fore = '5m';
    assert.match((await validateDoc(pr)).join('\n'), /unknown field \.spec\.groups\[0\]\.rules\[0\]\.fore/);
    assert.deepEqual(unknownFields({ a: 1 }, { obj: { b: { leaf: true } } }), ['.a']);
});

test('one Namespace goblinos-ai and every namespaced object in it', () => {
    const nss = docs.filter((d) => d.kind === 'Namespace').map((d) => d.metadata.name);
    assert.deepEqual(nss, [NS]);
    for (const d of docs.filter((x) => x.kind !== 'Namespace')) assert.equal(d.metadata.namespace, NS, `${d.kind}/${d.metadata.name}`);
    const kinds = docs.map((d) => d.kind).sort();
    for (const k of ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodMonitor', 'PrometheusRule', 'Role',
        'RoleBinding', 'Service', 'ServiceAccount']) assert.ok(kinds.includes(k), `missing ${k}`);
});

/* ------------------------------------------------------------------ the seed's kubectl commands */

/* Check that a kubectl command line finds what it names in our manifests; returns nothing,
 * throws with the reason otherwise. */
function resolveKubectl(cmd) {
    const t = cmd.trim().split(/\s+/);
    assert.equal(t[0], 'kubectl', cmd);
    const ns = t.includes('-n') ? t[t.indexOf('-n') + 1] : t.includes('--namespace') ? t[t.indexOf('--namespace') + 1] : null;
    const opt = (o) => (t.includes(o) ? t[t.indexOf(o) + 1] : null);
    const positional = t.slice(2).filter((w, i, a) => !w.startsWith('-') && !['-n', '--namespace', '-c', '-l', '-f', '--container', '-o'].includes(a[i - 1]));
    const verb = t[1];
    const KINDS = { hpa: 'HorizontalPodAutoscaler', horizontalpodautoscaler: 'HorizontalPodAutoscaler', svc: 'Service', service: 'Service',
        deployment: 'Deployment', deploy: 'Deployment', configmap: 'ConfigMap', cm: 'ConfigMap', podmonitor: 'PodMonitor',
        prometheusrule: 'PrometheusRule', role: 'Role', rolebinding: 'RoleBinding', serviceaccount: 'ServiceAccount', sa: 'ServiceAccount' };
    const lookup = (kindWord, name) => {
        const kind = KINDS[kindWord.replace(/s$/, '')] || KINDS[kindWord];
        assert.ok(kind, `${cmd}: unknown kind ${kindWord}`);
        const hits = docs.filter((d) => d.kind === kind && (!name || d.metadata.name === name));
        assert.ok(hits.length, `${cmd}: no ${kind}${name ? ` ${name}` : ''} in the manifests`);
        for (const h of hits) assert.equal(h.metadata.namespace, ns, `${cmd}: ${kind} is in ${h.metadata.namespace}`);
        return hits[0];
    };
    const podsOf = (sel) => {
        const [k, v] = sel.split('=');
        const deps = docs.filter((d) => d.kind === 'Deployment' && d.metadata.namespace === ns && d.spec.template.metadata.labels[k] === v);
        assert.ok(deps.length, `${cmd}: -l ${sel} selects no pods`);
        return deps[0].spec.template;
    };
    if (verb === 'apply') {
        assert.ok(fs.existsSync(path.resolve(REPO, opt('-f'))), `${cmd}: no such file`);
        return;
    }
    assert.equal(ns, NS, `${cmd}: namespace`);
    if (verb === 'port-forward') {
        const [kw, name] = positional[0].split('/');
        const svc = lookup(kw, name);
        for (const pair of positional.slice(1)) {
            const remote = Number(pair.split(':').pop());
            const sp = svc.spec.ports.find((p) => p.port === remote);
            assert.ok(sp, `${cmd}: ${name} has no port ${remote}`);
            const tmpl = dep.spec.template;
            assert.ok(matches(svc.spec.selector, tmpl.metadata.labels), `${cmd}: the Service selects no pod`);
            const cport = tmpl.spec.containers.flatMap((c) => c.ports || []).find((p) => p.name === sp.targetPort || p.containerPort === sp.targetPort);
            assert.ok(cport, `${cmd}: targetPort ${sp.targetPort} is no container port`);
        }
        return;
    }
    if (verb === 'logs') {
        let tmpl;
        if (opt('-l')) tmpl = podsOf(opt('-l'));
        else {
            const [kw, name] = positional[0].split('/');
            tmpl = lookup(kw, name).spec.template;
        }
        const c = opt('-c') || opt('--container');
        if (c) assert.ok(byName(tmpl.spec.containers, c), `${cmd}: no container ${c}`);
        else if (!t.includes('--all-containers') && tmpl.spec.containers.length > 1) {
            const def = tmpl.metadata.annotations && tmpl.metadata.annotations['kubectl.kubernetes.io/default-container'];
            assert.ok(def && byName(tmpl.spec.containers, def), `${cmd}: several containers and no valid default-container annotation`);
        }
        return;
    }
    if (['get', 'describe', 'edit'].includes(verb)) {
        const [first, second] = positional;
        if (first.includes('/')) lookup(...first.split('/'));
        else if (/^pods?$/.test(first)) { if (opt('-l')) podsOf(opt('-l')); }
        else if (['lease', 'leases', 'events', 'endpoints', 'ep'].includes(first)) { /* made at run time */ }
        else lookup(first, second);
        return;
    }
    if (['top', 'rollout', 'exec', 'delete', 'scale'].includes(verb)) return;
    assert.fail(`${cmd}: verb ${verb} not understood by this test`);
}

test('the committed copy of the contract (test/rules/design-contract.json) equals DESIGN.md', (t) => {
    if (!haveDesign()) {
        t.skip('shared/DESIGN.md is not beside this checkout; the tests use the committed copy');
        return;
    }
    const copy = designCopyData();
    const c = designContract();
    assert.deepEqual(copy.flags, c.flags);
    assert.deepEqual([...copy.env].sort(), [...c.env].sort());
    assert.deepEqual(copy.seedPolicy, designSeedPolicy());
    assert.deepEqual(copy.kubectlCommands, designKubectlCommands());
    assert.equal(copy.saDir, designSaDir());
});

test('the seed\'s kubectl commands (DESIGN §7) find their objects', () => {
    const cmds = designKubectlCommands();
    assert.ok(cmds.length >= 4, JSON.stringify(cmds));
    for (const c of cmds) resolveKubectl(c);
    assert.throws(() => resolveKubectl('kubectl logs -n goblinos-ai deployment/ollama-inference -c nope'), /no container nope/);
    assert.throws(() => resolveKubectl('kubectl port-forward -n goblinos-ai svc/ollama-service 9091:9091'), /no port 9091/);
});

test('the kubectl commands in k8s/manifests/README.md find their objects', () => {
    const readme = fs.readFileSync(path.join(MANIFEST_DIR, 'README.md'), 'utf8');
    const sec = readme.slice(readme.indexOf('## Deploying'), readme.indexOf('\n## ', readme.indexOf('## Deploying') + 5));
    const cmds = sec.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('kubectl ') && !l.includes('--raw') && !l.includes('apiservice'));
    assert.ok(cmds.length >= 5, `commands in Deploying: ${cmds.length}`);
    for (const c of cmds) resolveKubectl(c.replace(/\s+#.*$/, ''));
});

/* ------------------------------------------------------------------ the sidecar vs the binary */

test('every sidecar env var is one the binary reads', () => {
    assert.ok(contract.env.size >= 14, `${contract.source}: ${contract.env.size} names`);
    for (const name of Object.keys(sideEnv)) assert.ok(contract.env.has(name), `${name} is not read by litebrain-proxy (${contract.source})`);
    assert.ok(sideEnv.POD_NAME && sideEnv.POD_NAME.valueFrom.fieldRef.fieldPath === 'metadata.name', 'POD_NAME from the downward API');
    assert.ok(!contract.env.has('LITEBRAIN_NOT_A_SETTING'));
});

test('the sidecar env names the objects the manifests create', () => {
    const v = (n) => sideValue(n);
    assert.ok(find(docs, 'HorizontalPodAutoscaler', v('LITEBRAIN_K8S_HPA')), 'LITEBRAIN_K8S_HPA names our HPA');
    assert.equal(v('LITEBRAIN_K8S_DEPLOYMENT'), dep.metadata.name);
    assert.ok(byName(pod.containers, v('LITEBRAIN_K8S_CONTAINER')), 'LITEBRAIN_K8S_CONTAINER names a container');
    assert.equal(v('LITEBRAIN_K8S_CONTAINER'), 'ollama');
    const role = find(docs, 'Role', 'litebrain-scaler');
    const leaseRule = role.rules.find((r) => r.resources.includes('leases') && r.resourceNames);
    assert.deepEqual(leaseRule.resourceNames, [v('LITEBRAIN_K8S_LEASE')]);
    const hpaRule = role.rules.find((r) => r.resources.includes('horizontalpodautoscalers'));
    assert.deepEqual(hpaRule.resourceNames, [v('LITEBRAIN_K8S_HPA')]);
    const scaleRule = role.rules.find((r) => r.resources.includes('deployments/scale'));
    assert.deepEqual(scaleRule.resourceNames, [v('LITEBRAIN_K8S_DEPLOYMENT')]);
    assert.ok(['on', 'auto'].includes(v('LITEBRAIN_CONTROLLER')), 'the controller acts in the cluster');
});

test('ports: proxy and metrics ports agree across the binary, container, Service, probes and preStop', () => {
    const cport = (name) => sidecar.ports.find((p) => p.name === name).containerPort;
    const listen = sideValue('LITEBRAIN_LISTEN');
    assert.equal(portOf(listen), cport('proxy'));
    assert.equal(portOf(flagDefault('--listen')), cport('proxy'), 'the binary\'s default listen port');
    assert.ok(!sideEnv.LITEBRAIN_METRICS_LISTEN, 'metrics bind all interfaces (kubelet probes and Prometheus reach the pod IP)');
    assert.equal(Number(sideValue('LITEBRAIN_METRICS_PORT')), cport('metrics'));
    assert.equal(Number(flagDefault('--metrics-port')), cport('metrics'));
    assert.ok(listen.startsWith('0.0.0.0:'), 'the proxy listens on the pod IP');

    const svc = find(docs, 'Service', 'ollama-service');
    assert.ok(matches(svc.spec.selector, dep.spec.template.metadata.labels));
    const sp = (port) => svc.spec.ports.find((p) => p.port === port);
    assert.equal(sp(11434).targetPort, 'proxy', '11434 lands on the proxy');
    assert.equal(sp(9090).targetPort, 'metrics');
    for (const p of svc.spec.ports) assert.ok(sidecar.ports.some((c) => c.name === p.targetPort), `${p.name} → sidecar`);

    for (const probe of [sidecar.livenessProbe, sidecar.readinessProbe]) assert.equal(probe.httpGet.port, 'metrics');
    assert.equal(sidecar.livenessProbe.httpGet.path, '/healthz');
    assert.equal(sidecar.readinessProbe.httpGet.path, '/readyz');
    const pm = find(docs, 'PodMonitor', 'ollama-inference');
    assert.ok(matches(pm.spec.selector.matchLabels, dep.spec.template.metadata.labels));
    assert.deepEqual(pm.spec.podMetricsEndpoints.map((e) => [e.port, e.path]), [['metrics', '/metrics']]);
    const preStop = ollama.lifecycle.preStop.exec.command.join(' ');
    assert.match(preStop, new RegExp(`/dev/tcp/127\\.0\\.0\\.1/${cport('metrics')}\\b`), 'preStop watches the sidecar\'s metrics port');
});

test('ollama listens on loopback only, on the port the sidecar forwards to', () => {
    const ollamaHost = envOf(ollama).OLLAMA_HOST.value;
    assert.match(ollamaHost, /^127\.0\.0\.1:\d+$/);
    const upstream = sideValue('OLLAMA_HOST');
    assert.match(upstream, /^(http:\/\/)?127\.0\.0\.1:\d+$/);
    assert.equal(portOf(upstream), portOf(ollamaHost));
    assert.equal(portOf(flagDefault('--upstream')), portOf(ollamaHost), 'the binary\'s default upstream');
    assert.ok(!(ollama.ports || []).length, 'no container port on ollama');
    assert.deepEqual((ollama.resizePolicy || []).map((r) => r.resourceName).sort(), ['cpu', 'memory']);
    // starts at the policy's low profile; memory request = limit (the controller keeps an
    // equal pair equal, so the profile is the memory), CPU request only (it follows the profile)
    const low = JSON.parse(find(docs, 'ConfigMap', 'litebrain-policy').data['policy.json']).resources.low;
    assert.deepEqual(ollama.resources.requests, { cpu: low.cpu, memory: low.memory });
    assert.deepEqual(ollama.resources.limits, { memory: low.memory });
});

test('the sidecar runs non-root, read-only, unprivileged, small, with the policy and the token', () => {
    const sc = sidecar.securityContext;
    assert.equal(sc.runAsNonRoot, true);
    assert.ok(sc.runAsUser > 0);
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.deepEqual(sc.capabilities.drop, ['ALL']);
    for (const k of ['requests', 'limits']) for (const r of ['cpu', 'memory']) assert.ok(sidecar.resources[k][r], `${k}.${r}`);
    const dockerfile = fs.readFileSync(path.join(REPO, 'k8s', 'Dockerfile'), 'utf8');
    assert.match(dockerfile, new RegExp(`^USER ${sc.runAsUser}:`, 'm'), 'image user = runAsUser');

    // policy: LITEBRAIN_POLICY is a file of the mounted ConfigMap
    const policy = sideValue('LITEBRAIN_POLICY');
    const mount = sidecar.volumeMounts.find((m) => policy.startsWith(`${m.mountPath}/`));
    assert.ok(mount, 'LITEBRAIN_POLICY lies under a mount');
    const vol = byName(pod.volumes, mount.name);
    const cm = find(docs, 'ConfigMap', vol.configMap.name);
    assert.ok(cm.data[path.basename(policy)], 'the ConfigMap has the policy key');

    // token: only the sidecar gets it, at the directory the controller reads
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.serviceAccountName, 'litebrain-scaler');
    const saDir = designSaDir();
    assert.ok(!sideEnv.LITEBRAIN_K8S_SA_DIR);
    const tokMount = sidecar.volumeMounts.find((m) => m.mountPath === saDir);
    assert.ok(tokMount, `token mounted at ${saDir}`);
    const paths = byName(pod.volumes, tokMount.name).projected.sources.flatMap((s) => {
        if (s.serviceAccountToken) return [s.serviceAccountToken.path];
        if (s.configMap) return s.configMap.items.map((i) => i.path);
        return s.downwardAPI.items.map((i) => i.path);
    }).sort();
    assert.deepEqual(paths, ['ca.crt', 'namespace', 'token']);
    assert.ok(!(ollama.volumeMounts || []).some((m) => m.name === tokMount.name), 'ollama never sees the token');
});

test('termination: the grace period covers the drain and ollama outlives the sidecar', () => {
    const drain = Number(sideValue('LITEBRAIN_DRAIN_SECONDS'));
    assert.ok(drain > 0);
    const grace = pod.terminationGracePeriodSeconds;
    const preStop = ollama.lifecycle.preStop.exec.command.join(' ');
    const waitCap = Number(/seq 1 (\d+)/.exec(preStop)[1]);
    assert.ok(waitCap > drain, `ollama's preStop waits up to ${waitCap} s > drain ${drain} s`);
    assert.ok(grace > waitCap, `grace ${grace} s leaves ollama time to stop after its preStop (${waitCap} s)`);
    assert.ok(!sidecar.lifecycle, 'the sidecar gets SIGTERM at once and drains itself');
    assert.ok(!(pod.initContainers || []).some((c) => c.restartPolicy === 'Always'), 'regular containers (a native sidecar would stop after ollama)');
    const pull = byName(pod.initContainers, 'model-pull');
    assert.ok(pull && pull.volumeMounts[0].mountPath === ollama.volumeMounts[0].mountPath, 'models pulled into ollama\'s store');
    assert.equal(dep.spec.replicas, undefined, 'no spec.replicas: the HPA owns it');
});

/* Run ollama's preStop command with the metrics port swapped for port and the wait capped at
 * rounds; resolves to its exit code. */
function runPreStop(port, rounds) {
    const [sh, flag, script] = ollama.lifecycle.preStop.exec.command;
    const s = script.replace(/\/dev\/tcp\/127\.0\.0\.1\/\d+/, `/dev/tcp/127.0.0.1/${port}`).replace(/seq 1 \d+/, `seq 1 ${rounds}`);
    assert.notEqual(s, script);
    return new Promise((resolve, reject) => {
        const p = spawn(sh, [flag, s], { stdio: 'ignore' });
        const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error('preStop did not end')); }, 30000);
        p.on('exit', (code) => { clearTimeout(t); resolve(code); });
    });
}

test('ollama\'s preStop waits while the sidecar\'s port accepts and ends once it is gone', async () => {
    const srv = net.createServer((c) => { accepts++; c.destroy(); });
    let accepts = 0;
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = srv.address().port;
    // sidecar still up: the hook probes once a round for all 3 rounds, then gives up (bounded)
    assert.equal(await runPreStop(port, 3), 0);
    assert.equal(accepts, 3);
    // sidecar gone: the first probe fails and the hook ends at once
    srv.close();
    await once(srv, 'close');
    assert.equal(await runPreStop(port, 3), 0);
    assert.equal(accepts, 3);
});

test('HPA ollama-hpa: targets, bounds and windows', () => {
    const hpa = find(docs, 'HorizontalPodAutoscaler', 'ollama-hpa');
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'ollama-inference' });
    assert.equal(hpa.spec.minReplicas, 1);
    assert.equal(hpa.spec.maxReplicas, 10);
    const res = (name) => hpa.spec.metrics.find((m) => m.type === 'ContainerResource' && m.containerResource.name === name).containerResource;
    assert.deepEqual([res('cpu').container, res('cpu').target], ['ollama', { type: 'Utilization', averageUtilization: 70 }]);
    assert.deepEqual([res('memory').container, res('memory').target], ['ollama', { type: 'Utilization', averageUtilization: 80 }]);
    const pods = hpa.spec.metrics.find((m) => m.type === 'Pods').pods;
    assert.equal(pods.metric.name, 'litebrain_complexity_score');
    assert.deepEqual(pods.target, { type: 'AverageValue', averageValue: '50' });
    assert.equal(hpa.spec.behavior.scaleUp.stabilizationWindowSeconds, 60);
    assert.equal(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds, 300);
    const policy = JSON.parse(find(docs, 'ConfigMap', 'litebrain-policy').data['policy.json']);
    assert.equal(policy.minReplicas, hpa.spec.minReplicas);
    assert.equal(policy.maxReplicas, hpa.spec.maxReplicas);
});

test('RBAC grants exactly the controller\'s calls', () => {
    const role = find(docs, 'Role', 'litebrain-scaler');
    const grants = [];
    for (const r of role.rules) {
        for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) grants.push(`${g || 'core'} ${res} ${v}${r.resourceNames ? ` [${r.resourceNames.join(',')}]` : ''}`);
    }
    assert.deepEqual(grants.sort(), [
        'apps deployments/scale get [ollama-inference]',
        'apps deployments/scale patch [ollama-inference]',
        'autoscaling horizontalpodautoscalers get [ollama-hpa]',
        'autoscaling horizontalpodautoscalers patch [ollama-hpa]',
        'coordination.k8s.io leases create',
        'coordination.k8s.io leases get [litebrain-scaler]',
        'coordination.k8s.io leases update [litebrain-scaler]',
        'core pods get',
        'core pods/resize patch',
    ].sort());
    assert.ok(!docs.some((d) => d.kind === 'ClusterRole' || d.kind === 'ClusterRoleBinding'));
    const rb = find(docs, 'RoleBinding', 'litebrain-scaler');
    assert.deepEqual(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
    assert.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: NS }]);
});

test('the policy ConfigMap is DESIGN §6\'s seed and the binary accepts it', () => {
    const text = find(docs, 'ConfigMap', 'litebrain-policy').data['policy.json'];
    assert.deepEqual(JSON.parse(text), designSeedPolicy());
    if (!fs.existsSync(PROXY_BIN)) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lb-policy-'));
    try {
        const f = path.join(dir, 'policy.json');
        fs.writeFileSync(f, text);
        const out = execFileSync(PROXY_BIN, ['--check-policy', f], { encoding: 'utf8', timeout: 20000 });
        assert.match(out, /complexityThresholds/);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test('alerts are the four DESIGN §7 alerts with their windows', () => {
    const rules = find(docs, 'PrometheusRule', 'litebrain-alerts').spec.groups.flatMap((g) => g.rules);
    const byAlert = Object.fromEntries(rules.map((r) => [r.alert, r]));
    assert.deepEqual(Object.keys(byAlert).sort(), ['LiteBrainHPAAtMaxReplicas', 'LiteBrainHighComplexity', 'LiteBrainHighErrorRate', 'LiteBrainSlowRequests']);
    assert.equal(byAlert.LiteBrainHighComplexity.for, '5m');
    assert.equal(byAlert.LiteBrainHPAAtMaxReplicas.for, '10m');
    assert.equal(byAlert.LiteBrainSlowRequests.for, '5m');
    assert.equal(byAlert.LiteBrainHighErrorRate.for, '5m');
    assert.match(byAlert.LiteBrainHPAAtMaxReplicas.expr, /kube_horizontalpodautoscaler_status_current_replicas[\s\S]*kube_horizontalpodautoscaler_spec_max_replicas/);
    // behaviour (thresholds, 499) is unit-tested by promtool in test/checks/manifests-rules.sh
});

test('the adapter serves the metric the HPA reads, per pod', () => {
    const hpaMetric = find(docs, 'HorizontalPodAutoscaler', 'ollama-hpa').spec.metrics.find((m) => m.type === 'Pods').pods.metric.name;
    const cm = adapterDocs.find((d) => d.kind === 'ConfigMap');
    assert.notEqual(cm.metadata.namespace, NS, 'the adapter has its own namespace');
    const cfg = YAML.parse(cm.data['config.yaml']).rules;
    const rule = cfg.find((r) => r.name.as === hpaMetric);
    assert.ok(rule, `a rule names ${hpaMetric}`);
    assert.match(rule.seriesQuery, new RegExp(`^${hpaMetric}\\{`));
    assert.deepEqual(rule.resources.overrides, { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } });
    assert.match(rule.metricsQuery, /<<\.Series>>\{<<\.LabelMatchers>>\}/);
    assert.match(rule.metricsQuery, /by \(<<\.GroupBy>>\)/);
});


/* ------------------------------------------------------------------ the real binary */

/* litebrain_* names read by the dashboard, the alerts and the adapter, without histogram suffixes. */
function shippedMetricNames() {
    const exprs = [
        ...dashboardExprs(JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'))).map((e) => e.expr),
        ...find(docs, 'PrometheusRule', 'litebrain-alerts').spec.groups.flatMap((g) => g.rules).map((r) => r.expr),
        ...adapterExprs(adapterDocs).map((e) => e.expr),
    ];
    const names = new Set();
    for (const e of exprs) for (const n of metricNames(e)) if (n.startsWith('litebrain_')) names.add(n.replace(/_(bucket|sum|count)$/, ''));
    return [...names].sort();
}

itest('the binary runs with the Deployment\'s sidecar env and exports every series we chart and alert on', async () => {
    assert.ok(fs.existsSync(PROXY_BIN), `${PROXY_BIN} (make test builds it)`);
    const sim = await startSim();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lb-manifest-'));
    try {
        const policyFile = path.join(dir, 'policy.json');
        fs.writeFileSync(policyFile, find(docs, 'ConfigMap', 'litebrain-policy').data['policy.json']);
        const env = {};
        for (const [name, e] of Object.entries(sideEnv)) env[name] = e.value !== undefined ? e.value : 'ollama-inference-test-0';
        // Outside a cluster: loopback port 0 (the flags win over the env), dry-run controller (no
        // cluster to write to; it still exports its series), our policy copy.
        Object.assign(env, { LITEBRAIN_POLICY: policyFile, LITEBRAIN_CONTROLLER: 'dry-run' });
        const px = await startProxy([], env, { sim });

        // probe paths answer (and an unknown path does not, so 200 is not a catch-all)
        assert.equal((await httpGet(px.metricsPort, sidecar.livenessProbe.httpGet.path)).status, 200);
        await pollUntil(async () => (await httpGet(px.metricsPort, sidecar.readinessProbe.httpGet.path)).status === 200, undefined, '/readyz 200');
        assert.equal((await httpGet(px.metricsPort, '/no-such-path')).status, 404);

        // one scored request so labelled families have samples
        const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: true });
        const r = await rawRequest(px.port, buildRequest('POST', '/api/chat', [['Host', hostOf(px.port)], ['Content-Type', 'application/json']], body));
        assert.equal(r.status, 200);

        const text = await scrapeMetrics(px);
        const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
        const wanted = shippedMetricNames();
        assert.ok(wanted.length >= 10, `names read: ${wanted.join(' ')}`);
        const missing = wanted.filter((n) => !families.has(n));
        assert.deepEqual(missing, [], 'series read by the dashboard/alerts/adapter that the binary does not export');
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
