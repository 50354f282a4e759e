/* test_proxy_http.c — the proxy's HTTP helpers (proxy/px_http.c): heads built flat and added in
 * one piece, spilling in order when longer than the stack buffer; the integer formatter; header
 * lookup by length and name; hop-by-hop rules; and the line-end check against bare LF and
 * obs-fold, compared with a byte-at-a-time oracle on random heads split across reads. */
#include <ctype.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "proxy/px_int.h"

#define ORACLE_ROUNDS 200000    /* random heads compared with the oracle */
#define ORACLE_LEN_MAX 24       /* bytes per random head */
#define LINES_ROUNDS 20000      /* random header sets gathered in random pieces */
#define LINES_MAX 6             /* header lines per random set */
#define LINE_PART_MAX 20        /* bytes per random name or value */

/* The evbuffer's bytes as a NUL-terminated malloc'd string. */
static char *contents(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    evbuffer_copyout(b, s, n);
    s[n] = '\0';
    return s;
}

/* The evbuffer holds exactly want (a string without NUL bytes). */
static void assert_contents(struct evbuffer *b, const char *want)
{
    char *got = contents(b);
    assert_int_equal(strlen(got), strlen(want));
    assert_string_equal(got, want);
    free(got);
}

static void head_is_one_piece_and_spills_in_order(void **st)
{
    struct evbuffer *out = evbuffer_new();
    char big[PX_HEAD_INLINE + 100], *want;
    px_head h;
    size_t k = 0;
    int i;

    (void)st;
    px_head_begin(&h, out);
    px_head_add(&h, "GET / HTTP/1.1\r\n", 16);
    px_head_header(&h, "Host", "a");
    assert_int_equal(evbuffer_get_length(out), 0);      /* nothing added before the end */
    px_head_end(&h);
    assert_contents(out, "GET / HTTP/1.1\r\nHost: a\r\n");
    assert_int_equal(evbuffer_get_length(out), 25);

    /* longer than the buffer: pieces of every size, one larger than the buffer itself */
    evbuffer_drain(out, evbuffer_get_length(out));
    want = malloc(4 * sizeof big);
    assert_non_null(want);
    px_head_begin(&h, out);
    for (i = 0; i < 3; i++) {
        size_t n = i == 1 ? sizeof big : 1000 + (size_t)i;
        memset(big, 'a' + i, n);
        px_head_add(&h, big, n);
        memcpy(want + k, big, n);
        k += n;
    }
    px_head_header(&h, "X-End", "z");
    memcpy(want + k, "X-End: z\r\n", 10);
    k += 10;
    want[k] = '\0';
    px_head_end(&h);
    assert_int_equal(strlen(want), k);
    assert_contents(out, want);
    free(want);
    evbuffer_free(out);
}

static void utoa_writes_every_digit(void **st)
{
    char d[PX_UINT_DIGITS + 1];
    size_t n;

    (void)st;
    n = px_utoa(d, 0);
    d[n] = '\0';
    assert_string_equal(d, "0");
    n = px_utoa(d, 1234567890);
    d[n] = '\0';
    assert_string_equal(d, "1234567890");
    n = px_utoa(d, ULLONG_MAX);
    d[n] = '\0';
    assert_string_equal(d, "18446744073709551615");
    assert_int_equal(n, PX_UINT_DIGITS);
}

/* Add one complete header line to h. */
static void add_line(px_hdrs *h, const char *name, const char *value)
{
    assert_int_equal(px_hdrs_piece(h, 0, name, strlen(name)), 0);
    assert_int_equal(px_hdrs_end_piece(h, 0), 0);
    assert_int_equal(px_hdrs_piece(h, 1, value, strlen(value)), 0);
    assert_int_equal(px_hdrs_end_piece(h, 1), 0);
}

/* px_head_line writes "name: value\r\n" from the gathered lines, in place while it fits and
 * through the spilling path, in order, when it does not. */
