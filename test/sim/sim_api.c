/* sim_api.c — Ollama's routes as the simulator answers them: the Host check, routing with
 * gin's 404/405 behaviour, request JSON decoding with Go-like errors, the metadata
 * endpoints (/, version, tags, ps, show, /v1/models) and the validation in front of every
 * generating endpoint (which then goes to sim_gen.c). */
#include "test/sim/sim.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIM_MSG_MAX 512                   /* longest error message built here */
#define SIM_FIELDS_MAX 4                  /* string fields a handler reads from one body */
#define SIM_PS_KEEPALIVE_NS (300ull * 1000000000ull) /* expires_at = last use + 5 min */
#define SIM_NOT_FOUND_FMT "model '%s' not found"     /* unknown model (generate, chat, show) */
#define SIM_PULL_FIRST_FMT "model \"%s\" not found, try pulling it first" /* ... embeddings */

enum { SIM_M_HEAD = 1, SIM_M_GET = 2, SIM_M_POST = 4, SIM_M_DELETE = 8 };

typedef void (*sim_handler)(sim_req *r);

typedef struct sim_route {
    const char *path;                  /* exact path, or prefix when prefix is set */
    int prefix;                        /* 1 = path + one more segment */
    int methods;                       /* SIM_M_* allowed */
    sim_handler h;                     /* handler, or NULL for a generating endpoint */
    const struct sim_gen_ep *gen;      /* generating endpoint (with h NULL) */
} sim_route;

/* ------------------------------------------------------------------ errors */

/* See sim.h. */
void sim_api_error(sim_req *r, int status, const char *msg)
{
    char body[SIM_MSG_MAX * 2];
    if (r->v1) { sim_api_v1_error(r, status, msg, 1); return; }
    size_t n = (size_t)snprintf(body, sizeof body, "{\"error\":");
    n += sim_json_str_buf(body + n, sizeof body - n - 2, msg, strlen(msg));
    body[n++] = '}';
    sim_resp_full(r, status, NULL, SIM_CT_JSON_GIN, body, n);
}

/* See sim.h. */
void sim_api_v1_error(sim_req *r, int status, const char *msg, int via_writer)
{
    char body[SIM_MSG_MAX * 2];
    const char *type = status == 400 ? "invalid_request_error" : status == 404 ? "not_found_error" : "api_error";
    size_t n = (size_t)snprintf(body, sizeof body, "{\"error\":{\"message\":");
    n += sim_json_str_buf(body + n, sizeof body - n - 96, msg, strlen(msg));
    n += (size_t)snprintf(body + n, sizeof body - n, ",\"type\":\"%s\",\"param\":null,\"code\":null}}%s", type,
                          via_writer ? "\n" : "");
    /* via the middleware's writer: json.Encoder (newline) and Content-Type without charset */
    sim_resp_full(r, status, NULL, via_writer ? SIM_CT_JSON : SIM_CT_JSON_GIN, body, n);
}

/* ------------------------------------------------------------------ request JSON */

/* Go's name for the kind of a JSON value in UnmarshalTypeError messages. */
static const char *sim_json_kind(const json_t *v)
{
    if (json_is_object(v)) return "object";
    if (json_is_array(v)) return "array";
    if (json_is_string(v)) return "string";
    if (json_is_boolean(v)) return "bool";
    return "number";
}

/* Go's encoding/json message for the syntax error jansson reported (the common shapes:
 * truncated input, a bad first character, a bad object key, a missing ':' / ',' / '}' /
 * ']'); first is the offset of the first non-space byte. */
static void sim_json_error_msg(const json_error_t *err, const char *s, size_t len, size_t first, char *msg, size_t cap)
{
    const char *near = strstr(err->text, "near '");
    const char *what = "looking for beginning of value";
    unsigned char ch;
    (void)len;
    if (strstr(err->text, "end of file") || strstr(err->text, "premature end")) {
        snprintf(msg, cap, "unexpected EOF");
        return;
    }
    if (!strchr("{[\"-0123456789tfn", s[first])) ch = (unsigned char)s[first];
    else {
        ch = near ? (unsigned char)near[6] : (unsigned char)s[first];
        if (strstr(err->text, "string or '}' expected")) what = "looking for beginning of object key string";
        else if (strstr(err->text, "':' expected")) what = "after object key";
        else if (strstr(err->text, "'}' expected")) what = "after object key:value pair";
        else if (strstr(err->text, "']' expected")) what = "after array element";
    }
    if (ch == '\'') snprintf(msg, cap, "invalid character '\\'' %s", what);
    else if (ch == '"') snprintf(msg, cap, "invalid character '\"' %s", what);
    else if (isprint(ch)) snprintf(msg, cap, "invalid character '%c' %s", ch, what);
    else snprintf(msg, cap, "invalid character '\\x%02x' %s", ch, what);
}

