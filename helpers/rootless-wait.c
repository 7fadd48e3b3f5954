/*
 * rootless-wait PID: what stage 1 of a container becomes once it has forked PID 1.
 *
 * Stage 1 (rootless/runtime/launch.py) only waits for its child and exits with the
 * child's status; as a forked Python interpreter that cost ~10 MB per container. It
 * execs this instead: exec keeps the PID (so it stays PID 1's parent), the
 * parent-death signal (no set-user-ID bit, no file capabilities), the ignored
 * signals, and the pipe whose closing tells PID 1 that stage 1 died.
 *
 * Exit status: the child's exit code, 128+N when signal N killed it (Podman's
 * convention), 125 when PID is not a child of ours.
 * Built statically by helpers/setup-host into /usr/local/libexec/rootless/.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
    char *end;
    long pid;
    int status;

    if (argc != 2 || argv[1][0] == '\0')
        return 125;
    pid = strtol(argv[1], &end, 10);
    if (*end != '\0' || pid <= 0)
        return 125;
    while (waitpid((pid_t)pid, &status, 0) < 0)
        if (errno != EINTR)
            return 125;
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