static void head_line_in_place_and_spilled(void **st)
{
    struct evbuffer *out = evbuffer_new();
    size_t long_len = PX_HEAD_INLINE - 10, k = 0;
    char *longv = malloc(long_len + 1), *want = malloc(2 * PX_HEAD_INLINE);
    px_hdrs hd;
    px_head h;

    (void)st;
    assert_non_null(longv);
    assert_non_null(want);
    memset(longv, 'v', long_len);
    longv[long_len] = '\0';
    px_hdrs_init(&hd, 4 * PX_HEAD_INLINE);
    add_line(&hd, "Content-Type", "application/json");
    add_line(&hd, "X-Long", longv);
    add_line(&hd, "X-Empty", "");
    px_head_begin(&h, out);
    px_head_line(&h, &hd, 0);                   /* fits */
    px_head_line(&h, &hd, 1);                   /* does not: spills */
    px_head_line(&h, &hd, 2);
    px_head_line(&h, &hd, 0);
    px_head_end(&h);
    k += (size_t)sprintf(want + k, "Content-Type: application/json\r\n");
    k += (size_t)sprintf(want + k, "X-Long: %s\r\n", longv);
    k += (size_t)sprintf(want + k, "X-Empty: \r\n");
    k += (size_t)sprintf(want + k, "Content-Type: application/json\r\n");
    assert_int_equal(strlen(want), k);
    assert_contents(out, want);
    free(want);
    free(longv);
    px_hdrs_free(&hd);
    evbuffer_free(out);
}

static void header_ids_and_lookup(void **st)
{
    px_hdrs h;
    char *kept;

    (void)st;
    px_hdrs_init(&h, 4096);
    add_line(&h, "Connectionx", "1");
    add_line(&h, "CONNECTION", "close");
    add_line(&h, "Ho", "2");
    add_line(&h, "X-Forwarded-For", "");        /* an empty value has no piece at all */
    assert_int_equal(px_hdrs_name_len(&h, 0), 11);
    assert_int_equal(px_hdrs_name_len(&h, 2), 2);
    assert_int_equal(px_hdrs_value_len(&h, 0), 1);
    assert_int_equal(px_hdrs_value_len(&h, 1), 5);
    assert_int_equal(px_hdrs_value_len(&h, 3), 0);
    assert_int_equal(h.id[0], PX_H_OTHER);      /* not the longer look-alike */
    assert_int_equal(h.id[2], PX_H_OTHER);
    assert_int_equal(h.id[3], PX_H_XFF);
    assert_string_equal(px_hdrs_find(&h, PX_H_CONNECTION), "close");
    assert_null(px_hdrs_find(&h, PX_H_HOST));

    kept = h.buf;                               /* a reset keeps the buffer and forgets lines */
    px_hdrs_reset(&h);
    assert_ptr_equal(h.buf, kept);
    assert_int_equal(h.n, 0);
    assert_null(px_hdrs_find(&h, PX_H_CONNECTION));
    add_line(&h, "hOsT", "b");
    assert_string_equal(px_hdrs_find(&h, PX_H_HOST), "b");
    assert_int_equal(px_hdrs_value_len(&h, 0), 1);
    px_hdrs_free(&h);
}

/* Random header sets, names drawn from the ids' names (in random case), look-alikes and others,
 * values of 0..LINE_PART_MAX bytes, each fed in up to three pieces as llhttp may split them:
 * every line's name, value, lengths and id come out as they went in, and px_head_line writes
 * exactly "name: value\r\n" for each. */