/* Decode r's body as a JSON object for Go type gotype ("api.GenerateRequest").  Returns a
 * new reference (an empty object for `null`), or NULL with msg set to Go's error text
 * ("missing request body" for an empty body when eof_msg is NULL, else eof_msg). */
static json_t *sim_body_json(sim_req *r, const char *gotype, const char *eof_msg, char *msg, size_t cap)
{
    size_t len = evbuffer_get_length(r->body);
    const char *s = (const char *)evbuffer_pullup(r->body, -1);
    size_t i = 0;
    json_error_t err;
    while (i < len && isspace((unsigned char)s[i])) i++;
    if (i == len) { snprintf(msg, cap, "%s", eof_msg ? eof_msg : "missing request body"); return NULL; }
    /* like json.Decoder.Decode: the first value only; trailing bytes are not looked at */
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, &err);
    if (!v) {
        sim_json_error_msg(&err, s, len, i, msg, cap);
        return NULL;
    }
    if (json_is_null(v)) { json_decref(v); return json_object(); }
    if (!json_is_object(v)) {
        snprintf(msg, cap, "json: cannot unmarshal %s into Go value of type %s", sim_json_kind(v), gotype);
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Field key of o for a Go struct field of type gotype ("string" or "bool"): *out = the value,
 * NULL when absent or null.  -1 with Go's UnmarshalTypeError text in msg for another type. */
static int sim_field(json_t *o, const char *key, const char *gostruct, const char *gotype, json_t **out,
                     char *msg, size_t cap)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!strcmp(gotype, "bool") ? !json_is_boolean(v) : !json_is_string(v)) {
        snprintf(msg, cap, "json: cannot unmarshal %s into Go struct field %s.%s of type %s", sim_json_kind(v), gostruct, key, gotype);
        return -1;
    }
    *out = v;
    return 0;
}

/* What a handler reads from its request body. */
typedef struct sim_body_spec {
    const char *gotype;                /* Go type it decodes into, e.g. "api.GenerateRequest" */
    const char *strs[SIM_FIELDS_MAX];  /* string fields in the order they are checked; NULL ends */
    int stream_def;                    /* default of the bool "stream" (checked last); -1 = not read */
} sim_body_spec;

/* Decode r's body per spec: out[i] = string field spec->strs[i] (NULL when absent or null),
 * r->stream = "stream" or its default.  Returns a new reference that out[] points into, or
 * NULL after answering 400 with Go's decoder message (on /v1 in OpenAI's shape as the
 * handler writes it, not the middleware, and an empty body reads "EOF"). */
static json_t *sim_decode(sim_req *r, const sim_body_spec *spec, const char *out[SIM_FIELDS_MAX])
{
    char msg[SIM_MSG_MAX];
    const char *gostruct = strchr(spec->gotype, '.') + 1;   /* "GenerateRequest" */
    json_t *o = sim_body_json(r, spec->gotype, r->v1 ? "EOF" : NULL, msg, sizeof msg);
    json_t *v = NULL;
    int bad = !o;
    for (int i = 0; i < SIM_FIELDS_MAX; i++) out[i] = NULL;
    for (int i = 0; !bad && i < SIM_FIELDS_MAX && spec->strs[i]; i++) {
        bad = sim_field(o, spec->strs[i], gostruct, "string", &v, msg, sizeof msg) != 0;
        out[i] = json_string_value(v);
    }
    if (!bad && spec->stream_def >= 0) {
        bad = sim_field(o, "stream", gostruct, "bool", &v, msg, sizeof msg) != 0;
        r->stream = v ? json_is_true(v) : spec->stream_def;
    }
    if (!bad) return o;
    json_decref(o);
    if (r->v1) sim_api_v1_error(r, 400, msg, 0);
    else sim_api_error(r, 400, msg);
    return NULL;
}

/* The name of /api/show and /api/pull: "model", else the older "name" (may be NULL). */
static const char *sim_model_or_name(const char *model, const char *name)
{
    return model && *model ? model : name;
}

/* Add a text's bytes to the token count and hash. */
static void sim_text_add(sim_req *r, const char *s, size_t len)
{
    r->prompt_tokens += sim_count_tokens(len);
    r->hash = sim_hash(r->hash, s, len);
}

/* sim_text_add of a C string field; nothing when s is NULL. */
static void sim_str_add(sim_req *r, const char *s)
{
    if (s) sim_text_add(r, s, strlen(s));
}

/* Add a message "content": a string, or (OpenAI) an array of parts with "text". */
static void sim_content_add(sim_req *r, json_t *content)
{
    if (json_is_string(content)) { sim_text_add(r, json_string_value(content), json_string_length(content)); return; }
    size_t i;
    json_t *part;
    if (!json_is_array(content)) return;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t)) sim_text_add(r, json_string_value(t), json_string_length(t));
    }
}

/* Add the content of every message of a "messages" array (nothing for another value). */
static void sim_messages_add(sim_req *r, json_t *msgs)
{
    size_t i;
    json_t *mv;
    json_array_foreach(msgs, i, mv) sim_content_add(r, json_object_get(mv, "content"));
}

