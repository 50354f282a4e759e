/* sim_gen.c — generations: the --parallel slots and the FIFO queue (503 past --max-queue),
 * one timer tick per streamed token, and the exact bytes of Ollama's NDJSON chunks, its
 * final metrics, the OpenAI-compatible SSE / JSON answers, embeddings, /api/pull progress
 * and the bytes=N filler stream. */
#include "test/sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_CHUNK_MAX 4096               /* one formatted token chunk */
#define SIM_BYTES_BLOCK 65536            /* filler bytes per written chunk */
#define SIM_BUSY_MSG "server busy, please try again.  maximum pending requests exceeded"
#define SIM_CONTEXT_BLOCK 4096         /* "context" digits gathered per evbuffer_add */
#define SIM_CONTEXT_NUM_MAX 12          /* ",4294967295" */
#define SIM_MODEL_JSON_MAX (SIM_NAME_MAX * 6 + 3) /* a model name as a JSON string (\u escapes) */

static void sim_gen_tick(evutil_socket_t fd, short what, void *arg);

/* ------------------------------------------------------------------ time */

/* Wall time (ns) of tick k of r: derived from config under --fixed-clock, else now. */
static uint64_t sim_tick_wall(const sim_req *r, int k)
{
    if (!sim_g.cfg.fixed_clock) return sim_wall_ns();
    return (uint64_t)SIM_FIXED_EPOCH * 1000000000ull + (uint64_t)r->ttft_ms * 1000000ull +
           (uint64_t)((double)k * r->interval_ms * 1e6);
}

/* Arm r's timer for tick k (absolute schedule from the slot start: no drift). */
static void sim_schedule(sim_req *r, int k)
{
    uint64_t target = r->t_start_ns + (uint64_t)r->ttft_ms * 1000000ull + (uint64_t)((double)k * r->interval_ms * 1e6);
    uint64_t now = sim_mono_ns();
    uint64_t d = target > now ? target - now : 0;
    struct timeval tv = { (time_t)(d / 1000000000ull), (suseconds_t)((d % 1000000000ull) / 1000) };
    if (!r->timer_init) {
        evtimer_assign(&r->timer, sim_g.base, sim_gen_tick, r);
        r->timer_init = 1;
    } else {
        evtimer_del(&r->timer);
        evtimer_assign(&r->timer, sim_g.base, sim_gen_tick, r);
    }
    evtimer_add(&r->timer, &tv);
}

/* Append Ollama's metrics (omitempty: zero values are left out). */
static void sim_metrics(struct evbuffer *b, const sim_req *r, int with_eval)
{
    uint64_t total, load = SIM_LOAD_NS, pe, ev;
    uint64_t ttft_ns = (uint64_t)r->ttft_ms * 1000000ull;
    if (sim_g.cfg.fixed_clock) {
        pe = ttft_ns ? ttft_ns : 1;
        ev = (uint64_t)((double)r->n_tokens * r->interval_ms * 1e6);
        total = load + pe + ev;
    } else {
        uint64_t now = sim_mono_ns(), elapsed = now - r->t_start_ns;
        pe = ttft_ns < elapsed ? ttft_ns : elapsed;
        if (!pe) pe = 1;
        ev = elapsed > pe ? elapsed - pe : 0;
        total = now - r->t_recv_ns + load;   /* includes queueing and delay-head-ms */
    }
    evbuffer_add_printf(b, ",\"total_duration\":%llu,\"load_duration\":%llu", (unsigned long long)total, (unsigned long long)load);
    if (r->prompt_tokens) evbuffer_add_printf(b, ",\"prompt_eval_count\":%llu", (unsigned long long)r->prompt_tokens);
    if (!with_eval) return;
    evbuffer_add_printf(b, ",\"prompt_eval_duration\":%llu", (unsigned long long)pe);
    if (r->n_tokens) evbuffer_add_printf(b, ",\"eval_count\":%d", r->n_tokens);
    if (ev) evbuffer_add_printf(b, ",\"eval_duration\":%llu", (unsigned long long)ev);
}

/* ------------------------------------------------------------------ formatting */

/* Number of leading "thinking" tokens. */
static int sim_nthink(const sim_req *r)
{
    if (!r->think || r->n_tokens == 0) return 0;
    return r->n_tokens / 4 > 0 ? r->n_tokens / 4 : 1;
}

