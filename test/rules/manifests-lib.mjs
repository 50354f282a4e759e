// manifests-lib.mjs — shared by test/integration/manifests.test.mjs and the offline checks in
// test/checks/manifests*.sh: load the Kubernetes YAML, validate it (kubernetes-models schemas
// plus a strict unknown-field walk over the models' type declarations), pull the PromQL out of
// the PrometheusRule, the dashboard and the adapter rule, and read the proxy's flag/env
// contract from `litebrain-proxy --help` (or DESIGN §2 when the binary is not built).
//
// As a command (used by the checks):
//   node manifests-lib.mjs alert-rules OUT.yml       the PrometheusRule's groups, promtool format
//   node manifests-lib.mjs mutant-count              how many deliberate breakages there are
//   node manifests-lib.mjs alert-mutant OUT.yml N    the rules with breakage N applied
//   node manifests-lib.mjs expr-rules OUT.yml        every dashboard/adapter expr as a recording rule

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MANIFEST_DIR = path.join(REPO, 'k8s', 'manifests');
export const MAIN_MANIFEST = path.join(MANIFEST_DIR, 'ollama-scaling-k8s.yaml');
export const ADAPTER_MANIFEST = path.join(MANIFEST_DIR, 'prometheus-adapter-rules.yaml');
export const DASHBOARD = path.join(REPO, 'k8s', 'dashboards', 'litebrain.json');
/* The contract lives in shared/ beside the checkout; LB_DESIGN overrides.  Where it is absent
 * (a bare clone in CI) the tests read DESIGN_COPY, the excerpts they need, which a test keeps
 * equal to DESIGN.md whenever that file is present. */
export const DESIGN = process.env.LB_DESIGN || path.resolve(REPO, '..', 'shared', 'DESIGN.md');
export const DESIGN_COPY = path.resolve(REPO, 'test', 'rules', 'design-contract.json');
export const haveDesign = () => fs.existsSync(DESIGN);
const designCopy = () => JSON.parse(fs.readFileSync(DESIGN_COPY, 'utf8'));
export const RELEASE_BIN = path.join(REPO, 'build', 'litebrain-proxy');
const HELP_TIMEOUT_MS = 10000;   // --help must answer within this (it is instant)

/* Grafana variables the dashboard may use, and what they become for promtool. */
export const GRAFANA_VARS = [
    [/\$__rate_interval|\$\{__rate_interval\}/g, '5m'],
    [/\$__interval|\$\{__interval\}/g, '1m'],
    [/\$namespace|\$\{namespace\}/g, 'goblinos-ai'],
];

/* ------------------------------------------------------------------ YAML */

/* Every document of a multi-document YAML file, parsed strictly (duplicate keys are errors). */
export function loadDocs(file) {
    const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'), { uniqueKeys: true });
    const out = [];
    for (const d of docs) {
        if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
        const js = d.toJS();
        if (js !== null && js !== undefined) out.push(js);
    }
    return out;
}

export const find = (docs, kind, name) => docs.find((d) => d.kind === kind && d.metadata && d.metadata.name === name);

/* ------------------------------------------------------------------ schemas */

const require = createRequire(import.meta.url);
const PKG_ROOTS = {
    core: path.dirname(require.resolve('kubernetes-models/package.json')),
    prom: path.dirname(require.resolve('@kubernetes-models/prometheus-operator/package.json')),
    apimachinery: path.dirname(require.resolve('@kubernetes-models/apimachinery/package.json', {
        paths: [path.dirname(require.resolve('kubernetes-models/package.json'))] })),
};

/* Module specifier and .d.ts path of the model for apiVersion/kind, or null when unknown. */
function modelLocation(apiVersion, kind) {
    const [pkg, root] = /(^|\.)coreos\.com\//.test(apiVersion)
        ? ['@kubernetes-models/prometheus-operator', PKG_ROOTS.prom] : ['kubernetes-models', PKG_ROOTS.core];
    const dts = path.join(root, apiVersion, `${kind}.d.ts`);
    if (!fs.existsSync(dts)) return null;
    return { spec: `${pkg}/${apiVersion}/${kind}`, dts };
}