/* Model, echoed name, token count and timing of r: X-Sim-Fault's chunks / ttft-ms /
 * interval-ms win over tokens, ttft_ms and the model's rate. */
static void sim_gen_setup(sim_req *r, const sim_model *m, const char *name, int tokens, int ttft_ms)
{
    r->model = m;
    r->model_name = strdup(name);
    r->n_tokens = r->fault.chunks >= 0 ? r->fault.chunks : tokens;
    r->ttft_ms = r->fault.ttft_ms >= 0 ? r->fault.ttft_ms : ttft_ms;
    r->interval_ms = r->fault.interval_ms >= 0 ? (double)r->fault.interval_ms : 1000.0 / m->tps;
}

/* Common generation settings from the model, the request's cap (-1 = none) and the faults;
 * marks the model used (/api/ps). */
static void sim_gen_params(sim_req *r, sim_model *m, const char *name, long cap)
{
    sim_gen_setup(r, m, name, m->tokens, m->ttft_ms);
    if (cap >= 0 && cap < r->n_tokens) { r->n_tokens = (int)cap; r->length_capped = 1; }
    r->hash = sim_hash(r->hash, name, strlen(name));
    m->last_used_ns = sim_g.cfg.fixed_clock ? (uint64_t)SIM_FIXED_EPOCH * 1000000000ull : sim_wall_ns();
}


/* 1 when keep_alive is zero (0, "0", "0s", "0m"...): an empty request then unloads. */
static int sim_keep_alive_zero(json_t *o)
{
    json_t *k = json_object_get(o, "keep_alive");
    if (json_is_number(k)) return json_number_value(k) == 0;
    if (!json_is_string(k)) return 0;
    const char *s = json_string_value(k);
    char *end;
    double v = strtod(s, &end);
    return end != s && v == 0 && (!*end || !strcmp(end, "s") || !strcmp(end, "m") || !strcmp(end, "h") || !strcmp(end, "ms"));
}

/* options.num_predict as a cap (-1 = none). */
static long sim_num_predict(json_t *o)
{
    json_t *n = json_object_get(json_object_get(o, "options"), "num_predict");
    if (json_is_integer(n) && json_integer_value(n) >= 0) return (long)json_integer_value(n);
    if (json_is_real(n) && json_real_value(n) >= 0) return (long)json_real_value(n);
    return -1;
}

/* "think" asked for: true, or a non-empty string other than "false" ("high"...). */
static int sim_think_asked(json_t *o)
{
    json_t *th = json_object_get(o, "think");
    const char *s = json_string_value(th);
    return json_is_true(th) || (s && *s && strcmp(s, "false") != 0);
}

/* /v1 stream_options.include_usage. */
static int sim_include_usage(json_t *o)
{
    return json_is_true(json_object_get(json_object_get(o, "stream_options"), "include_usage"));
}

/* max_tokens of an OpenAI request (-1 = none). */
static long sim_max_tokens(json_t *o)
{
    json_t *n = json_object_get(o, "max_tokens");
    if (!json_is_integer(n)) n = json_object_get(o, "max_completion_tokens");
    return json_is_integer(n) && json_integer_value(n) >= 0 ? (long)json_integer_value(n) : -1;
}

/* ------------------------------------------------------------------ model checks */

/* The model a request names, or NULL after answering: an empty name gets 400 "model is
 * required" when required, else the unknown-name answer: 404 with notfound_fmt (a printf
 * format with one %s for the name). */
static sim_model *sim_resolve_model(sim_req *r, const char *model, int required, const char *notfound_fmt)
{
    char msg[SIM_MSG_MAX];
    if (!model || !*model) {
        if (required) { sim_api_error(r, 400, "model is required"); return NULL; }
        model = "";
    }
    sim_model *m = *model ? sim_model_find(model) : NULL;
    if (!m) {
        snprintf(msg, sizeof msg, notfound_fmt, model);
        sim_api_error(r, 404, msg);
    }
    return m;
}

/* "x" does not support <what> (Go's %q of the requested name). */
static void sim_unsupported(sim_req *r, const char *model, const char *what)
{
    char msg[SIM_MSG_MAX], q[SIM_MSG_MAX / 2];
    size_t n = 0;
    for (const char *p = model; *p && n + 3 < sizeof q; p++) {
        if (*p == '"' || *p == '\\') q[n++] = '\\';
        q[n++] = *p;
    }
    q[n] = '\0';
    snprintf(msg, sizeof msg, "\"%s\" does not support %s", q, what);
    sim_api_error(r, 400, msg);
}

/* The model of a text generation, or NULL after answering: sim_resolve_model, then an
 * embedding-only model cannot <action>, and r->think needs a thinking model. */
static sim_model *sim_text_model(sim_req *r, const char *model, int required, const char *action)
{
    sim_model *m = sim_resolve_model(r, model, required, SIM_NOT_FOUND_FMT);
    if (!m) return NULL;
    if (m->embedding) { sim_unsupported(r, model, action); return NULL; }
    if (r->think && !m->thinking) { sim_unsupported(r, model, "thinking"); return NULL; }
    return m;
}

