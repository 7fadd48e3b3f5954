/*
 * rootless-logpump: what a detached container's monitor becomes once the container runs.
 *
 *   rootless-logpump LOG MAX_SIZE MAX_FILES STAGE1_PID OUT_FD ERR_FD TTY_FD HELPER_FD \
 *                    -- EXIT_CMD...
 *
 * The monitor (rootless/supervise/monitor.py, a Python interpreter of ~10 MB) starts
 * the container, then execs this when nothing is left for Python to do until the
 * container exits (no healthcheck, no restart policy, no network helper but
 * slirp4netns, which exits when HELPER_FD, its --exit-fd pipe, closes), as
 * Podman's conmon does. Exec keeps the PID (the record's supervisor), the child
 * (stage 1, whose parent-death signal is tied to us) and the output pipes.
 *
 * It copies OUT_FD and ERR_FD (and TTY_FD, a pty master, as stdout; -1: none) to LOG in
 * the k8s-file format of rootless/supervise/logfile.py's LogWriter, record for record
 * the same (F/P records, lines cut at LINE_MAX, rotation before a record that would
 * pass MAX_SIZE, 0: no limit, keeping MAX_FILES old files), waits for STAGE1_PID,
 * closes the log and HELPER_FD (-1: none), then execs EXIT_CMD with the wait status appended: the monitor's
 * Python again, which records the exit. Exit status 125 if any of that fails.
 * Built statically by helpers/setup-host into /usr/local/libexec/rootless/.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (16 * 1024) /* logfile.LINE_MAX */
#define READ_SIZE 65536
#define GRACE_MS 5000 /* the pumps may go on this long after the container exited */
#define NSTREAMS 3
#define OUT_SIZE (2 * READ_SIZE)

struct stream {
    int fd;
    const char *name;
    char pending[LINE_MAX_BYTES + READ_SIZE];
    size_t npending;
};

static const char *log_path;
static int log_fd = -1;
static long long log_size, max_size; /* max_size 0: no limit; log_size counts obuf */
static char obuf[OUT_SIZE]; /* records not written yet: one write for many lines */
static size_t olen;
static int max_files;
static char head[64]; /* "<timestamp> <stream> " of the records being written */
static size_t head_len;

static void die(const char *what)
{
    fprintf(stderr, "rootless-logpump: %s: %s\n", what, strerror(errno));
    exit(125);
}

static void open_log(void)
{
    struct stat st;

    log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (log_fd < 0 || fstat(log_fd, &st) < 0)
        die(log_path);
    log_size = st.st_size;
}