/* Validate one document against its kubernetes-models schema.  Returns a list of problems
 * (empty when valid): schema errors plus fields the API type does not have. */
export async function validateDoc(doc) {
    const where = `${doc.kind}/${doc.metadata && doc.metadata.name}`;
    const loc = doc.apiVersion && doc.kind ? modelLocation(doc.apiVersion, doc.kind) : null;
    if (!loc) return [`${where}: no schema for ${doc.apiVersion} ${doc.kind}`];
    const mod = await import(loc.spec);
    const Model = mod[doc.kind];
    const problems = [];
    try {
        new Model(doc).validate();
    } catch (e) {
        problems.push(`${where}: ${e.message}`);
    }
    for (const p of unknownFields(doc, typeOfFile(loc.dts))) problems.push(`${where}: unknown field ${p}`);
    return problems;
}

/* --- a small reader for the models' .d.ts files: enough to know each object's field names --- */

const typeCache = new Map();     // .d.ts path -> parsed type of its interface (or {leaf})

/* Resolve an import specifier as written in a .d.ts file to a .d.ts path. */
function resolveDts(fromFile, spec) {
    if (spec.startsWith('.')) return path.resolve(path.dirname(fromFile), `${spec}.d.ts`);
    if (spec.startsWith('@kubernetes-models/apimachinery/')) {
        return path.join(PKG_ROOTS.apimachinery, `${spec.slice('@kubernetes-models/apimachinery/'.length)}.d.ts`);
    }
    return null;
}

/* Split text at top-level occurrences of sep (outside {} <> () and quotes). */
function splitTop(text, sep) {
    const parts = [];
    let depth = 0; let q = false; let start = 0;
    for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (c === '"') q = !q;
        if (q) continue;
        if ('{<('.includes(c)) depth++;
        else if ('}>)'.includes(c)) depth--;
        else if (c === sep && depth === 0) { parts.push(text.slice(start, i)); start = i + 1; }
    }
    parts.push(text.slice(start));
    return parts.map((s) => s.trim()).filter(Boolean);
}

/* Parse a TypeScript type expression into {obj: {field: type}} | {map: type} | {arr: type} | {leaf}. */
function parseType(t, file, imports) {
    t = t.trim();
    const arr = /^Array<([\s\S]*)>$/.exec(t);
    if (arr) return { arr: parseType(arr[1], file, imports) };
    if (t.startsWith('{')) {
        const body = t.slice(1, t.lastIndexOf('}'));
        const idx = /^\s*\[key: string\]:\s*([\s\S]*?);?\s*$/.exec(body);
        if (idx) return { map: parseType(idx[1], file, imports) };
        return { obj: parseBody(body, file, imports) };
    }
    if (/^\w+$/.test(t) && imports[t]) return { ref: imports[t] };
    return { leaf: true };
}

/* Fields of an interface/object-literal body. */
function parseBody(body, file, imports) {
    const fields = {};
    for (const member of splitTop(body, ';')) {
        const m = /^"([^"]+)"\??:\s*([\s\S]+)$/.exec(member);
        if (m) fields[m[1]] = parseType(m[2], file, imports);
    }
    return fields;
}

