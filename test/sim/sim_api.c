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
#define SIM_CT_JSON_GIN "application/json; charset=utf-8"   /* gin's c.JSON */
#define SIM_CT_JSON "application/json"    /* the OpenAI middleware's writers */
#define SIM_PS_KEEPALIVE_NS (300ull * 1000000000ull) /* expires_at = last use + 5 min */

enum { SIM_M_HEAD = 1, SIM_M_GET = 2, SIM_M_POST = 4, SIM_M_DELETE = 8 };

typedef void (*sim_handler)(sim_req *r);

typedef struct sim_route {
    const char *path;                  /* exact path, or prefix when prefix is set */
    int prefix;                        /* 1 = path + one more segment */
    int methods;                       /* SIM_M_* allowed */
    sim_handler h;                     /* handler */
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

/* String field: *out = value (NULL when absent or null).  -1 with Go's type error in msg. */
static int sim_field_str(json_t *o, const char *key, const char *gostruct, const char **out, char *msg, size_t cap)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        snprintf(msg, cap, "json: cannot unmarshal %s into Go struct field %s.%s of type string", sim_json_kind(v), gostruct, key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Bool field (default def).  -1 with Go's type error in msg. */
static int sim_field_bool(json_t *o, const char *key, const char *gostruct, int def, int *out, char *msg, size_t cap)
{
    json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        snprintf(msg, cap, "json: cannot unmarshal %s into Go struct field %s.%s of type bool", sim_json_kind(v), gostruct, key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* Add a text's bytes to the token count and hash. */
static void sim_text_add(sim_req *r, const char *s, size_t len)
{
    r->prompt_tokens += sim_count_tokens(len);
    r->hash = sim_hash(r->hash, s, len);
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

/* Common generation settings from the model, the request's cap and the faults. */
static void sim_gen_params(sim_req *r, sim_model *m, const char *name, long cap)
{
    int n = r->fault.chunks >= 0 ? r->fault.chunks : m->tokens;
    if (cap >= 0 && cap < n) { n = (int)cap; r->length_capped = 1; }
    r->model = m;
    r->model_name = strdup(name);
    r->n_tokens = n;
    r->ttft_ms = r->fault.ttft_ms >= 0 ? r->fault.ttft_ms : m->ttft_ms;
    r->interval_ms = r->fault.interval_ms >= 0 ? (double)r->fault.interval_ms : 1000.0 / m->tps;
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

/* Send b as a complete response and free it. */
static void sim_send_buffer(sim_req *r, int status, const char *ctype, struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    sim_resp_full(r, status, NULL, ctype, (const char *)evbuffer_pullup(b, -1), n);
    evbuffer_free(b);
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
    sim_send_buffer(r, 200, SIM_CT_JSON_GIN, b);
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
    sim_send_buffer(r, 200, SIM_CT_JSON_GIN, b);
}

static void sim_h_show(sim_req *r)
{
    char msg[SIM_MSG_MAX];
    const char *model = NULL, *name = NULL;
    json_t *o = sim_body_json(r, "api.ShowRequest", NULL, msg, sizeof msg);
    if (!o || sim_field_str(o, "model", "ShowRequest", &model, msg, sizeof msg) ||
        sim_field_str(o, "name", "ShowRequest", &name, msg, sizeof msg)) {
        json_decref(o);
        sim_api_error(r, 400, msg);
        return;
    }
    if (!model || !*model) model = name;
    if (!model || !*model) { json_decref(o); sim_api_error(r, 400, "model is required"); return; }
    const sim_model *m = sim_model_find(model);
    if (!m) {
        snprintf(msg, sizeof msg, "model '%s' not found", model);
        json_decref(o);
        sim_api_error(r, 404, msg);
        return;
    }
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
    sim_send_buffer(r, 200, SIM_CT_JSON_GIN, b);
}

static void sim_h_v1_models(sim_req *r)
{
    struct evbuffer *b = evbuffer_new();
    SIM_ADD_LIT(b, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < sim_g.cfg.nmodels; i++)
        evbuffer_add_printf(b, "%s{\"id\":\"%s\",\"object\":\"model\",\"created\":%d,\"owned_by\":\"library\"}",
                            i ? "," : "", sim_g.cfg.models[i].name, SIM_FIXED_EPOCH - 86400);
    SIM_ADD_LIT(b, "]}\n");
    sim_send_buffer(r, 200, SIM_CT_JSON, b);
}

static void sim_h_v1_model(sim_req *r)
{
    char name[SIM_NAME_MAX * 2], msg[SIM_MSG_MAX], body[SIM_MSG_MAX];
    const char *q = memchr(r->url, '?', r->url_len);
    size_t plen = q ? (size_t)(q - r->url) : r->url_len;
    size_t off = strlen("/v1/models/");
    snprintf(name, sizeof name, "%.*s", (int)(plen - off), r->url + off);
    r->v1 = 1;
    const sim_model *m = sim_model_find(name);
    if (!m) { snprintf(msg, sizeof msg, "model '%s' not found", name); sim_api_error(r, 404, msg); return; }
    size_t n = (size_t)snprintf(body, sizeof body, "{\"id\":");
    n += sim_json_str_buf(body + n, sizeof body - n - 96, name, strlen(name));
    n += (size_t)snprintf(body + n, sizeof body - n, ",\"object\":\"model\",\"created\":%d,\"owned_by\":\"library\"}\n", SIM_FIXED_EPOCH - 86400);
    sim_resp_full(r, 200, NULL, SIM_CT_JSON, body, n);
}

/* ------------------------------------------------------------------ generating endpoints */

/* Shared model checks; answers and returns NULL on error.  empty_status/empty_msg: what an
 * empty model name gets; notfound_fmt: printf format with one %s for an unknown one. */
static sim_model *sim_resolve_model(sim_req *r, const char *model, int empty_status, const char *empty_msg,
                                    const char *notfound_fmt)
{
    char msg[SIM_MSG_MAX];
    if (!model || !*model) {
        if (empty_msg) { sim_api_error(r, empty_status, empty_msg); return NULL; }
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

static void sim_h_generate(sim_req *r)
{
    char msg[SIM_MSG_MAX];
    const char *model, *prompt, *system, *suffix;
    int think = 0;
    r->v1 = 0;
    json_t *o = sim_body_json(r, "api.GenerateRequest", NULL, msg, sizeof msg);
    if (!o || sim_field_str(o, "model", "GenerateRequest", &model, msg, sizeof msg) ||
        sim_field_str(o, "prompt", "GenerateRequest", &prompt, msg, sizeof msg) ||
        sim_field_str(o, "system", "GenerateRequest", &system, msg, sizeof msg) ||
        sim_field_str(o, "suffix", "GenerateRequest", &suffix, msg, sizeof msg) ||
        sim_field_bool(o, "stream", "GenerateRequest", 1, &r->stream, msg, sizeof msg)) {
        json_decref(o);
        sim_api_error(r, 400, msg);
        return;
    }
    sim_model *m = sim_resolve_model(r, model, 404, NULL, "model '%s' not found");
    if (!m) goto out;
    if (m->embedding) { sim_unsupported(r, model, "generate"); goto out; }
    json_t *th = json_object_get(o, "think");
    think = json_is_true(th) || (json_is_string(th) && strcmp(json_string_value(th), "false") != 0 && *json_string_value(th));
    if (think && !m->thinking) { sim_unsupported(r, model, "thinking"); goto out; }
    r->kind = SIM_KIND_GENERATE;
    r->think = think;
    r->hash = SIM_FNV_INIT;
    if (prompt) sim_text_add(r, prompt, strlen(prompt));
    if (system) sim_text_add(r, system, strlen(system));
    if (suffix) sim_text_add(r, suffix, strlen(suffix));
    json_t *ctx = json_object_get(o, "context");
    if (json_is_true(json_object_get(o, "raw")) && ((system && *system) || json_array_size(ctx) ||
                                                    json_string_length(json_object_get(o, "template")))) {
        sim_api_error(r, 400, "raw mode does not support template, system, or context");
        goto out;
    }
    if (json_is_array(ctx)) r->prompt_tokens += json_array_size(ctx);
    r->load_only = !prompt || !*prompt ? 1 + sim_keep_alive_zero(o) : 0;
    sim_gen_params(r, m, model, sim_num_predict(o));
    json_decref(o);
    sim_gen_submit(r);
    return;
out:
    json_decref(o);
}

static void sim_h_chat(sim_req *r)
{
    char msg[SIM_MSG_MAX];
    const char *model;
    size_t i;
    json_t *mv;
    json_t *o = sim_body_json(r, "api.ChatRequest", NULL, msg, sizeof msg);
    if (!o || sim_field_str(o, "model", "ChatRequest", &model, msg, sizeof msg) ||
        sim_field_bool(o, "stream", "ChatRequest", 1, &r->stream, msg, sizeof msg)) {
        json_decref(o);
        sim_api_error(r, 400, msg);
        return;
    }
    json_t *msgs = json_object_get(o, "messages");
    if (msgs && !json_is_array(msgs) && !json_is_null(msgs)) {
        snprintf(msg, sizeof msg, "json: cannot unmarshal %s into Go struct field ChatRequest.messages of type []api.Message", sim_json_kind(msgs));
        sim_api_error(r, 400, msg);
        goto out;
    }
    sim_model *m = sim_resolve_model(r, model, 400, "model is required", "model '%s' not found");
    if (!m) goto out;
    if (m->embedding) { sim_unsupported(r, model, "chat"); goto out; }
    json_t *th = json_object_get(o, "think");
    r->think = json_is_true(th) || (json_is_string(th) && *json_string_value(th) && strcmp(json_string_value(th), "false") != 0);
    if (r->think && !m->thinking) { sim_unsupported(r, model, "thinking"); goto out; }
    r->kind = SIM_KIND_CHAT;
    r->hash = SIM_FNV_INIT;
    json_array_foreach(msgs, i, mv) sim_content_add(r, json_object_get(mv, "content"));
    r->load_only = json_array_size(msgs) == 0 ? 1 + sim_keep_alive_zero(o) : 0;
    sim_gen_params(r, m, model, sim_num_predict(o));
    json_decref(o);
    sim_gen_submit(r);
    return;
out:
    json_decref(o);
}

/* max_tokens of an OpenAI request (-1 = none). */
static long sim_max_tokens(json_t *o)
{
    json_t *n = json_object_get(o, "max_tokens");
    if (!json_is_integer(n)) n = json_object_get(o, "max_completion_tokens");
    return json_is_integer(n) && json_integer_value(n) >= 0 ? (long)json_integer_value(n) : -1;
}

static void sim_h_v1_chat(sim_req *r)
{
    char msg[SIM_MSG_MAX];
    const char *model;
    size_t i;
    json_t *mv;
    r->v1 = 1;
    json_t *o = sim_body_json(r, "openai.ChatCompletionRequest", "EOF", msg, sizeof msg);
    if (!o || sim_field_str(o, "model", "ChatCompletionRequest", &model, msg, sizeof msg) ||
        sim_field_bool(o, "stream", "ChatCompletionRequest", 0, &r->stream, msg, sizeof msg)) {
        json_decref(o);
        sim_api_v1_error(r, 400, msg, 0);
        return;
    }
    json_t *msgs = json_object_get(o, "messages");
    if (json_array_size(msgs) == 0) { sim_api_v1_error(r, 400, "[] is too short - 'messages'", 0); goto out; }
    sim_model *m = sim_resolve_model(r, model, 400, "model is required", "model '%s' not found");
    if (!m) goto out;
    if (m->embedding) { sim_unsupported(r, model, "chat"); goto out; }
    r->kind = SIM_KIND_V1_CHAT;
    r->include_usage = json_is_true(json_object_get(json_object_get(o, "stream_options"), "include_usage"));
    r->hash = SIM_FNV_INIT;
    json_array_foreach(msgs, i, mv) sim_content_add(r, json_object_get(mv, "content"));
    sim_gen_params(r, m, model, sim_max_tokens(o));
    json_decref(o);
    sim_gen_submit(r);
    return;
out:
    json_decref(o);
}

static void sim_h_v1_completions(sim_req *r)
{
    char msg[SIM_MSG_MAX];
    const char *model, *prompt, *suffix;
    r->v1 = 1;
    json_t *o = sim_body_json(r, "openai.CompletionRequest", "EOF", msg, sizeof msg);
    if (!o || sim_field_str(o, "model", "CompletionRequest", &model, msg, sizeof msg) ||
        sim_field_str(o, "prompt", "CompletionRequest", &prompt, msg, sizeof msg) ||
        sim_field_str(o, "suffix", "CompletionRequest", &suffix, msg, sizeof msg) ||
        sim_field_bool(o, "stream", "CompletionRequest", 0, &r->stream, msg, sizeof msg)) {
        json_decref(o);
        sim_api_v1_error(r, 400, msg, 0);
        return;
    }
    sim_model *m = sim_resolve_model(r, model, 404, NULL, "model '%s' not found");
    if (!m) goto out;
    if (m->embedding) { sim_unsupported(r, model, "generate"); goto out; }
    r->kind = SIM_KIND_V1_COMPLETIONS;
    r->include_usage = json_is_true(json_object_get(json_object_get(o, "stream_options"), "include_usage"));
    r->hash = SIM_FNV_INIT;
    if (prompt) sim_text_add(r, prompt, strlen(prompt));
    if (suffix) sim_text_add(r, suffix, strlen(suffix));
    r->load_only = !prompt || !*prompt;
    sim_gen_params(r, m, model, sim_max_tokens(o));
    json_decref(o);
    sim_gen_submit(r);
    return;
out:
    json_decref(o);
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

static void sim_h_embed(sim_req *r)
{
    char msg[SIM_MSG_MAX];
    const char *model;
    r->v1 = r->kind == SIM_KIND_V1_EMBEDDINGS;
    json_t *o = sim_body_json(r, r->v1 ? "openai.EmbedRequest" : "api.EmbedRequest", r->v1 ? "EOF" : NULL, msg, sizeof msg);
    if (!o || sim_field_str(o, "model", "EmbedRequest", &model, msg, sizeof msg)) {
        json_decref(o);
        if (r->v1) sim_api_v1_error(r, 400, msg, 0);
        else sim_api_error(r, 400, msg);
        return;
    }
    json_t *in = json_object_get(o, "input");
    if (r->v1) {
        const char *fmt = json_string_value(json_object_get(o, "encoding_format"));
        if (fmt && *fmt && strcasecmp(fmt, "float") && strcasecmp(fmt, "base64")) {
            snprintf(msg, sizeof msg, "Invalid value for 'encoding_format' = %s. Supported values: ['float', 'base64'].", fmt);
            sim_api_v1_error(r, 400, msg, 0);
            goto out;
        }
        if (!in || json_is_null(in) || (json_is_array(in) && json_array_size(in) == 0)) {
            sim_api_v1_error(r, 400, "invalid input", 0);
            goto out;
        }
    }
    if (!model || !*model) { sim_api_error(r, 404, "model '' not found"); goto out; }
    int n = sim_embed_inputs(r, in, r->v1);
    if (n < 0) { sim_api_error(r, 400, "invalid input type"); goto out; }
    sim_model *m = sim_resolve_model(r, model, 404, NULL, "model \"%s\" not found, try pulling it first");
    if (!m) goto out;
    r->n_inputs = n;
    json_t *dims = json_object_get(o, "dimensions");
    if (json_is_integer(dims)) r->dims = (int)json_integer_value(dims);
    sim_gen_params(r, m, model, -1);
    json_decref(o);
    sim_gen_submit(r);
    return;
out:
    json_decref(o);
}

static void sim_h_api_embed(sim_req *r) { r->kind = SIM_KIND_EMBED; sim_h_embed(r); }
static void sim_h_v1_embeddings(sim_req *r) { r->kind = SIM_KIND_V1_EMBEDDINGS; sim_h_embed(r); }

static void sim_h_embeddings(sim_req *r)
{
    char msg[SIM_MSG_MAX];
    const char *model, *prompt;
    json_t *o = sim_body_json(r, "api.EmbeddingRequest", NULL, msg, sizeof msg);
    if (!o || sim_field_str(o, "model", "EmbeddingRequest", &model, msg, sizeof msg) ||
        sim_field_str(o, "prompt", "EmbeddingRequest", &prompt, msg, sizeof msg)) {
        json_decref(o);
        sim_api_error(r, 400, msg);
        return;
    }
    sim_model *m = sim_resolve_model(r, model, 400, "model is required", "model \"%s\" not found, try pulling it first");
    if (!m) goto out;
    r->kind = SIM_KIND_EMBEDDINGS;
    r->hash = SIM_FNV_INIT;
    if (prompt && *prompt) { sim_text_add(r, prompt, strlen(prompt)); r->n_inputs = 1; }
    sim_gen_params(r, m, model, -1);
    json_decref(o);
    sim_gen_submit(r);
    return;
out:
    json_decref(o);
}

static void sim_h_pull(sim_req *r)
{
    char msg[SIM_MSG_MAX];
    const char *model, *name;
    json_t *o = sim_body_json(r, "api.PullRequest", NULL, msg, sizeof msg);
    if (!o || sim_field_str(o, "model", "PullRequest", &model, msg, sizeof msg) ||
        sim_field_str(o, "name", "PullRequest", &name, msg, sizeof msg) ||
        sim_field_bool(o, "stream", "PullRequest", 1, &r->stream, msg, sizeof msg)) {
        json_decref(o);
        sim_api_error(r, 400, msg);
        return;
    }
    if (!model || !*model) model = name;
    if (!model || !*model || strlen(model) >= SIM_NAME_MAX - 8) { json_decref(o); sim_api_error(r, 400, "invalid model name"); return; }
    sim_model *m = sim_model_find(model);
    if (!m) m = sim_model_add(model);
    if (!m) { json_decref(o); sim_api_error(r, 500, "ollama-sim: model table full"); return; }
    r->kind = SIM_KIND_PULL;
    r->model = m;
    r->model_name = strdup(model);
    r->n_tokens = r->fault.chunks >= 0 ? r->fault.chunks : SIM_PULL_STEPS;
    r->interval_ms = r->fault.interval_ms >= 0 ? r->fault.interval_ms : 1000.0 / m->tps;
    r->ttft_ms = r->fault.ttft_ms >= 0 ? r->fault.ttft_ms : 0;
    json_decref(o);
    sim_gen_submit(r);
}

/* ------------------------------------------------------------------ routing */

static const sim_route sim_routes[] = {
    { "/", 0, SIM_M_HEAD | SIM_M_GET, sim_h_root },
    { "/api/version", 0, SIM_M_HEAD | SIM_M_GET, sim_h_version },
    { "/api/tags", 0, SIM_M_HEAD | SIM_M_GET, sim_h_tags },
    { "/api/ps", 0, SIM_M_GET, sim_h_ps },
    { "/api/show", 0, SIM_M_POST, sim_h_show },
    { "/api/pull", 0, SIM_M_POST, sim_h_pull },
    { "/api/generate", 0, SIM_M_POST, sim_h_generate },
    { "/api/chat", 0, SIM_M_POST, sim_h_chat },
    { "/api/embed", 0, SIM_M_POST, sim_h_api_embed },
    { "/api/embeddings", 0, SIM_M_POST, sim_h_embeddings },
    { "/v1/chat/completions", 0, SIM_M_POST, sim_h_v1_chat },
    { "/v1/completions", 0, SIM_M_POST, sim_h_v1_completions },
    { "/v1/embeddings", 0, SIM_M_POST, sim_h_v1_embeddings },
    { "/v1/models", 0, SIM_M_GET, sim_h_v1_models },
    { "/v1/models/", 1, SIM_M_GET, sim_h_v1_model },
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
    const char *q = memchr(r->url, '?', r->url_len);
    size_t plen = q ? (size_t)(q - r->url) : r->url_len;
    const sim_route *rt = sim_route_find(r->url, plen);
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
    rt->h(r);
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