/* ------------------------------------------------------------------ metadata answers */

/* Static facts derived from a model's name: family, parameter size, bytes, quantisation. */
typedef struct sim_facts {
    char family[32];                   /* details.family */
    char params[16];                   /* details.parameter_size */
    const char *quant;                 /* details.quantization_level */
    uint64_t bytes;                    /* size */
    char digest[65];                   /* sha256-like hex */
} sim_facts;

static void sim_model_facts(const sim_model *m, sim_facts *f)
{
    const char *n = m->name, *tag = strrchr(n, ':');
    double b = 3.2;
    memset(f, 0, sizeof *f);
    if (!strncasecmp(n, "qwen", 4) || !strncasecmp(n, "deepseek-r1", 11)) snprintf(f->family, sizeof f->family, "qwen2");
    else if (m->embedding) snprintf(f->family, sizeof f->family, "nomic-bert");
    else snprintf(f->family, sizeof f->family, "llama");
    if (tag && isdigit((unsigned char)tag[1]) && (tolower((unsigned char)tag[strlen(tag) - 1]) == 'b')) b = strtod(tag + 1, NULL);
    if (m->embedding) { snprintf(f->params, sizeof f->params, "137M"); f->bytes = 274302450; f->quant = "F16"; }
    else { snprintf(f->params, sizeof f->params, "%gB", b); f->bytes = (uint64_t)(b * 0.62e9); f->quant = "Q4_K_M"; }
    uint32_t h = sim_hash(SIM_FNV_INIT, n, strlen(n));
    for (int i = 0; i < 8; i++) { h = sim_hash(h, &i, sizeof i); snprintf(f->digest + i * 8, 9, "%08x", h); }
}

/* See sim.h. */
uint64_t sim_model_size(const sim_model *m, char digest[65])
{
    sim_facts f;
    sim_model_facts(m, &f);
    memcpy(digest, f.digest, 65);
    return f.bytes;
}

/* Append {"parent_model":...} details. */
static void sim_details_json(struct evbuffer *b, const sim_facts *f)
{
    evbuffer_add_printf(b, "{\"parent_model\":\"\",\"format\":\"gguf\",\"family\":\"%s\",\"families\":[\"%s\"],"
                        "\"parameter_size\":\"%s\",\"quantization_level\":\"%s\"}", f->family, f->family, f->params, f->quant);
}

/* modified_at of every model: one day before the fixed epoch (always deterministic). */
static void sim_modified_at(char *out, size_t cap)
{
    sim_time_rfc3339(out, cap, (uint64_t)(SIM_FIXED_EPOCH - 86400) * 1000000000ull);
}

static void sim_h_root(sim_req *r)
{
    sim_resp_full(r, 200, NULL, "text/plain; charset=utf-8", "Ollama is running", 17);
}

static void sim_h_version(sim_req *r)
{
    static const char body[] = "{\"version\":\"" SIM_OLLAMA_VERSION "\"}";
    sim_resp_full(r, 200, NULL, SIM_CT_JSON_GIN, body, sizeof body - 1);
}

static void sim_h_tags(sim_req *r)
{
    struct evbuffer *b = evbuffer_new();
    char mod[48];
    sim_modified_at(mod, sizeof mod);
    SIM_ADD_LIT(b, "{\"models\":[");
    for (int i = 0; i < sim_g.cfg.nmodels; i++) {
        const sim_model *m = &sim_g.cfg.models[i];
        sim_facts f;
        sim_model_facts(m, &f);
        evbuffer_add_printf(b, "%s{\"name\":\"%s\",\"model\":\"%s\",\"modified_at\":\"%s\",\"size\":%llu,\"digest\":\"%s\",\"details\":",
                            i ? "," : "", m->name, m->name, mod, (unsigned long long)f.bytes, f.digest);
        sim_details_json(b, &f);
        SIM_ADD_LIT(b, "}");
    }
    SIM_ADD_LIT(b, "]}");
    sim_resp_buffer(r, 200, SIM_CT_JSON_GIN, b);
}

static void sim_h_ps(sim_req *r)
{
    struct evbuffer *b = evbuffer_new();
    char exp[48];
    int first = 1;
    SIM_ADD_LIT(b, "{\"models\":[");
    for (int i = 0; i < sim_g.cfg.nmodels; i++) {
        const sim_model *m = &sim_g.cfg.models[i];
        sim_facts f;
        if (!m->last_used_ns) continue;
        sim_model_facts(m, &f);
        sim_time_rfc3339(exp, sizeof exp, m->last_used_ns + SIM_PS_KEEPALIVE_NS);
        evbuffer_add_printf(b, "%s{\"name\":\"%s\",\"model\":\"%s\",\"size\":%llu,\"digest\":\"%s\",\"details\":",
                            first ? "" : ",", m->name, m->name, (unsigned long long)f.bytes, f.digest);
        sim_details_json(b, &f);
        evbuffer_add_printf(b, ",\"expires_at\":\"%s\",\"size_vram\":%llu,\"context_length\":4096}", exp, (unsigned long long)f.bytes);
        first = 0;
    }
    SIM_ADD_LIT(b, "]}");
    sim_resp_buffer(r, 200, SIM_CT_JSON_GIN, b);
}