/* The type declared by one .d.ts file (its first interface; a type alias is a leaf). */
function typeOfFile(file) {
    if (typeCache.has(file)) return typeCache.get(file);
    const placeholder = {};
    typeCache.set(file, placeholder);      // why: recursive types (JSONSchemaProps) refer back
    const src = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
    const imports = {};
    for (const m of src.matchAll(/import \{ ([^}]+) \} from "([^"]+)";/g)) {
        const target = resolveDts(file, m[2]);
        if (!target) continue;
        for (const name of m[1].split(',').map((s) => s.trim().split(/\s+as\s+/).pop())) imports[name] = target;
    }
    const head = /export interface \w+(?: extends [\w, <>"[\]]+)? \{/.exec(src);
    let result = { leaf: true };
    if (head) {
        let depth = 1; let i = head.index + head[0].length;
        const start = i;
        for (; i < src.length && depth > 0; i++) {
            if (src[i] === '{') depth++;
            else if (src[i] === '}') depth--;
        }
        result = { obj: parseBody(src.slice(start, i - 1), file, imports) };
    }
    Object.assign(placeholder, result);
    return placeholder;
}

/* Paths of fields in value that type t does not declare. */
export function unknownFields(value, t, at = '') {
    const out = [];
    if (!t || value === null || value === undefined) return out;
    if (t.ref) return unknownFields(value, typeOfFile(t.ref), at);
    if (t.arr && Array.isArray(value)) value.forEach((v, i) => out.push(...unknownFields(v, t.arr, `${at}[${i}]`)));
    else if (t.map && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...unknownFields(v, t.map, `${at}.${k}`));
    else if (t.obj && typeof value === 'object' && !Array.isArray(value)) {
        for (const [k, v] of Object.entries(value)) {
            if (!(k in t.obj)) out.push(`${at}.${k}`);
            else out.push(...unknownFields(v, t.obj[k], `${at}.${k}`));
        }
    }
    return out;
}

/* ------------------------------------------------------------------ PromQL sources */

/* Deliberate breakages of the alert rules: alerts.test.yml must fail on every one of them,
 * which shows that each threshold, window, filter and the 499 rule is really tested. */
export const ALERT_MUTANTS = [
    { alert: 'LiteBrainHighComplexity', field: 'expr', from: '> 80', to: '> 95' },
    { alert: 'LiteBrainHighComplexity', field: 'expr', from: 'avg by', to: 'max by' },
    { alert: 'LiteBrainHighComplexity', field: 'expr', from: '{namespace="goblinos-ai"}', to: '' },
    { alert: 'LiteBrainHighComplexity', field: 'for', from: '5m', to: '3m' },
    { alert: 'LiteBrainHPAAtMaxReplicas', field: 'expr', from: '>=', to: '>' },
    { alert: 'LiteBrainHPAAtMaxReplicas', field: 'expr', from: ', horizontalpodautoscaler="ollama-hpa"}', to: '}' },
    { alert: 'LiteBrainHPAAtMaxReplicas', field: 'for', from: '10m', to: '5m' },
    { alert: 'LiteBrainSlowRequests', field: 'expr', from: '> 30', to: '> 45' },
    { alert: 'LiteBrainSlowRequests', field: 'for', from: '5m', to: '15m' },
    { alert: 'LiteBrainHighErrorRate', field: 'expr', from: 'status=~"5.."', to: 'status=~"4..|5.."' },
    { alert: 'LiteBrainHighErrorRate', field: 'expr', from: '> 0.05', to: '> 0.2' },
    { alert: 'LiteBrainHighErrorRate', field: 'expr', from: 'status=~"5.."', to: 'status=~"5..", pod="none"' },
];

/* The PrometheusRule's spec.groups as a promtool rules file (YAML text); with mutant set,
 * that one breakage applied (throws when its text is not found, so mutants cannot go stale). */
export function alertRulesYaml(docs, mutant = null) {
    const pr = docs.filter((d) => d.kind === 'PrometheusRule');
    if (pr.length !== 1) throw new Error(`expected one PrometheusRule, found ${pr.length}`);
    const groups = structuredClone(pr[0].spec.groups);
    if (mutant) {
        const rule = groups.flatMap((g) => g.rules).find((r) => r.alert === mutant.alert);
        if (!rule || !String(rule[mutant.field]).includes(mutant.from)) {
            throw new Error(`mutant ${JSON.stringify(mutant)} does not apply`);
        }
        rule[mutant.field] = String(rule[mutant.field]).replaceAll(mutant.from, mutant.to);
    }
    return YAML.stringify({ groups }, { lineWidth: 0 });
}

/* Every PromQL expression of the dashboard: [{where, expr}] with Grafana variables left in. */
export function dashboardExprs(dash) {
    const out = [];
    const walk = (panels) => {
        for (const p of panels || []) {
            for (const t of p.targets || []) if (t.expr) out.push({ where: `panel "${p.title}" ${t.refId || ''}`.trim(), expr: t.expr });
            walk(p.panels);
        }
    };
    walk(dash.panels);
    for (const v of (dash.templating && dash.templating.list) || []) {
        const q = v.query && (typeof v.query === 'string' ? v.query : v.query.query);
        if (v.type === 'query' && q) out.push({ where: `variable ${v.name}`, expr: q, grafanaFunction: true });
    }
    return out;
}

/* Replace Grafana variables with values promtool accepts. */
export function grafanaToPromql(expr) {
    let e = expr;
    for (const [re, v] of GRAFANA_VARS) e = e.replace(re, v);
    return e;
}

/* The adapter rule's metricsQuery with its Go templates filled in as the adapter would. */
export function adapterExprs(docs) {
    const out = [];
    for (const d of docs.filter((x) => x.kind === 'ConfigMap')) {
        const cfg = YAML.parse(d.data['config.yaml']);
        for (const r of cfg.rules || []) {
            out.push({ where: 'adapter seriesQuery', expr: r.seriesQuery });
            out.push({
                where: 'adapter metricsQuery',
                expr: r.metricsQuery.replace(/<<\.Series>>/g, r.name.as || 'litebrain_complexity_score')
                    .replace(/<<\.LabelMatchers>>/g, 'namespace="goblinos-ai",pod=~"ollama-inference-.*"')
                    .replace(/<<\.GroupBy>>/g, 'namespace,pod'),
            });
        }
    }
    return out;
}

/* Metric names a PromQL expression reads (identifiers followed by { [ ( or an operator that
 * are not functions, keywords or label names).  Good enough for our own expressions. */
export function metricNames(expr) {
    const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, '{}');
    const words = noStrings.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
        .match(/[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*(\{|\[|\)|$|\s|[-+*/<>=!,]))/g) || [];
    const KEYWORDS = new Set(['sum', 'avg', 'max', 'min', 'count', 'rate', 'irate', 'increase', 'histogram_quantile',
        'by', 'without', 'and', 'or', 'unless', 'on', 'ignoring', 'bool', 'offset', 'le', 'time', 'vector',
        'clamp_min', 'clamp_max', 'label_values', 'topk', 'bottomk', 'abs', 'delta', 'deriv', 'max_over_time',
        'avg_over_time', 'min_over_time', 'sum_over_time', 'scalar', 'inf', 'nan', 'Inf', 'NaN']);
    return [...new Set(words.filter((w) => !KEYWORDS.has(w) && !/^\d/.test(w) && /_/.test(w)))];
}

/* ------------------------------------------------------------------ the proxy's contract */

/* {flags: [{flag, env, def}], env: Set of every env name it reads, source} from --help of the
 * release binary (else $LB_BUILD's, or bin), else from DESIGN §2. */
export function proxyContract(bin = fs.existsSync(RELEASE_BIN) ? RELEASE_BIN
    : path.resolve(REPO, process.env.LB_BUILD || 'build', 'litebrain-proxy')) {
    if (fs.existsSync(bin)) {
        const text = execFileSync(bin, ['--help'], { encoding: 'utf8', timeout: HELP_TIMEOUT_MS });
        const flags = [];
        for (const line of text.split('\n')) {
            const m = /^\s+(--[a-z][a-z-]*)\s+([A-Z][A-Z0-9_]*)\s+.*\(default: (.*)\)\s*$/.exec(line);
            if (m) flags.push({ flag: m[1], env: m[2], def: m[3] === 'none' ? '' : m[3] });
        }
        const env = new Set(text.match(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/g) || []);
        if (flags.length) return { flags, env, source: `${bin} --help` };
    }
    return designContract();
}

/* The same from DESIGN §2's table and its "Kubernetes settings" paragraph. */
export function designContract() {
    if (!haveDesign()) {
        const c = designCopy();
        return { flags: c.flags, env: new Set(c.env), source: DESIGN_COPY };
    }
    const text = fs.readFileSync(DESIGN, 'utf8');
    const sec = text.slice(text.indexOf('## 2.'), text.indexOf('## 3.'));
    const flags = [];
    for (const m of sec.matchAll(/^\| `(--[a-z-]+)` \| `([A-Z_]+)` \| ([^|]*) \|/gm)) {
        const d = /`([^`]*)`/.exec(m[3]);
        flags.push({ flag: m[1], env: m[2], def: d ? d[1] : '' });
    }
    const env = new Set(flags.map((f) => f.env));
    const k8s = sec.slice(sec.indexOf('Kubernetes settings'), sec.indexOf('Sizes accept'));
    for (const m of k8s.matchAll(/`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`/g)) env.add(m[1]);
    return { flags, env, source: DESIGN };
}

/* DESIGN §6's policy JSON block, parsed. */
export function designSeedPolicy() {
    if (!haveDesign())
        return designCopy().seedPolicy;
    const text = fs.readFileSync(DESIGN, 'utf8');
    const sec = text.slice(text.indexOf('## 6.'));
    return JSON.parse(/```json\n([\s\S]*?)```/.exec(sec)[1]);
}

/* The seed's kubectl commands as DESIGN §7 writes them. */
export function designKubectlCommands() {
    if (!haveDesign())
        return designCopy().kubectlCommands;
    const text = fs.readFileSync(DESIGN, 'utf8');
    const sec = text.slice(text.indexOf('## 7.'));
    return [...sec.matchAll(/`(kubectl [^`]+)`/g)].map((m) => m[1]);
}