static void gathered_lines_match_random_input(void **st)
{
    static const char *const names[] = {"Host", "Content-Length", "content-type", "Expect",
                                        "X-Forwarded-For", "Connection", "Keep-Alive", "TE",
                                        "Upgrade", "Transfer-Encoding", "Proxy-Connection",
                                        "Hos", "Hosts", "X-Forwarded-Fox", "Accept", "A"};
    static const char vchars[] = "abcXYZ019 ,;=-_/\t";
    unsigned seed = 777;
    int round;

    (void)st;
    for (round = 0; round < LINES_ROUNDS; round++) {
        char name[LINES_MAX][LINE_PART_MAX + 1], value[LINES_MAX][LINE_PART_MAX + 1];
        char want[LINES_MAX * (2 * LINE_PART_MAX + 4) + 1];
        int nl = 1 + rand_r(&seed) % LINES_MAX, i, k;
        size_t w = 0;
        struct evbuffer *out = evbuffer_new();
        px_hdrs h;
        px_head hd;

        px_hdrs_init(&h, 4096);
        for (i = 0; i < nl; i++) {
            const char *pick = names[rand_r(&seed) % (sizeof names / sizeof names[0])];
            size_t vl = (size_t)(rand_r(&seed) % (LINE_PART_MAX + 1)), j;
            for (j = 0; pick[j]; j++)           /* the same name in a random case */
                name[i][j] = (char)(isalpha((unsigned char)pick[j]) && rand_r(&seed) % 2
                                    ? pick[j] ^ 0x20 : pick[j]);
            name[i][j] = '\0';
            for (j = 0; j < vl; j++)
                value[i][j] = vchars[rand_r(&seed) % (sizeof vchars - 1)];
            value[i][vl] = '\0';
            for (k = 0; k < 2; k++) {           /* name, then value, in up to three pieces */
                const char *part = k ? value[i] : name[i];
                size_t len = strlen(part), a = len ? (size_t)rand_r(&seed) % (len + 1) : 0;
                size_t b = a + (len - a ? (size_t)rand_r(&seed) % (len - a + 1) : 0);
                if (a) assert_int_equal(px_hdrs_piece(&h, k, part, a), 0);
                if (b > a) assert_int_equal(px_hdrs_piece(&h, k, part + a, b - a), 0);
                if (len > b) assert_int_equal(px_hdrs_piece(&h, k, part + b, len - b), 0);
                assert_int_equal(px_hdrs_end_piece(&h, k), 0);
            }
        }
        assert_int_equal(h.n, nl);
        px_head_begin(&hd, out);
        for (i = 0; i < nl; i++) {
            assert_string_equal(h.buf + h.name[i], name[i]);
            assert_string_equal(h.buf + h.value[i], value[i]);
            assert_int_equal(px_hdrs_name_len(&h, i), strlen(name[i]));
            assert_int_equal(px_hdrs_value_len(&h, i), strlen(value[i]));
            assert_int_equal(h.id[i], px_hdr_id(name[i], strlen(name[i])));
            px_head_line(&hd, &h, i);
            w += (size_t)sprintf(want + w, "%s: %s\r\n", name[i], value[i]);
        }
        px_head_end(&hd);
        assert_contents(out, want);
        evbuffer_free(out);
        px_hdrs_free(&h);
    }
}

/* The limit counts every byte kept, the NULs too, on the fast path that skips the checked
 * append as on the checked one: a line that fills it exactly fits, an empty value after it
 * does not. */
static void header_limit_counts_every_byte(void **st)
{
    px_hdrs h;

    (void)st;
    px_hdrs_init(&h, 16);
    assert_int_equal(px_hdrs_piece(&h, 0, "abcdef", 6), 0);
    assert_int_equal(px_hdrs_end_piece(&h, 0), 0);
    assert_int_equal(px_hdrs_piece(&h, 1, "0123456", 7), 0);
    assert_int_equal(px_hdrs_end_piece(&h, 1), 0);     /* 15 of 16 bytes */
    assert_int_equal(px_hdrs_piece(&h, 0, "x", 1), -1); /* x and its NUL would make 17 */
    px_hdrs_free(&h);

    px_hdrs_init(&h, 10);
    assert_int_equal(px_hdrs_piece(&h, 0, "abcdefghi", 9), 0);
    assert_int_equal(px_hdrs_end_piece(&h, 0), 0);     /* 10 of 10: full */
    assert_int_equal(px_hdrs_end_piece(&h, 1), -1);    /* an empty value's NUL is one more */
    px_hdrs_free(&h);
}

static void header_ids_by_name(void **st)
{
    static const struct { const char *name; int id; } known[] = {
        {"Host", PX_H_HOST}, {"content-length", PX_H_CONTENT_LENGTH},
        {"Content-Type", PX_H_CONTENT_TYPE}, {"EXPECT", PX_H_EXPECT},
        {"x-forwarded-for", PX_H_XFF}, {"Connection", PX_H_CONNECTION},
        {"Keep-Alive", PX_H_KEEP_ALIVE}, {"Proxy-Connection", PX_H_PROXY_CONNECTION},
        {"te", PX_H_TE}, {"Upgrade", PX_H_UPGRADE}, {"Transfer-Encoding", PX_H_TRANSFER_ENCODING},
        {"Hosts", PX_H_OTHER}, {"Hos", PX_H_OTHER}, {"content-lengtH", PX_H_CONTENT_LENGTH},
        {"content-lengthx", PX_H_OTHER}, {"Keep-Alivf", PX_H_OTHER}, {"", PX_H_OTHER},
        {"Accept", PX_H_OTHER}, {"TRANSFER-ENCODING", PX_H_TRANSFER_ENCODING},
        {"Transfer_Encoding", PX_H_OTHER}, {"transfer-encodinf", PX_H_OTHER},
        {"transfer-Xncoding", PX_H_OTHER}, {"x-forwarded-fox", PX_H_OTHER},
        {"content-lengt\r", PX_H_OTHER}, {"upgradE", PX_H_UPGRADE}, {"upgradf", PX_H_OTHER}};
    size_t i;

    (void)st;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        assert_int_equal(px_hdr_id(known[i].name, strlen(known[i].name)), known[i].id);
}