static void sim_h_show(sim_req *r)
{
    static const sim_body_spec spec = { "api.ShowRequest", { "model", "name" }, -1 };
    const char *fld[SIM_FIELDS_MAX];
    json_t *o = sim_decode(r, &spec, fld);
    if (!o) return;
    const char *model = sim_model_or_name(fld[0], fld[1]);
    const sim_model *m = sim_resolve_model(r, model, 1, SIM_NOT_FOUND_FMT);
    if (!m) { json_decref(o); return; }
    sim_facts f;
    char mod[48];
    struct evbuffer *b = evbuffer_new();
    sim_model_facts(m, &f);
    sim_modified_at(mod, sizeof mod);
    evbuffer_add_printf(b, "{\"license\":\"Simulated model; no license text.\",\"modelfile\":");
    char mf[512];
    int n = snprintf(mf, sizeof mf, "# Modelfile generated by \"ollama show\"\nFROM %s\nTEMPLATE {{ .Prompt }}\n", m->name);
    sim_json_str(b, mf, (size_t)n);
    evbuffer_add_printf(b, ",\"template\":\"{{ .Prompt }}\",\"details\":");
    sim_details_json(b, &f);
    evbuffer_add_printf(b, ",\"model_info\":{\"general.architecture\":\"%s\",\"general.parameter_count\":%llu,"
                        "\"%s.context_length\":32768,\"%s.embedding_length\":%d},\"capabilities\":[%s],\"modified_at\":\"%s\"}",
                        f.family, (unsigned long long)(f.bytes / 10 * 16), f.family, f.family, SIM_EMBED_DIMS,
                        m->embedding ? "\"embedding\"" : m->thinking ? "\"completion\",\"thinking\"" : "\"completion\"", mod);
    json_decref(o);
    sim_resp_buffer(r, 200, SIM_CT_JSON_GIN, b);
}

static void sim_h_v1_models(sim_req *r)
{
    struct evbuffer *b = evbuffer_new();
    SIM_ADD_LIT(b, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < sim_g.cfg.nmodels; i++)
        evbuffer_add_printf(b, "%s{\"id\":\"%s\",\"object\":\"model\",\"created\":%d,\"owned_by\":\"library\"}",
                            i ? "," : "", sim_g.cfg.models[i].name, SIM_FIXED_EPOCH - 86400);
    SIM_ADD_LIT(b, "]}\n");
    sim_resp_buffer(r, 200, SIM_CT_JSON, b);
}

static void sim_h_v1_model(sim_req *r)
{
    char name[SIM_NAME_MAX * 2], body[SIM_MSG_MAX];
    size_t off = strlen("/v1/models/");
    snprintf(name, sizeof name, "%.*s", (int)(sim_req_path_len(r) - off), r->url + off);
    r->v1 = 1;
    if (!sim_resolve_model(r, name, 0, SIM_NOT_FOUND_FMT)) return;
    size_t n = (size_t)snprintf(body, sizeof body, "{\"id\":");
    n += sim_json_str_buf(body + n, sizeof body - n - 96, name, strlen(name));
    n += (size_t)snprintf(body + n, sizeof body - n, ",\"object\":\"model\",\"created\":%d,\"owned_by\":\"library\"}\n", SIM_FIXED_EPOCH - 86400);
    sim_resp_full(r, 200, NULL, SIM_CT_JSON, body, n);
}

/* ------------------------------------------------------------------ generating endpoints */

/* A generating endpoint's checks once its body decoded: fill r for sim_gen_submit from o and
 * the string fields f (sim_body_spec order); 0 to submit, -1 after answering. */
typedef int (*sim_prep_fn)(sim_req *r, json_t *o, const char *const *f);


/* /api/generate: f = model, prompt, system, suffix. */
static int sim_prep_generate(sim_req *r, json_t *o, const char *const *f)
{
    const char *model = f[0], *prompt = f[1], *system = f[2];
    r->think = sim_think_asked(o);
    sim_model *m = sim_text_model(r, model, 0, "generate");
    if (!m) return -1;
    for (int i = 1; i <= 3; i++) sim_str_add(r, f[i]);
    json_t *ctx = json_object_get(o, "context");
    if (json_is_true(json_object_get(o, "raw")) && ((system && *system) || json_array_size(ctx) ||
                                                    json_string_length(json_object_get(o, "template")))) {
        sim_api_error(r, 400, "raw mode does not support template, system, or context");
        return -1;
    }
    if (json_is_array(ctx)) r->prompt_tokens += json_array_size(ctx);
    r->load_only = !prompt || !*prompt ? 1 + sim_keep_alive_zero(o) : 0;
    sim_gen_params(r, m, model, sim_num_predict(o));
    return 0;
}