/* DESIGN §2's default service-account directory. */
export function designSaDir() {
    if (!haveDesign())
        return designCopy().saDir;
    return /`LITEBRAIN_K8S_SA_DIR`, default `([^`]+)`/.exec(fs.readFileSync(DESIGN, 'utf8'))[1];
}

/* The committed copy, for the test that keeps it equal to DESIGN.md. */
export function designCopyData() {
    return designCopy();
}

/* ------------------------------------------------------------------ command line */

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    const [cmd, out] = process.argv.slice(2);
    if (cmd === 'alert-rules' && out) {
        fs.writeFileSync(out, alertRulesYaml(loadDocs(MAIN_MANIFEST)));
    } else if (cmd === 'mutant-count') {
        process.stdout.write(`${ALERT_MUTANTS.length}\n`);
    } else if (cmd === 'alert-mutant' && out) {
        const m = ALERT_MUTANTS[Number(process.argv[4])];
        fs.writeFileSync(out, alertRulesYaml(loadDocs(MAIN_MANIFEST), m));
        process.stdout.write(`${m.alert} ${m.field}: ${m.from} -> ${m.to}\n`);
    } else if (cmd === 'expr-rules' && out) {
        const exprs = [...dashboardExprs(JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'))).filter((e) => !e.grafanaFunction),
            ...adapterExprs(loadDocs(ADAPTER_MANIFEST))];
        const rules = exprs.map((e, i) => ({ record: `litebrain:expr_check_${i}`, expr: grafanaToPromql(e.expr),
            labels: { source: e.where } }));
        fs.writeFileSync(out, YAML.stringify({ groups: [{ name: 'dashboard-and-adapter-exprs', rules }] }, { lineWidth: 0 }));
        process.stdout.write(`${rules.length} expressions\n`);
    } else {
        process.stderr.write('usage: manifests-lib.mjs alert-rules|expr-rules OUT.yml | mutant-count | alert-mutant OUT.yml N\n');
        process.exit(2);
    }
}
