/* test_proxy_slab.c — the fixed-size object slab (proxy/px_slab.c) that px_conn and px_sock come
 * from: every object handed out is zeroed, also when it is a reused one; an object given back
 * is handed out again before any new chunk is taken; more objects than one chunk holds come
 * from further chunks, each object whole and apart from the others; px_slab_free gives every
 * chunk back (and nothing while an object is still out), after which the slab works again; and
 * without pooling (PX_POOLING 0, the ASan build) it is plain calloc/free.  The slabs here turn
 * pooling on themselves, so the ASan build tests the chunks too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "proxy/px_int.h"

#define DIRT 0xa5                       /* byte a caller leaves in an object it gives back */
#define CHUNKS_MANY 3                   /* whole chunks' worth of objects, then one more */
#define OBJS_MANY (CHUNKS_MANY * PX_SLAB_CHUNK + 1)

/* An object smaller than, and not a multiple of, the free-list link's size and alignment
 * (12 bytes, aligned to 4): the slab must round it. */
typedef struct obj {
    uint32_t index;             /* which object of a test it is */
    char pad[8];                /* makes the size 12 */
} obj;

/* A slab of obj with pooling on, whatever PX_POOLING says. */
static px_slab pooled_slab(void)
{
    px_slab sl = PX_SLAB_INIT(obj);
    sl.pooling = 1;
    return sl;
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i;

    for (i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

/* The object size keeps room for the free-list link and the type's alignment. */
static void size_is_rounded(void **st)
{
    px_slab sl = pooled_slab();
    (void)st;

    assert_true(sizeof(obj) % sizeof(void *) != 0);    /* the case the rounding is for */
    assert_true(sl.size >= sizeof(obj));
    assert_int_equal(sl.size % sizeof(void *), 0);
    assert_int_equal(sl.size % _Alignof(obj), 0);
}

/* A new object, and one given back dirty and handed out again, are all zeroes. */
static void get_returns_zeroed_memory(void **st)
{
    px_slab sl = pooled_slab();
    obj *a, *b;
    int i;
    (void)st;

    for (i = 0; i < 2; i++) {                   /* the second time: reused objects */
        a = px_slab_get(&sl);
        b = px_slab_get(&sl);
        assert_non_null(a);
        assert_non_null(b);
        assert_true(all_zero(a, sl.size));
        assert_true(all_zero(b, sl.size));
        memset(a, DIRT, sl.size);
        memset(b, DIRT, sl.size);
        px_slab_put(&sl, a);
        px_slab_put(&sl, b);
    }
    px_slab_free(&sl);
}

/* What is given back is handed out again (last in, first out), from the same chunk. */
static void put_then_get_reuses(void **st)
{
    px_slab sl = pooled_slab();
    obj *a, *b, *c;
    (void)st;

    a = px_slab_get(&sl);
    b = px_slab_get(&sl);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal(sl.live, 2);
    px_slab_put(&sl, a);
    assert_int_equal(sl.live, 1);
    c = px_slab_get(&sl);
    assert_ptr_equal(c, a);
    px_slab_put(&sl, b);
    px_slab_put(&sl, c);
    c = px_slab_get(&sl);
    assert_ptr_equal(c, a);                     /* the last one given back */
    px_slab_put(&sl, c);
    assert_int_equal(sl.nchunks, 1);
    assert_int_equal(sl.live, 0);
    px_slab_free(&sl);
}

/* More objects than a chunk holds: further chunks, every object aligned, apart from the others
 * and keeping what was written into it; given back and taken again, no new chunk. */
static void more_than_one_chunk(void **st)
{
    px_slab sl = pooled_slab();
    obj **o = calloc(OBJS_MANY, sizeof *o);
    void **sorted = calloc(OBJS_MANY, sizeof *sorted);
    int i, round;
    (void)st;

    assert_non_null(o);
    assert_non_null(sorted);
    for (round = 0; round < 2; round++) {
        for (i = 0; i < OBJS_MANY; i++) {
            o[i] = px_slab_get(&sl);
            assert_non_null(o[i]);
            assert_true(all_zero(o[i], sl.size));
            assert_int_equal((uintptr_t)o[i] % sizeof(void *), 0);    /* the link fits */
            memset(o[i], DIRT, sl.size);        /* the whole object is the caller's */
            o[i]->index = (uint32_t)i;
        }
        assert_int_equal(sl.nchunks, CHUNKS_MANY + 1);
        assert_int_equal(sl.live, OBJS_MANY);
        for (i = 0; i < OBJS_MANY; i++) {
            assert_int_equal(o[i]->index, i);   /* no other object wrote over it */
            sorted[i] = o[i];
        }
        qsort(sorted, OBJS_MANY, sizeof *sorted, by_address);
        for (i = 1; i < OBJS_MANY; i++)
            assert_true((uintptr_t)sorted[i] - (uintptr_t)sorted[i - 1] >= sl.size);
        for (i = 0; i < OBJS_MANY; i++)
            px_slab_put(&sl, o[i]);
        assert_int_equal(sl.live, 0);
    }
    px_slab_free(&sl);
    free(sorted);
    free(o);
}

/* px_slab_free gives the chunks back (nothing while an object is out); the slab then works as
 * new. */
static void free_at_exit(void **st)
{
    px_slab sl = pooled_slab();
    obj *o[PX_SLAB_CHUNK + 1];
    int i;
    (void)st;

    for (i = 0; i < PX_SLAB_CHUNK + 1; i++)
        o[i] = px_slab_get(&sl);
    for (i = 1; i < PX_SLAB_CHUNK + 1; i++)
        px_slab_put(&sl, o[i]);
    assert_int_equal(sl.nchunks, 2);
    px_slab_free(&sl);                          /* o[0] still out: kept */
    assert_int_equal(sl.nchunks, 2);
    assert_non_null(sl.chunks);
    assert_int_equal(o[0]->index, 0);           /* still usable */
    px_slab_put(&sl, o[0]);
    px_slab_free(&sl);
    assert_int_equal(sl.nchunks, 0);
    assert_null(sl.chunks);
    assert_null(sl.free_list);
    assert_int_equal(sl.live, 0);
    o[0] = px_slab_get(&sl);                    /* as new: a fresh chunk */
    assert_non_null(o[0]);
    assert_true(all_zero(o[0], sl.size));
    assert_int_equal(sl.nchunks, 1);
    px_slab_put(&sl, o[0]);
    px_slab_free(&sl);
    assert_null(sl.chunks);
}

/* Pooling off: calloc and free, no chunks (ASan then sees each object on its own). */
static void without_pooling_plain_calloc_free(void **st)
{
    px_slab sl = PX_SLAB_INIT(obj);
    obj *a, *b;
    (void)st;

    sl.pooling = 0;
    a = px_slab_get(&sl);
    assert_non_null(a);
    assert_true(all_zero(a, sl.size));
    memset(a, DIRT, sl.size);
    b = px_slab_get(&sl);
    assert_non_null(b);
    assert_true(all_zero(b, sl.size));
    assert_int_equal(sl.nchunks, 0);
    assert_null(sl.free_list);
    assert_int_equal(sl.live, 2);
    px_slab_put(&sl, a);
    px_slab_put(&sl, b);
    px_slab_put(&sl, NULL);                     /* allowed, like free(NULL) */
    assert_null(sl.free_list);
    assert_int_equal(sl.live, 0);
    px_slab_free(&sl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(size_is_rounded),
        cmocka_unit_test(get_returns_zeroed_memory),
        cmocka_unit_test(put_then_get_reuses),
        cmocka_unit_test(more_than_one_chunk),
        cmocka_unit_test(free_at_exit),
        cmocka_unit_test(without_pooling_plain_calloc_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
