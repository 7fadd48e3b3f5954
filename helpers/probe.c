/*
 * probe: run inside a container by the tests to report what busybox cannot see.
 * Build: gcc -static -O2 -o probe helpers/probe.c
 *
 *   probe fds       open fd numbers, space separated (without the fd reading /proc/self/fd)
 *   probe syscalls  NAME=ok or NAME=ERRNONAME per line for syscalls a seccomp profile blocks
 *   probe ids       uid= gid= euid= egid= groups=a,b,...
 *   probe cwd       the working directory
 *   probe pid       pid= ppid=
 *   probe caps      CapEff= CapPrm= CapInh= (hex, as in /proc/PID/status)
 *   probe tty       isatty0= isatty1= isatty2= ttyname= rows= cols=
 *
 * Every syscall probe uses arguments the kernel rejects or that have no lasting effect,
 * so running it unconfined (even as root) changes nothing.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int cmd_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir) {
        perror("probe: opendir /proc/self/fd");
        return 1;
    }
    int skip = dirfd(dir), fds[1024], n = 0;
    struct dirent *ent;
    while ((ent = readdir(dir)) && n < 1024) {
        if (ent->d_name[0] == '.')
            continue;
        int fd = atoi(ent->d_name);
        if (fd != skip)
            fds[n++] = fd;
    }
    closedir(dir);
    qsort(fds, n, sizeof fds[0], cmp_int);
    for (int i = 0; i < n; i++)
        printf(i ? " %d" : "%d", fds[i]);
    printf("\n");
    return 0;
}

static void report(const char *name, long ret)
{
    if (ret >= 0) {
        printf("%s=ok\n", name);
        return;
    }
    const char *err = strerrorname_np(errno);
    if (err)
        printf("%s=%s\n", name, err);
    else
        printf("%s=errno%d\n", name, errno);
}

/* Like report(), but closes a returned fd. */
static void report_fd(const char *name, long ret)
{
    int saved = errno;
    if (ret >= 0)
        close((int)ret);
    errno = saved;
    report(name, ret);
}

static int cmd_syscalls(void)
{
    /* Unknown keyctl operation: EOPNOTSUPP when allowed. */
    report("keyctl", syscall(SYS_keyctl, 0x7fff, 0, 0, 0, 0));
    /* NULL type and description: EFAULT when allowed. */
    report("add_key", syscall(SYS_add_key, NULL, NULL, NULL, 0, 0));
    report("request_key", syscall(SYS_request_key, NULL, NULL, NULL, 0));
    /* Unknown bpf command with no attributes. */
    report("bpf", syscall(SYS_bpf, 0x7fff, NULL, 0));
    /* NULL attributes: EFAULT when allowed. */
    report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    /* A user-mode-only userfaultfd is allowed to unprivileged users; closed at once. */
    report_fd("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
    /* NULL params: EFAULT when allowed. */
    report("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL));
    /* Too many segments and an unknown flag: refused before anything is loaded. */
    report("kexec_load", syscall(SYS_kexec_load, 0, 1000, NULL, 0x8000UL));
    report_fd("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, O_RDONLY));
    /* Empty image: nothing is loaded. */
    report("init_module", syscall(SYS_init_module, NULL, 0, ""));
    /* Wrong magic numbers: the kernel refuses before acting. */
    report("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
    /* Zero-sized clone_args: EINVAL when allowed, no child is made. */
    report("clone3", syscall(SYS_clone3, NULL, 0));
    return 0;
}

static int cmd_ids(void)
{
    gid_t groups[NGROUPS_MAX];
    int n = getgroups(NGROUPS_MAX, groups);
    if (n < 0) {
        perror("probe: getgroups");
        return 1;
    }
    printf("uid=%u gid=%u euid=%u egid=%u groups=", getuid(), getgid(), geteuid(), getegid());
    for (int i = 0; i < n; i++)
        printf(i ? ",%u" : "%u", groups[i]);
    printf("\n");
    return 0;
}

static int cmd_cwd(void)
{
    char buf[PATH_MAX];
    if (!getcwd(buf, sizeof buf)) {
        perror("probe: getcwd");
        return 1;
    }
    printf("%s\n", buf);
    return 0;
}

static int cmd_pid(void)
{
    printf("pid=%d ppid=%d\n", getpid(), getppid());
    return 0;
}

static int cmd_caps(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0) {
        perror("probe: capget");
        return 1;
    }
#define CAPS(field) (((unsigned long long)data[1].field << 32) | data[0].field)
    printf("CapEff=%016llx CapPrm=%016llx CapInh=%016llx\n", CAPS(effective), CAPS(permitted),
           CAPS(inheritable));
#undef CAPS
    return 0;
}

static int cmd_tty(void)
{
    struct winsize ws;
    const char *name = ttyname(0);
    printf("isatty0=%d isatty1=%d isatty2=%d ttyname=%s", isatty(0), isatty(1), isatty(2),
           name ? name : "-");
    if (ioctl(0, TIOCGWINSZ, &ws) == 0)
        printf(" rows=%u cols=%u\n", ws.ws_row, ws.ws_col);
    else
        printf(" rows=- cols=-\n");
    return 0;
}

static const struct {
    const char *name;
    int (*run)(void);
} commands[] = {
    {"fds", cmd_fds}, {"syscalls", cmd_syscalls}, {"ids", cmd_ids}, {"cwd", cmd_cwd},
    {"pid", cmd_pid}, {"caps", cmd_caps},         {"tty", cmd_tty},
};

int main(int argc, char **argv)
{
    if (argc == 2) {
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
            if (strcmp(argv[1], commands[i].name) == 0) {
                int rc = commands[i].run();
                return fflush(stdout) == 0 ? rc : 1;
            }
        }
    }
    fprintf(stderr, "usage: probe fds|syscalls|ids|cwd|pid|caps|tty\n");
    return 2;
}
