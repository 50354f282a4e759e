/* no-io-uring.c — run a program the way Docker 25+ and containerd 2.0+ run containers under
 * their default seccomp profile as far as io_uring goes: io_uring_setup fails with EPERM.
 *   no-io-uring PROGRAM [ARGS...]
 * Installs a seccomp filter (no new privileges, so no root needed), then execs PROGRAM.  Used by
 * the integration tests to check the proxy's plain-system-call path the way a cluster takes it.
 * Exit 2 when the filter cannot be installed, 127 when PROGRAM cannot be run. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define THIS_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_ARCH AUDIT_ARCH_AARCH64
#else
#error "no seccomp architecture constant for this machine"
#endif

int main(int argc, char **argv)
{
    struct sock_filter code[] = {
        /* another architecture's calls (e.g. 32-bit entry points): allowed, as the kernel
         * numbers them differently and this filter only knows this one's */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { (unsigned short)(sizeof code / sizeof code[0]), code };

    if (argc < 2) {
        fprintf(stderr, "usage: no-io-uring PROGRAM [ARGS...]\n");
        return 2;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
        fprintf(stderr, "no-io-uring: cannot install the seccomp filter: %s\n", strerror(errno));
        return 2;
    }
    execvp(argv[1], argv + 1);
    fprintf(stderr, "no-io-uring: cannot run %s: %s\n", argv[1], strerror(errno));
    return 127;
}