/* /api/chat: f = model. */
static int sim_prep_chat(sim_req *r, json_t *o, const char *const *f)
{
    char msg[SIM_MSG_MAX];
    json_t *msgs = json_object_get(o, "messages");
    if (msgs && !json_is_array(msgs) && !json_is_null(msgs)) {
        snprintf(msg, sizeof msg, "json: cannot unmarshal %s into Go struct field ChatRequest.messages of type []api.Message", sim_json_kind(msgs));
        sim_api_error(r, 400, msg);
        return -1;
    }
    r->think = sim_think_asked(o);
    sim_model *m = sim_text_model(r, f[0], 1, "chat");
    if (!m) return -1;
    sim_messages_add(r, msgs);
    r->load_only = json_array_size(msgs) == 0 ? 1 + sim_keep_alive_zero(o) : 0;
    sim_gen_params(r, m, f[0], sim_num_predict(o));
    return 0;
}

/* /v1/chat/completions: f = model. */
static int sim_prep_v1_chat(sim_req *r, json_t *o, const char *const *f)
{
    json_t *msgs = json_object_get(o, "messages");
    if (json_array_size(msgs) == 0) { sim_api_v1_error(r, 400, "[] is too short - 'messages'", 0); return -1; }
    sim_model *m = sim_text_model(r, f[0], 1, "chat");
    if (!m) return -1;
    r->include_usage = sim_include_usage(o);
    sim_messages_add(r, msgs);
    sim_gen_params(r, m, f[0], sim_max_tokens(o));
    return 0;
}

/* /v1/completions: f = model, prompt, suffix. */
static int sim_prep_v1_completions(sim_req *r, json_t *o, const char *const *f)
{
    sim_model *m = sim_text_model(r, f[0], 0, "generate");
    if (!m) return -1;
    r->include_usage = sim_include_usage(o);
    sim_str_add(r, f[1]);
    sim_str_add(r, f[2]);
    r->load_only = !f[1] || !*f[1];
    sim_gen_params(r, m, f[0], sim_max_tokens(o));
    return 0;
}





/* Embedding input: a string or an array of strings.  Returns the input count, or -1 for a
 * bad type.  Counts tokens and hashes. */
static int sim_embed_inputs(sim_req *r, json_t *in, int empty_string_counts)
{
    size_t i;
    json_t *v;
    r->hash = SIM_FNV_INIT;
    if (!in || json_is_null(in)) return 0;
    if (json_is_string(in)) {
        if (json_string_length(in) == 0 && !empty_string_counts) return 0;
        sim_text_add(r, json_string_value(in), json_string_length(in));
        return 1;
    }
    if (!json_is_array(in)) return -1;
    json_array_foreach(in, i, v) {
        if (!json_is_string(v)) return -1;
        sim_text_add(r, json_string_value(v), json_string_length(v));
    }
    return (int)json_array_size(in);
}

/* /api/embed and /v1/embeddings: f = model. */
static int sim_prep_embed(sim_req *r, json_t *o, const char *const *f)
{
    char msg[SIM_MSG_MAX];
    const char *model = f[0];
    json_t *in = json_object_get(o, "input");
    if (r->v1) {
        const char *fmt = json_string_value(json_object_get(o, "encoding_format"));
        if (fmt && *fmt && strcasecmp(fmt, "float") && strcasecmp(fmt, "base64")) {
            snprintf(msg, sizeof msg, "Invalid value for 'encoding_format' = %s. Supported values: ['float', 'base64'].", fmt);
            sim_api_v1_error(r, 400, msg, 0);
            return -1;
        }
        if (!in || json_is_null(in) || (json_is_array(in) && json_array_size(in) == 0)) {
            sim_api_v1_error(r, 400, "invalid input", 0);
            return -1;
        }
    }
    if (!model || !*model) { sim_api_error(r, 404, "model '' not found"); return -1; }
    int n = sim_embed_inputs(r, in, r->v1);
    if (n < 0) { sim_api_error(r, 400, "invalid input type"); return -1; }
    sim_model *m = sim_resolve_model(r, model, 0, SIM_PULL_FIRST_FMT);
    if (!m) return -1;
    r->n_inputs = n;
    json_t *dims = json_object_get(o, "dimensions");
    if (json_is_integer(dims)) r->dims = (int)json_integer_value(dims);
    sim_gen_params(r, m, model, -1);
    return 0;
}



/* /api/embeddings: f = model, prompt. */
static int sim_prep_embeddings(sim_req *r, json_t *o, const char *const *f)
{
    const char *model = f[0], *prompt = f[1];
    (void)o;
    sim_model *m = sim_resolve_model(r, model, 1, SIM_PULL_FIRST_FMT);
    if (!m) return -1;
    if (prompt && *prompt) { sim_str_add(r, prompt); r->n_inputs = 1; }
    sim_gen_params(r, m, model, -1);
    return 0;
}


