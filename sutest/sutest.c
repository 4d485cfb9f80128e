/*
 * sutest - the minimal uid-switch probe: does the batch system still kill, suspend and account
 * a payload that runs under another uid?  Run it as root inside a batch job, before installing
 * anything else:
 *
 *     cc -O2 -DSUTEST_UID=5002 -DSUTEST_GID=5002 -o sutest sutest.c    (or: glexec-sutest build)
 *     sutest [-k] [-n] command [args...]
 *
 * It does what a well-behaved identity-switching launcher does and nothing more: it stays the
 * payload's parent (no setsid, no new process group, no daemonizing, no pty, no cgroup change,
 * rlimits untouched), resets signal dispositions and the mask before exec, forwards termination
 * signals, waits and exits with the payload's status (128+N for a signal).  -k keeps the
 * inherited supplementary groups (the batch system's tracking gids: Grid Engine's gid_range,
 * HTCondor's tracking gids); the default drops them all, as a naive setgroups would.  -n does
 * not linger: it switches and execs in place (same pid), like gLExec with linger = no.
 *
 * The target uid/gid are fixed at build time on purpose: a root-run program that took them from
 * its arguments would be a general su.  Only libc is used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SUTEST_UID
#error "build with -DSUTEST_UID=<uid> -DSUTEST_GID=<gid>"
#endif
#ifndef SUTEST_GID
#define SUTEST_GID SUTEST_UID
#endif

static volatile sig_atomic_t child_pid = 0;

static void forward(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

static void reset_signals(void)
{
    sigset_t empty;
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);           /* fails harmlessly for KILL, STOP and invalid numbers */
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
}

static void switch_identity(int keep_groups)
{
    if (keep_groups) {
        /* keep the list as inherited: nothing to do, setgroups is not called at all */
    } else if (setgroups(0, NULL) != 0) {
        perror("sutest: setgroups");
        _exit(126);
    }
    if (setresgid(SUTEST_GID, SUTEST_GID, SUTEST_GID) != 0 ||
        setresuid(SUTEST_UID, SUTEST_UID, SUTEST_UID) != 0) {
        perror("sutest: switching identity");
        _exit(126);
    }
    /* Refuse to run anything if root could be regained. */
    if (setresuid(0, 0, 0) == 0 || geteuid() != SUTEST_UID || getuid() != SUTEST_UID) {
        fprintf(stderr, "sutest: identity switch did not stick\n");
        _exit(126);
    }
}

static void run_payload(char **argv, int keep_groups)
{
    switch_identity(keep_groups);
    reset_signals();
    execvp(argv[0], argv);
    fprintf(stderr, "sutest: cannot execute %s: %s\n", argv[0], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
}

int main(int argc, char **argv)
{
    int keep_groups = 0, linger = 1, opt;
    while ((opt = getopt(argc, argv, "+kn")) != -1) {
        switch (opt) {
        case 'k': keep_groups = 1; break;
        case 'n': linger = 0; break;
        default:
            fprintf(stderr, "usage: sutest [-k] [-n] command [args...]\n");
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: sutest [-k] [-n] command [args...]\n");
        return 2;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "sutest: must run as root\n");
        return 2;
    }
    if (!linger)
        run_payload(argv + optind, keep_groups);

    /* Block the forwarded signals around fork so none is lost before child_pid is set. */
    static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM,
                                    SIGXCPU};
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaddset(&block, forwarded[i]);
    sigprocmask(SIG_BLOCK, &block, &old);

    pid_t pid = fork();
    if (pid < 0) {
        perror("sutest: fork");
        return 126;
    }
    if (pid == 0)
        run_payload(argv + optind, keep_groups);

    child_pid = pid;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &sa, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);

    int status;
    for (;;) {
        pid_t got = waitpid(pid, &status, 0);
        if (got == pid)
            break;
        if (got < 0 && errno != EINTR) {
            perror("sutest: waitpid");
            return 126;
        }
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