/* Text of token k of r: no leading space on the first answer / thinking token. */
static const char *sim_tok(const sim_req *r, int k)
{
    return sim_token(r->hash, k, k == 0 || k == sim_nthink(r));
}

static const char *sim_done_reason(const sim_req *r)
{
    return r->load_only == 2 ? "unload" : r->load_only ? "load" : r->length_capped ? "length" : "stop";
}

/* "created" of /v1 answers at tick k (seconds). */
static long long sim_created_s(const sim_req *r, int k)
{
    return (long long)(sim_tick_wall(r, k) / 1000000000ull);
}

/* r's model name as a JSON string literal into out. */
static void sim_model_json(const sim_req *r, char out[SIM_MODEL_JSON_MAX])
{
    sim_json_str_buf(out, SIM_MODEL_JSON_MAX, r->model_name, strlen(r->model_name));
}

/* The opening of an /api/generate or /api/chat line at tick k:
 * {"model":...,"created_at":"...", */
static void sim_fmt_ollama_open(const sim_req *r, struct evbuffer *b, int k)
{
    char when[48];
    sim_time_rfc3339(when, sizeof when, sim_tick_wall(r, k));
    SIM_ADD_LIT(b, "{\"model\":");
    sim_json_str(b, r->model_name, strlen(r->model_name));
    evbuffer_add_printf(b, ",\"created_at\":\"%s\",", when);
}

/* Append the concatenated text of tokens [from, to) as a JSON string. */
static void sim_text_json(struct evbuffer *b, const sim_req *r, int from, int to)
{
    struct evbuffer *t = evbuffer_new();
    for (int k = from; k < to; k++) {
        const char *tok = sim_tok(r, k);
        evbuffer_add(t, tok, strlen(tok));
    }
    size_t n = evbuffer_get_length(t);
    sim_json_str(b, (const char *)evbuffer_pullup(t, -1), n);
    evbuffer_free(t);
}

/* One streamed token chunk (k < n_tokens) into out; returns its length. */
static size_t sim_fmt_token(const sim_req *r, int k, char *out, size_t cap)
{
    char model[SIM_MODEL_JSON_MAX], tok[128], when[48];
    const char *t = sim_tok(r, k);
    int thinking = k < sim_nthink(r);
    sim_model_json(r, model);
    sim_json_str_buf(tok, sizeof tok, t, strlen(t));
    int n = 0;
    switch (r->kind) {
    case SIM_KIND_GENERATE:
        sim_time_rfc3339(when, sizeof when, sim_tick_wall(r, k));
        n = snprintf(out, cap, "{\"model\":%s,\"created_at\":\"%s\",\"response\":%s%s%s,\"done\":false}\n", model, when,
                     thinking ? "\"\",\"thinking\":" : "", tok, "");
        break;
    case SIM_KIND_CHAT:
        sim_time_rfc3339(when, sizeof when, sim_tick_wall(r, k));
        n = snprintf(out, cap, "{\"model\":%s,\"created_at\":\"%s\",\"message\":{\"role\":\"assistant\",\"content\":%s%s},\"done\":false}\n",
                     model, when, thinking ? "\"\",\"thinking\":" : "", tok);
        break;
    case SIM_KIND_V1_CHAT:
        n = snprintf(out, cap, "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":%s,"
                     "\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"delta\":{%s\"content\":%s%s},"
                     "\"finish_reason\":null}]}\n\n", r->id, (long long)r->created_s, model,
                     k == 0 ? "\"role\":\"assistant\"," : "", thinking ? "\"\",\"reasoning\":" : "", tok);
        break;
    case SIM_KIND_V1_COMPLETIONS:
        n = snprintf(out, cap, "data: {\"id\":\"%s\",\"object\":\"text_completion\",\"created\":%lld,\"choices\":[{\"text\":%s,"
                     "\"index\":0,\"finish_reason\":null}],\"model\":%s,\"system_fingerprint\":\"fp_ollama\"%s}\n\n",
                     r->id, sim_created_s(r, k), tok, model,
                     r->include_usage ? ",\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}" : "");
        break;
    default:
        break;
    }
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* After done_reason: /api/generate's "context" (deterministic token ids for prompt +
 * answer) and the metrics; nothing for load-only answers. */