static void rotate(void)
{
    char from[4096], to[4096];

    if (max_files == 0) {
        if (unlink(log_path) < 0)
            die("rotate");
    } else {
        for (int i = max_files - 1; i > 0; i--) {
            snprintf(from, sizeof from, "%s.%d", log_path, i);
            snprintf(to, sizeof to, "%s.%d", log_path, i + 1);
            if (access(from, F_OK) == 0 && rename(from, to) < 0)
                die("rotate");
        }
        snprintf(to, sizeof to, "%s.1", log_path);
        if (rename(log_path, to) < 0)
            die("rotate");
    }
    close(log_fd);
    open_log();
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(log_fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void flush_out(void)
{
    write_all(obuf, olen);
    olen = 0;
}

/* One record: head, tag ('F' or 'P'), text, newline; rotating first if it would pass
 * max_size (a record larger than max_size gets a file of its own). */
static void record(char tag, const char *text, size_t len)
{
    size_t n = head_len + 2 + len + 1;
    char *out;

    if (max_size > 0 && log_size + (long long)n > max_size && log_size > 0) {
        flush_out();
        rotate();
    }
    if (olen + n > sizeof obuf)
        flush_out();
    out = obuf + olen;
    memcpy(out, head, head_len);
    out += head_len;
    *out++ = tag;
    *out++ = ' ';
    memcpy(out, text, len);
    out[len] = '\n';
    olen += n;
    log_size += (long long)n;
}

/* A line as P records of at most LINE_MAX_BYTES, the last one F unless partial. */
static void chunks(const char *line, size_t len, int partial)
{
    while (len > LINE_MAX_BYTES) {
        record('P', line, LINE_MAX_BYTES);
        line += LINE_MAX_BYTES;
        len -= LINE_MAX_BYTES;
    }
    record(partial ? 'P' : 'F', line, len);
}

static void set_head(const char *stream)
{
    struct timespec now;
    struct tm tm;
    char date[32];

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    head_len = (size_t)snprintf(head, sizeof head, "%s.%09ld+00:00 %s ", date, now.tv_nsec, stream);
}

/* logfile.LogWriter.write: complete lines are F records (cut into P records past
 * LINE_MAX_BYTES); at most LINE_MAX_BYTES of an unterminated line stay pending. */
static void log_data(struct stream *s, const char *data, size_t len)
{
    const char *nl;

    set_head(s->name);
    while ((nl = memchr(data, '\n', len)) != NULL) {
        size_t seg = (size_t)(nl - data);
        if (s->npending > 0) {
            /* pending + seg fits: pending <= LINE_MAX_BYTES, seg < READ_SIZE */
            memcpy(s->pending + s->npending, data, seg);
            chunks(s->pending, s->npending + seg, 0);
            s->npending = 0;
        } else {
            chunks(data, seg, 0);
        }
        data = nl + 1;
        len -= seg + 1;
    }
    memcpy(s->pending + s->npending, data, len);
    s->npending += len;
    if (s->npending > LINE_MAX_BYTES) {
        size_t cut = s->npending - s->npending % LINE_MAX_BYTES;
        if (cut == s->npending)
            cut -= LINE_MAX_BYTES; /* keep the last full buffer: a newline may end it */
        chunks(s->pending, cut, 1);
        memmove(s->pending, s->pending + cut, s->npending - cut);
        s->npending -= cut;
    }
}

/* logfile.LogWriter.flush: every stream's unterminated line as P records. */
static void flush_pending(struct stream *streams)
{
    for (int i = 0; i < NSTREAMS; i++) {
        if (streams[i].npending > 0) {
            set_head(streams[i].name);
            chunks(streams[i].pending, streams[i].npending, 1);
            streams[i].npending = 0;
        }
    }
}

static int parse_int(const char *text, long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(text, &end, 10);
    return errno == 0 && text[0] != '\0' && *end == '\0';
}

/* Close every fd from 3 up but the ones we use: the monitor's others (SQLite's
 * among them) must not stay open, or locked, for the container's life. */
static void close_other_fds(const int *keep, int nkeep)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *entry;
    int dfd, fd, kept;

    if (dir == NULL)
        die("/proc/self/fd");
    dfd = dirfd(dir);
    while ((entry = readdir(dir)) != NULL) {
        fd = atoi(entry->d_name);
        kept = fd < 3 || fd == dfd;
        for (int i = 0; i < nkeep; i++)
            kept |= fd == keep[i];
        if (!kept)
            close(fd);
    }
    closedir(dir);
}

int main(int argc, char **argv)
{
    static struct stream streams[NSTREAMS];
    static char buf[READ_SIZE];
    struct pollfd fds[NSTREAMS + 1];
    long long value[7];
    int status, pidfd, open_streams = 0, exited = 0;
    struct timespec deadline = {0};
    pid_t stage1;
    char status_text[16];
    char **exit_cmd;
    int keep[NSTREAMS + 1], helper_fd;

    if (argc < 11 || strcmp(argv[9], "--") != 0) {
        fprintf(stderr, "usage: rootless-logpump LOG MAX_SIZE MAX_FILES STAGE1_PID "
                        "OUT_FD ERR_FD TTY_FD HELPER_FD -- EXIT_CMD...\n");
        return 125;
    }
    for (int i = 0; i < 7; i++)
        if (!parse_int(argv[i + 2], &value[i]))
            return 125;
    log_path = argv[1];
    max_size = value[0];
    max_files = (int)value[1];
    stage1 = (pid_t)value[2];
    streams[0] = (struct stream){.fd = (int)value[3], .name = "stdout"};
    streams[1] = (struct stream){.fd = (int)value[4], .name = "stderr"};
    streams[2] = (struct stream){.fd = (int)value[5], .name = "stdout"};
    helper_fd = (int)value[6];
    exit_cmd = argv + 10;
    for (int i = 0; i < NSTREAMS; i++)
        keep[i] = streams[i].fd;
    keep[NSTREAMS] = helper_fd;
    close_other_fds(keep, NSTREAMS + 1);
    open_log();

    pidfd = (int)syscall(SYS_pidfd_open, stage1, 0);
    if (pidfd < 0)
        die("pidfd_open");
    for (int i = 0; i < NSTREAMS; i++) {
        fds[i] = (struct pollfd){.fd = streams[i].fd, .events = POLLIN};
        open_streams += streams[i].fd >= 0;
    }
    fds[NSTREAMS] = (struct pollfd){.fd = pidfd, .events = POLLIN};
    while (open_streams > 0) {
        int timeout = -1;
        if (exited) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long ms = (deadline.tv_sec - now.tv_sec) * 1000LL +
                           (deadline.tv_nsec - now.tv_nsec) / 1000000LL;
            if (ms <= 0)
                break;
            timeout = (int)ms;
        }
        if (poll(fds, NSTREAMS + 1, timeout) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (fds[NSTREAMS].revents) {
            fds[NSTREAMS].fd = -1;
            exited = 1;
            clock_gettime(CLOCK_MONOTONIC, &deadline);
            deadline.tv_sec += GRACE_MS / 1000;
        }
        for (int i = 0; i < NSTREAMS; i++) {
            ssize_t n;
            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            n = read(fds[i].fd, buf, sizeof buf);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) { /* EOF, or EIO from a pty whose other side closed */
                close(fds[i].fd);
                fds[i].fd = -1;
                open_streams--;
                continue;
            }
            log_data(&streams[i], buf, (size_t)n);
            if (buf[n - 1] != '\n')
                flush_pending(streams); /* a prompt without a newline reaches `logs -f` now */
            flush_out();
        }
    }
    flush_pending(streams);
    flush_out();
    fsync(log_fd);
    close(log_fd);
    for (int i = 0; i < NSTREAMS; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    close(pidfd);
    while (waitpid(stage1, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    if (helper_fd >= 0)
        close(helper_fd); /* slirp4netns exits */

    /* EXIT_CMD... STATUS */
    {
        int n = argc - 10;
        char **args = calloc((size_t)n + 2, sizeof *args);
        if (args == NULL)
            die("calloc");
        memcpy(args, exit_cmd, (size_t)n * sizeof *args);
        snprintf(status_text, sizeof status_text, "%d", status);
        args[n] = status_text;
        execv(args[0], args);
        die(args[0]);
    }
    return 125;
}