static void hop_by_hop_names_only(void **st)
{
    static const char *const hop[] = {"Connection", "keep-alive", "Proxy-Connection", "TE",
                                      "upgrade", "Transfer-Encoding"};
    static const char *const not_hop[] = {"Connectionx", "T", "TEE", "Upgrades",
                                          "Transfer-Encodinx", "Host", "Content-Length",
                                          "Expect", "X-Forwarded-For", "Content-Type", ""};
    size_t i;

    (void)st;
    for (i = 0; i < sizeof hop / sizeof hop[0]; i++)
        assert_true(px_hop_by_hop(px_hdr_id(hop[i], strlen(hop[i]))));
    for (i = 0; i < sizeof not_hop / sizeof not_hop[0]; i++)
        assert_false(px_hop_by_hop(px_hdr_id(not_hop[i], strlen(not_hop[i]))));
}

/* The rule, one byte at a time: a LF must follow a CR, and a byte after a LF must not be a
 * space or tab; prev carries the byte before p. */
static int oracle_bad(const char *p, size_t n, int *prev)
{
    size_t i;
    for (i = 0; i < n; i++) {
        int before = i > 0 ? (unsigned char)p[i - 1] : *prev;
        if (p[i] == '\n' && before != '\r')
            return 1;
        if ((p[i] == ' ' || p[i] == '\t') && before == '\n')
            return 1;
    }
    if (n > 0)
        *prev = (unsigned char)p[n - 1];
    return 0;
}

static void line_end_check_matches_the_oracle(void **st)
{
    static const char alphabet[] = "\r\n \ta";
    char buf[ORACLE_LEN_MAX];
    unsigned seed = 12345;
    int round, bad_seen = 0, good_seen = 0;

    (void)st;
    assert_true(px_bad_line_ends("GET / HTTP/1.1\nHost: a\r\n", 24, &(int){0}));
    assert_true(px_bad_line_ends("X: 1\r\n folded\r\n", 16, &(int){0}));
    assert_false(px_bad_line_ends("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, &(int){0}));
    for (round = 0; round < ORACLE_ROUNDS; round++) {
        size_t n = (size_t)(rand_r(&seed) % ORACLE_LEN_MAX), i, cut1, cut2;
        int start = rand_r(&seed) % 2 ? '\n' : 0, a = start, b = start, ra = 0, rb = 0;

        for (i = 0; i < n; i++)
            buf[i] = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
        cut1 = n ? (size_t)rand_r(&seed) % (n + 1) : 0;     /* up to three reads */
        cut2 = cut1 + (n - cut1 ? (size_t)rand_r(&seed) % (n - cut1 + 1) : 0);
        ra = px_bad_line_ends(buf, cut1, &a) || px_bad_line_ends(buf + cut1, cut2 - cut1, &a) ||
             px_bad_line_ends(buf + cut2, n - cut2, &a);
        rb = oracle_bad(buf, cut1, &b) || oracle_bad(buf + cut1, cut2 - cut1, &b) ||
             oracle_bad(buf + cut2, n - cut2, &b);
        assert_int_equal(ra, rb);
        if (!ra)
            assert_int_equal(a, b);             /* the carried byte agrees too */
        bad_seen += ra;
        good_seen += !ra;
    }
    assert_true(bad_seen > 0 && good_seen > 0); /* both verdicts were exercised */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(head_is_one_piece_and_spills_in_order),
        cmocka_unit_test(utoa_writes_every_digit),
        cmocka_unit_test(head_line_in_place_and_spilled),
        cmocka_unit_test(header_ids_and_lookup),
        cmocka_unit_test(header_limit_counts_every_byte),
        cmocka_unit_test(header_ids_by_name),
        cmocka_unit_test(gathered_lines_match_random_input),
        cmocka_unit_test(hop_by_hop_names_only),
        cmocka_unit_test(line_end_check_matches_the_oracle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