static void sim_fmt_tail(const sim_req *r, struct evbuffer *b)
{
    if (r->load_only) return;
    if (r->kind == SIM_KIND_GENERATE) {
        uint64_t cnt = r->prompt_tokens + (uint64_t)r->n_tokens;
        char blk[SIM_CONTEXT_BLOCK + SIM_CONTEXT_NUM_MAX];
        size_t n = 0;
        SIM_ADD_LIT(b, ",\"context\":[");
        for (uint64_t i = 0; i < cnt; i++) {
            /* why by hand: one printf per number was a third of the sim's CPU per request,
             * which made the sim, not the proxy under test, the bottleneck of make bench */
            uint32_t v = 100 + sim_hash(r->hash, &i, sizeof i) % 150000;
            char tmp[SIM_CONTEXT_NUM_MAX];
            size_t k = sizeof tmp;
            do { tmp[--k] = (char)('0' + v % 10); v /= 10; } while (v);
            if (i) blk[n++] = ',';
            memcpy(blk + n, tmp + k, sizeof tmp - k);
            n += sizeof tmp - k;
            if (n >= SIM_CONTEXT_BLOCK) { evbuffer_add(b, blk, n); n = 0; }
        }
        evbuffer_add(b, blk, n);
        SIM_ADD_LIT(b, "]");
    }
    sim_metrics(b, r, 1);
}

/* The final streamed chunk(s) of r into b. */
static void sim_fmt_final_stream(const sim_req *r, struct evbuffer *b)
{
    const char *reason = sim_done_reason(r);
    int n = r->n_tokens;
    unsigned long long p = r->prompt_tokens, total = p + (unsigned long long)n;
    switch (r->kind) {
    case SIM_KIND_GENERATE:
    case SIM_KIND_CHAT:
        sim_fmt_ollama_open(r, b, n);
        evbuffer_add_printf(b, "%s,\"done\":true,\"done_reason\":\"%s\"",
                            r->kind == SIM_KIND_CHAT ? "\"message\":{\"role\":\"assistant\",\"content\":\"\"}" : "\"response\":\"\"", reason);
        sim_fmt_tail(r, b);
        SIM_ADD_LIT(b, "}\n");
        break;
    case SIM_KIND_V1_CHAT: {
        char head[SIM_MODEL_JSON_MAX + 200];
        char model[SIM_MODEL_JSON_MAX];
        sim_model_json(r, model);
        snprintf(head, sizeof head, "{\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":%s,"
                 "\"system_fingerprint\":\"fp_ollama\",\"choices\":", r->id, (long long)r->created_s, model);
        if (n == 0)   /* the first response is the final one: it still opens with the role */
            evbuffer_add_printf(b, "data: %s[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n", head);
        evbuffer_add_printf(b, "data: %s[{\"index\":0,\"delta\":{},\"finish_reason\":\"%s\"}]}\n\n", head, reason);
        if (r->include_usage)
            evbuffer_add_printf(b, "data: %s[],\"usage\":{\"prompt_tokens\":%llu,\"completion_tokens\":%d,\"total_tokens\":%llu}}\n\n",
                                head, p, n, total);
        SIM_ADD_LIT(b, "data: [DONE]\n\n");
        break;
    }
    case SIM_KIND_V1_COMPLETIONS: {
        char model[SIM_MODEL_JSON_MAX];
        long long created = sim_created_s(r, n);
        sim_model_json(r, model);
        evbuffer_add_printf(b, "data: {\"id\":\"%s\",\"object\":\"text_completion\",\"created\":%lld,\"choices\":[{\"text\":\"\","
                            "\"index\":0,\"finish_reason\":\"%s\"}],\"model\":%s,\"system_fingerprint\":\"fp_ollama\"%s}\n\n",
                            r->id, created, reason, model,
                            r->include_usage ? ",\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}" : "");
        if (r->include_usage)
            evbuffer_add_printf(b, "data: {\"id\":\"%s\",\"object\":\"text_completion\",\"created\":%lld,\"choices\":[],\"model\":%s,"
                                "\"system_fingerprint\":\"fp_ollama\",\"usage\":{\"prompt_tokens\":%llu,\"completion_tokens\":%d,\"total_tokens\":%llu}}\n\n",
                                r->id, created, model, p, n, total);
        SIM_ADD_LIT(b, "data: [DONE]\n\n");
        break;
    }
    default:
        break;
    }
}