/* /api/pull: f = model, name.  An unknown name joins the model table. */
static int sim_prep_pull(sim_req *r, json_t *o, const char *const *f)
{
    const char *model = sim_model_or_name(f[0], f[1]);
    (void)o;
    if (!model || !*model || strlen(model) >= SIM_NAME_MAX - 8) { sim_api_error(r, 400, "invalid model name"); return -1; }
    sim_model *m = sim_model_find(model);
    if (!m) m = sim_model_add(model);
    if (!m) { sim_api_error(r, 500, "ollama-sim: model table full"); return -1; }
    sim_gen_setup(r, m, model, SIM_PULL_STEPS, 0);
    return 0;
}


/* A generating endpoint (and /api/pull): what its request decodes into and is checked for. */
typedef struct sim_gen_ep {
    sim_body_spec spec;                /* body fields read */
    int v1;                            /* /v1 route: OpenAI error shape */
    sim_kind kind;                     /* what it produces */
    sim_prep_fn prep;                  /* checks after decoding */
} sim_gen_ep;

static const sim_gen_ep sim_ep_generate = {
    { "api.GenerateRequest", { "model", "prompt", "system", "suffix" }, 1 }, 0, SIM_KIND_GENERATE, sim_prep_generate };
static const sim_gen_ep sim_ep_chat = { { "api.ChatRequest", { "model" }, 1 }, 0, SIM_KIND_CHAT, sim_prep_chat };
static const sim_gen_ep sim_ep_v1_chat = {
    { "openai.ChatCompletionRequest", { "model" }, 0 }, 1, SIM_KIND_V1_CHAT, sim_prep_v1_chat };
static const sim_gen_ep sim_ep_v1_completions = {
    { "openai.CompletionRequest", { "model", "prompt", "suffix" }, 0 }, 1, SIM_KIND_V1_COMPLETIONS, sim_prep_v1_completions };
static const sim_gen_ep sim_ep_embed = { { "api.EmbedRequest", { "model" }, -1 }, 0, SIM_KIND_EMBED, sim_prep_embed };
static const sim_gen_ep sim_ep_v1_embeddings = {
    { "openai.EmbedRequest", { "model" }, -1 }, 1, SIM_KIND_V1_EMBEDDINGS, sim_prep_embed };
static const sim_gen_ep sim_ep_embeddings = {
    { "api.EmbeddingRequest", { "model", "prompt" }, -1 }, 0, SIM_KIND_EMBEDDINGS, sim_prep_embeddings };
static const sim_gen_ep sim_ep_pull = { { "api.PullRequest", { "model", "name" }, 1 }, 0, SIM_KIND_PULL, sim_prep_pull };

/* Decode r's body for endpoint ep, let its prep check and fill r, submit it.  r may be
 * freed afterwards. */
static void sim_gen_handle(sim_req *r, const sim_gen_ep *ep)
{
    const char *f[SIM_FIELDS_MAX];
    r->v1 = ep->v1;
    r->kind = ep->kind;
    json_t *o = sim_decode(r, &ep->spec, f);
    if (!o) return;
    r->hash = SIM_FNV_INIT;
    int rc = ep->prep(r, o, f);
    json_decref(o);
    if (rc == 0) sim_gen_submit(r);
}

/* ------------------------------------------------------------------ routing */

static const sim_route sim_routes[] = {
    { "/", 0, SIM_M_HEAD | SIM_M_GET, sim_h_root, NULL },
    { "/api/version", 0, SIM_M_HEAD | SIM_M_GET, sim_h_version, NULL },
    { "/api/tags", 0, SIM_M_HEAD | SIM_M_GET, sim_h_tags, NULL },
    { "/api/ps", 0, SIM_M_GET, sim_h_ps, NULL },
    { "/api/show", 0, SIM_M_POST, sim_h_show, NULL },
    { "/api/pull", 0, SIM_M_POST, NULL, &sim_ep_pull },
    { "/api/generate", 0, SIM_M_POST, NULL, &sim_ep_generate },
    { "/api/chat", 0, SIM_M_POST, NULL, &sim_ep_chat },
    { "/api/embed", 0, SIM_M_POST, NULL, &sim_ep_embed },
    { "/api/embeddings", 0, SIM_M_POST, NULL, &sim_ep_embeddings },
    { "/v1/chat/completions", 0, SIM_M_POST, NULL, &sim_ep_v1_chat },
    { "/v1/completions", 0, SIM_M_POST, NULL, &sim_ep_v1_completions },
    { "/v1/embeddings", 0, SIM_M_POST, NULL, &sim_ep_v1_embeddings },
    { "/v1/models", 0, SIM_M_GET, sim_h_v1_models, NULL },
    { "/v1/models/", 1, SIM_M_GET, sim_h_v1_model, NULL },
};

