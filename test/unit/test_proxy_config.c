/* test_proxy_config.c — flags and environment (proxy/px_config.c): the flag wins over its own
 * variable, and --metrics-port given as a flag wins over LITEBRAIN_METRICS_LISTEN; bad values
 * are refused with exit code 2 and one line naming the flag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "proxy/proxy.h"

#define ERR_MAX 512             /* error line buffer */
#define ARGS_MAX 8              /* argv entries in a case */

/* px_config_load over the given flags (NULL-terminated); returns its code. */
static int load(px_config *c, char *err, const char *flag, ...)
{
    char *argv[ARGS_MAX + 1] = { "litebrain-proxy" };
    char policy[ERR_MAX];
    int argc = 1;
    va_list ap;

    va_start(ap, flag);
    for (const char *a = flag; a && argc < ARGS_MAX; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    err[0] = '\0';
    return px_config_load(c, argc, argv, policy, sizeof policy, err, ERR_MAX);
}

static void unset_all(void)
{
    unsetenv("LITEBRAIN_METRICS_LISTEN");
    unsetenv("LITEBRAIN_METRICS_PORT");
    unsetenv("LITEBRAIN_MAX_HEADER_BYTES");
}

/* Defaults: the metrics port on every address, 9090. */
static void metrics_default(void **state)
{
    px_config c;
    char err[ERR_MAX];
    (void)state;
    unset_all();
    assert_int_equal(load(&c, err, NULL), 0);
    assert_string_equal(c.metrics_listen, "0.0.0.0:9090");
}

/* LITEBRAIN_METRICS_LISTEN beats LITEBRAIN_METRICS_PORT, and a --metrics-port flag beats both. */
static void metrics_flag_wins(void **state)
{
    px_config c;
    char err[ERR_MAX];
    (void)state;
    unset_all();
    setenv("LITEBRAIN_METRICS_LISTEN", "127.0.0.1:9100", 1);
    setenv("LITEBRAIN_METRICS_PORT", "9200", 1);
    assert_int_equal(load(&c, err, NULL), 0);
    assert_string_equal(c.metrics_listen, "127.0.0.1:9100");
    assert_int_equal(load(&c, err, "--metrics-port", "9300", NULL), 0);
    assert_string_equal(c.metrics_listen, "0.0.0.0:9300");
    assert_int_equal(load(&c, err, "--metrics-port", "9300", "--metrics-listen", "127.0.0.1:9400",
                          NULL), 0);
    assert_string_equal(c.metrics_listen, "127.0.0.1:9400");
    assert_int_equal(load(&c, err, "--metrics-listen=127.0.0.1:9500", "--metrics-port=9300", NULL),
                     0);
    assert_string_equal(c.metrics_listen, "127.0.0.1:9500");
    unset_all();
}

/* A flag beats its variable; a bad value from either is exit code 2 naming where it came from. */
static void bad_values(void **state)
{
    px_config c;
    char err[ERR_MAX];
    (void)state;
    unset_all();
    setenv("LITEBRAIN_MAX_HEADER_BYTES", "12KiB", 1);
    assert_int_equal(load(&c, err, "--max-header-bytes", "4KiB", NULL), 0);
    assert_int_equal(c.max_header_bytes, 4096);
    setenv("LITEBRAIN_MAX_HEADER_BYTES", "lots", 1);
    assert_int_equal(load(&c, err, NULL), 2);
    assert_non_null(strstr(err, "LITEBRAIN_MAX_HEADER_BYTES"));
    assert_null(strchr(err, '\n'));
    unset_all();
    assert_int_equal(load(&c, err, "--metrics-port", "70000", NULL), 2);
    assert_non_null(strstr(err, "--metrics-port"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metrics_default),
        cmocka_unit_test(metrics_flag_wins),
        cmocka_unit_test(bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