/* The opening of a whole /v1 answer of type object (tick k gives "created"), up to and
 * including the "choices" array's '[': {"id":...,"object":...,"created":...,"model":...,
 * "system_fingerprint":"fp_ollama","choices":[ */
static void sim_fmt_v1_open(const sim_req *r, struct evbuffer *b, const char *object, int k)
{
    evbuffer_add_printf(b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", r->id, object, sim_created_s(r, k));
    sim_json_str(b, r->model_name, strlen(r->model_name));
    SIM_ADD_LIT(b, ",\"system_fingerprint\":\"fp_ollama\",\"choices\":[");
}

/* The whole non-streamed answer of a text generation into b. */
static void sim_fmt_whole(const sim_req *r, struct evbuffer *b)
{
    const char *reason = sim_done_reason(r);
    int n = r->n_tokens, nt = sim_nthink(r);
    unsigned long long p = r->prompt_tokens, total = p + (unsigned long long)n;
    switch (r->kind) {
    case SIM_KIND_GENERATE:
    case SIM_KIND_CHAT:
        /* the same fields as the final chunk, with the whole text, without the newline */
        sim_fmt_ollama_open(r, b, n);
        if (r->kind == SIM_KIND_CHAT) {
            SIM_ADD_LIT(b, "\"message\":{\"role\":\"assistant\",\"content\":");
            sim_text_json(b, r, nt, n);
            if (nt) { SIM_ADD_LIT(b, ",\"thinking\":"); sim_text_json(b, r, 0, nt); }
            SIM_ADD_LIT(b, "}");
        } else {
            SIM_ADD_LIT(b, "\"response\":");
            sim_text_json(b, r, nt, n);
            if (nt) { SIM_ADD_LIT(b, ",\"thinking\":"); sim_text_json(b, r, 0, nt); }
        }
        evbuffer_add_printf(b, ",\"done\":true,\"done_reason\":\"%s\"", reason);
        sim_fmt_tail(r, b);
        SIM_ADD_LIT(b, "}");
        break;
    case SIM_KIND_V1_CHAT:
        sim_fmt_v1_open(r, b, "chat.completion", n);
        SIM_ADD_LIT(b, "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        sim_text_json(b, r, nt, n);
        if (nt) { SIM_ADD_LIT(b, ",\"reasoning\":"); sim_text_json(b, r, 0, nt); }
        evbuffer_add_printf(b, "},\"finish_reason\":\"%s\"}],\"usage\":{\"prompt_tokens\":%llu,\"completion_tokens\":%d,\"total_tokens\":%llu}}\n",
                            reason, p, n, total);
        break;
    case SIM_KIND_V1_COMPLETIONS:
        sim_fmt_v1_open(r, b, "text_completion", n);
        SIM_ADD_LIT(b, "{\"text\":");
        sim_text_json(b, r, nt, n);
        evbuffer_add_printf(b, ",\"index\":0,\"finish_reason\":\"%s\"}],\"usage\":{\"prompt_tokens\":%llu,\"completion_tokens\":%d,\"total_tokens\":%llu}}\n",
                            reason, r->load_only ? 0ull : p, n, r->load_only ? 0ull : total);
        break;
    default:
        break;
    }
}

/* Embedding value j of input k as a short decimal (deterministic, in [-0.1, 0.1]). */
static size_t sim_fmt_embed_value(const sim_req *r, int k, int j, char *out)
{
    uint32_t x = sim_hash(r->hash, &k, sizeof k);
    x = sim_hash(x, &j, sizeof j);
    int v = (int)(x % 20001) - 10000;
    if (v == 0) { out[0] = '0'; return 1; }
    size_t n = 0;
    if (v < 0) { out[n++] = '-'; v = -v; }
    char digits[6];
    snprintf(digits, sizeof digits, "%05d", v);
    int nd = 5;
    while (nd > 0 && digits[nd - 1] == '0') nd--;
    out[n++] = '0';
    out[n++] = '.';
    memcpy(out + n, digits, (size_t)nd);
    return n + (size_t)nd;
}

/* Append one embedding vector (input k) as a JSON array. */
static void sim_fmt_vector(struct evbuffer *b, const sim_req *r, int k)
{
    char buf[SIM_EMBED_DIMS * 10 + 2];
    size_t n = 0;
    int dims = r->dims > 0 && r->dims < SIM_EMBED_DIMS ? r->dims : SIM_EMBED_DIMS;
    buf[n++] = '[';
    for (int j = 0; j < dims; j++) {
        if (j) buf[n++] = ',';
        n += sim_fmt_embed_value(r, k, j, buf + n);
    }
    buf[n++] = ']';
    evbuffer_add(b, buf, n);
}

/* The embedding answer of r into b; returns the Content-Type. */
static const char *sim_fmt_embedding(const sim_req *r, struct evbuffer *b)
{
    switch (r->kind) {
    case SIM_KIND_EMBED:
        SIM_ADD_LIT(b, "{\"model\":");
        sim_json_str(b, r->model_name, strlen(r->model_name));
        SIM_ADD_LIT(b, ",\"embeddings\":[");
        for (int k = 0; k < r->n_inputs; k++) { if (k) SIM_ADD_LIT(b, ","); sim_fmt_vector(b, r, k); }
        SIM_ADD_LIT(b, "]");
        if (r->n_inputs) sim_metrics(b, r, 0);
        SIM_ADD_LIT(b, "}");
        return SIM_CT_JSON_GIN;
    case SIM_KIND_EMBEDDINGS:
        SIM_ADD_LIT(b, "{\"embedding\":");
        if (r->n_inputs) sim_fmt_vector(b, r, 0);
        else SIM_ADD_LIT(b, "[]");
        SIM_ADD_LIT(b, "}");
        return SIM_CT_JSON_GIN;
    default:   /* SIM_KIND_V1_EMBEDDINGS */
        SIM_ADD_LIT(b, "{\"object\":\"list\",\"data\":[");
        for (int k = 0; k < r->n_inputs; k++) {
            evbuffer_add_printf(b, "%s{\"object\":\"embedding\",\"embedding\":", k ? "," : "");
            sim_fmt_vector(b, r, k);
            evbuffer_add_printf(b, ",\"index\":%d}", k);
        }
        SIM_ADD_LIT(b, "],\"model\":");
        sim_json_str(b, r->model_name, strlen(r->model_name));
        evbuffer_add_printf(b, ",\"usage\":{\"prompt_tokens\":%llu,\"total_tokens\":%llu}}\n",
                            (unsigned long long)r->prompt_tokens, (unsigned long long)r->prompt_tokens);
        return SIM_CT_JSON;
    }
}

/* Content-Type of a streamed / whole answer of r. */
static const char *sim_ctype(const sim_req *r)
{
    if (r->kind == SIM_KIND_V1_CHAT || r->kind == SIM_KIND_V1_COMPLETIONS) return r->stream ? SIM_CT_SSE : SIM_CT_JSON;
    return r->stream ? SIM_CT_NDJSON : SIM_CT_JSON_GIN;
}

/* ------------------------------------------------------------------ pull */

/* /api/pull step k (0 .. n_tokens + 3). Returns 1 when it was the last step. */
static int sim_pull_step(sim_req *r, int k)
{
    char digest[65], line[512];
    uint64_t size = sim_model_size(r->model, digest);
    int steps = r->n_tokens, n;
    if (k == 0) n = snprintf(line, sizeof line, "{\"status\":\"pulling manifest\"}\n");
    else if (k <= steps)
        n = snprintf(line, sizeof line, "{\"status\":\"pulling %.12s\",\"digest\":\"sha256:%s\",\"total\":%llu,\"completed\":%llu}\n",
                     digest, digest, (unsigned long long)size, (unsigned long long)(size * (uint64_t)k / (uint64_t)steps));
    else if (k == steps + 1) n = snprintf(line, sizeof line, "{\"status\":\"verifying sha256 digest\"}\n");
    else if (k == steps + 2) n = snprintf(line, sizeof line, "{\"status\":\"writing manifest\"}\n");
    else n = snprintf(line, sizeof line, "{\"status\":\"success\"}\n");
    int last = k >= steps + 3;
    if (!r->stream) {
        if (last) sim_resp_full(r, 200, NULL, SIM_CT_JSON_GIN, "{\"status\":\"success\"}", 20);
        return last;
    }
    if (k == 0) sim_resp_head(r, 200, NULL, SIM_CT_NDJSON, -1);
    if (sim_resp_chunk(r, line, (size_t)n) != 0) return 1;
    if (last) sim_resp_end(r);
    return last;
}

/* ------------------------------------------------------------------ ticks */

/* Timer: the next token / final chunk / whole answer of r. */
static void sim_gen_tick(evutil_socket_t fd, short what, void *arg)
{
    sim_req *r = arg;
    char chunk[SIM_CHUNK_MAX];
    (void)fd; (void)what;
    switch (r->kind) {
    case SIM_KIND_EMBED:
    case SIM_KIND_EMBEDDINGS:
    case SIM_KIND_V1_EMBEDDINGS: {
        struct evbuffer *b = evbuffer_new();
        const char *ct = sim_fmt_embedding(r, b);
        sim_resp_buffer(r, 200, ct, b);
        return;
    }
    case SIM_KIND_PULL:
        if (!sim_pull_step(r, r->emitted)) { r->emitted++; sim_schedule(r, r->emitted); }
        return;
    default:
        break;
    }
    if (!r->stream) {
        struct evbuffer *b = evbuffer_new();
        sim_fmt_whole(r, b);
        sim_resp_buffer(r, 200, sim_ctype(r), b);
        return;
    }
    if (r->emitted < r->n_tokens) {
        size_t n = sim_fmt_token(r, r->emitted, chunk, sizeof chunk);
        if (r->emitted == 0) sim_resp_head(r, 200, NULL, sim_ctype(r), -1);   /* head goes with the first token */
        if (sim_resp_chunk(r, chunk, n) != 0) return;
        r->emitted++;
        sim_schedule(r, r->emitted);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    sim_fmt_final_stream(r, b);
    if (r->n_tokens == 0) sim_resp_head(r, 200, NULL, sim_ctype(r), -1);
    size_t n = evbuffer_get_length(b);
    int rc = sim_resp_chunk(r, evbuffer_pullup(b, -1), n);
    evbuffer_free(b);
    if (rc == 0) sim_resp_end(r);
}

/* Take a slot and schedule the first tick. */
static void sim_gen_start(sim_req *r)
{
    r->in_slot = 1;
    sim_g.active++;
    r->t_start_ns = sim_mono_ns();
    if (r->kind == SIM_KIND_V1_CHAT) r->created_s = sim_created_s(r, 0);
    /* non-streamed answers need no per-token ticks: one timer at the end (pulls take no
     * slot: sim_gen_submit schedules them) */
    int k = 0;
    if (!r->stream && r->kind != SIM_KIND_EMBED && r->kind != SIM_KIND_EMBEDDINGS && r->kind != SIM_KIND_V1_EMBEDDINGS)
        k = r->n_tokens;
    sim_schedule(r, k);
}

/* See sim.h. */
void sim_gen_submit(sim_req *r)
{
    if (r->kind == SIM_KIND_V1_CHAT || r->kind == SIM_KIND_V1_COMPLETIONS) {
        unsigned v = sim_g.cfg.fixed_clock ? r->hash % 999 : (unsigned)random() % 999;
        snprintf(r->id, sizeof r->id, "%s-%u", r->kind == SIM_KIND_V1_CHAT ? "chatcmpl" : "cmpl", v);
    }
    if (r->load_only) {   /* empty prompt / no messages: Ollama just loads the model */
        struct evbuffer *b = evbuffer_new();
        r->n_tokens = 0;
        r->prompt_tokens = 0;
        if (r->kind == SIM_KIND_V1_COMPLETIONS && r->stream) {
            sim_fmt_final_stream(r, b);
            sim_resp_buffer(r, 200, SIM_CT_SSE, b);
        } else {
            int stream = r->stream;
            r->stream = 0;
            sim_fmt_whole(r, b);
            r->stream = stream;
            sim_resp_buffer(r, 200, r->kind == SIM_KIND_V1_COMPLETIONS ? SIM_CT_JSON : SIM_CT_JSON_GIN, b);
        }
        return;
    }
    if (r->kind == SIM_KIND_PULL) {   /* downloads do not take an inference slot */
        r->t_start_ns = sim_mono_ns();
        sim_schedule(r, r->stream ? 0 : r->n_tokens + 3);
        if (!r->stream) r->emitted = r->n_tokens + 3;
        return;
    }
    if (sim_g.active < sim_g.cfg.parallel && !sim_g.qhead) { sim_gen_start(r); return; }
    if (sim_g.queued >= sim_g.cfg.max_queue) {
        sim_api_error(r, 503, SIM_BUSY_MSG);   /* OpenAI's shape on /v1 */
        return;
    }
    r->queued = 1;
    r->qnext = NULL;
    if (sim_g.qtail) sim_g.qtail->qnext = r;
    else sim_g.qhead = r;
    sim_g.qtail = r;
    sim_g.queued++;
}

/* See sim.h. */
void sim_gen_release(sim_req *r)
{
    if (!r->in_slot) return;
    r->in_slot = 0;
    sim_g.active--;
    while (sim_g.active < sim_g.cfg.parallel && sim_g.qhead) {
        sim_req *next = sim_g.qhead;
        sim_g.qhead = next->qnext;
        if (!sim_g.qhead) sim_g.qtail = NULL;
        sim_g.queued--;
        next->queued = 0;
        next->qnext = NULL;
        sim_gen_start(next);
    }
}

/* See sim.h. */
void sim_gen_cancel(sim_req *r)
{
    if (r->queued) {
        sim_req **pp = &sim_g.qhead, *prev = NULL;
        while (*pp && *pp != r) { prev = *pp; pp = &(*pp)->qnext; }
        if (*pp) {
            *pp = r->qnext;
            if (sim_g.qtail == r) sim_g.qtail = prev;
            sim_g.queued--;
        }
        r->queued = 0;
    }
    if (r->timer_init) evtimer_del(&r->timer);
    sim_gen_release(r);
}

/* ------------------------------------------------------------------ bytes=N */

/* Length of the next filler line when rem bytes are left (see README). */
static size_t sim_bytes_line_len(int64_t rem)
{
    if (rem >= 2 * SIM_BYTES_LINE) return SIM_BYTES_LINE;
    if (rem > SIM_BYTES_LINE) return (size_t)(rem / 2);
    return (size_t)rem;
}

/* Write one filler line of exactly len bytes into out. */
static void sim_bytes_line(char *out, size_t len)
{
    static const char head[] = "{\"filler\":\"", tail[] = "\"}\n";
    if (len < sizeof head - 1 + sizeof tail - 1) {
        memset(out, ' ', len);
        if (len) out[len - 1] = '\n';
        return;
    }
    memcpy(out, head, sizeof head - 1);
    memset(out + sizeof head - 1, 'x', len - (sizeof head - 1) - (sizeof tail - 1));
    memcpy(out + len - (sizeof tail - 1), tail, sizeof tail - 1);
}

/* Fill the output up to the high-water mark; end the response when all was sent. */
static void sim_bytes_fill(sim_req *r)
{
    static char block[SIM_BYTES_BLOCK + 2 * SIM_BYTES_LINE];
    while (r->conn && !r->finished && r->bytes_left > 0 &&
           evbuffer_get_length(bufferevent_get_output(r->conn->bev)) < SIM_BYTES_HIGH_WATER) {
        size_t n = 0;
        while (r->bytes_left > 0 && n < SIM_BYTES_BLOCK) {
            size_t l = sim_bytes_line_len(r->bytes_left);
            sim_bytes_line(block + n, l);
            n += l;
            r->bytes_left -= (int64_t)l;
        }
        if (sim_resp_chunk(r, block, n) != 0) return;
    }
    if (r->conn && !r->finished && r->bytes_left == 0) {
        bufferevent_setwatermark(r->conn->bev, EV_WRITE, 0, 0);
        sim_resp_end(r);
    }
}

/* See sim.h. */
void sim_gen_bytes_start(sim_req *r)
{
    r->kind = SIM_KIND_BYTES;
    r->bytes_left = r->fault.bytes;
    r->stream = 1;
    sim_resp_head(r, 200, NULL, SIM_CT_NDJSON, -1);
    bufferevent_setwatermark(r->conn->bev, EV_WRITE, SIM_BYTES_HIGH_WATER / 4, 0);
    sim_bytes_fill(r);
}

/* See sim.h. */
void sim_gen_on_drain(sim_req *r)
{
    sim_bytes_fill(r);
}