static int sim_method_bit(int method)
{
    switch (method) {
    case HTTP_HEAD: return SIM_M_HEAD;
    case HTTP_GET: return SIM_M_GET;
    case HTTP_POST: return SIM_M_POST;
    case HTTP_DELETE: return SIM_M_DELETE;
    default: return 0;
    }
}

/* The route matching path (methods aside), or NULL. */
static const sim_route *sim_route_find(const char *path, size_t len)
{
    for (size_t i = 0; i < sizeof sim_routes / sizeof sim_routes[0]; i++) {
        const sim_route *rt = &sim_routes[i];
        size_t n = strlen(rt->path);
        if (!rt->prefix && n == len && memcmp(rt->path, path, len) == 0) return rt;
        if (rt->prefix && len > n && memcmp(rt->path, path, n) == 0 && !memchr(path + n, '/', len - n)) return rt;
    }
    return NULL;
}

/* Second stage (after delay-head-ms): close-before-head, routing, bytes=N, handlers. */
static void sim_api_route(sim_req *r)
{
    const sim_route *rt = sim_route_find(r->url, sim_req_path_len(r));
    if (r->fault.close_before_head) { sim_resp_abort(r); return; }
    if (!rt) { sim_resp_full(r, 404, NULL, "text/plain", "404 page not found", 18); return; }
    if (!(rt->methods & sim_method_bit(r->method))) {
        /* gin lists the other method trees in creation order: HEAD, GET, POST, DELETE */
        static const char *const names[] = { "HEAD", "GET", "POST", "DELETE" };
        char allow[96] = "Allow: ";
        int first = 1;
        for (int i = 0; i < 4; i++) {
            if (!(rt->methods & (1 << i))) continue;
            strcat(allow, first ? "" : ", ");
            strcat(allow, names[i]);
            first = 0;
        }
        strcat(allow, "\r\n");
        sim_resp_full(r, 405, allow, "text/plain", "405 method not allowed", 22);
        return;
    }
    if (r->fault.bytes >= 0) { sim_gen_bytes_start(r); return; }
    if (rt->gen) sim_gen_handle(r, rt->gen);
    else rt->h(r);
}

static void sim_api_delay_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    sim_api_route(arg);
}

/* gin-contrib/cors as Ollama configures it.  Returns 0 to go on, -1 when it answered. */
static int sim_api_cors(sim_req *r)
{
    const char *origin = sim_req_header(r, "Origin");
    const char *host = r->host ? r->host : "";
    if (!origin || !*origin) return 0;
    if ((!strncmp(origin, "http://", 7) && !strcmp(origin + 7, host)) ||
        (!strncmp(origin, "https://", 8) && !strcmp(origin + 8, host)))
        return 0;   /* same origin: not a CORS request */
    if (!sim_origin_allowed(origin)) { sim_resp_full(r, 403, NULL, NULL, "", 0); return -1; }
    if (r->method != HTTP_OPTIONS) { r->cors_origin = origin; return 0; }
    /* preflight (approximate header set, see README), headers in Go's sorted order */
    char extra[1536];
    snprintf(extra, sizeof extra,
             "Access-Control-Allow-Headers: Authorization,Content-Type,User-Agent,Accept,X-Requested-With,"
             "Openai-Beta,X-Stainless-Arch,X-Stainless-Async,X-Stainless-Custom-Poll-Interval,"
             "X-Stainless-Helper-Method,X-Stainless-Lang,X-Stainless-Os,X-Stainless-Package-Version,"
             "X-Stainless-Poll-Helper,X-Stainless-Retry-Count,X-Stainless-Runtime,X-Stainless-Runtime-Version,"
             "X-Stainless-Timeout\r\nAccess-Control-Allow-Methods: GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS\r\n"
             "Access-Control-Allow-Origin: %.600s\r\nAccess-Control-Max-Age: 43200\r\nVary: Origin\r\n", origin);
    sim_resp_full(r, 204, extra, NULL, "", 0);
    return -1;
}

/* See sim.h. */
void sim_api_dispatch(sim_req *r)
{
    sim_fault_parse(sim_req_header(r, "X-Sim-Fault"), &r->fault);
    if (sim_api_cors(r) != 0) return;
    if (sim_g.loopback && !sim_host_allowed(r->host ? r->host : "")) {
        sim_resp_full(r, 403, NULL, NULL, "", 0);
        return;
    }
    if (sim_g.loopback && r->method == HTTP_OPTIONS) { sim_resp_full(r, 204, NULL, NULL, "", 0); return; }
    if (r->fault.delay_head_ms > 0) {
        struct timeval tv = { r->fault.delay_head_ms / 1000, (r->fault.delay_head_ms % 1000) * 1000 };
        evtimer_assign(&r->timer, sim_g.base, sim_api_delay_done, r);
        r->timer_init = 1;
        evtimer_add(&r->timer, &tv);
        return;
    }
    sim_api_route(r);
}
