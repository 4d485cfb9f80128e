/*
 * glexec-py-waiter: the lingering launcher's resident image while a long payload runs.
 *
 * Runs as: root in all ids (the lingering launcher after waiter.hand_over, so the pilot still
 * cannot signal it), or as the caller in declare-only mode. Trusts: its argv, written by
 * glexec_py/launch/waiter.py, and the descriptors that came with it. Built by glexec-install
 * (glexec_py/tools/install.py) next to waiter.py; the launcher executes it through a checked
 * descriptor, never by path.
 *
 *   glexec-py-waiter PAYLOAD_PID PAYLOAD_PIDFD PILOT_PIDFD|-1 -- PYTHON_WAITER_ARGV...
 *
 * Why: the lingering parent stays resident for the whole job on every job slot, and even a
 * freshly started minimal Python waiter costs more than a bare interpreter (~8 MiB). This
 * program costs about one MiB and handles no event itself: as soon as anything happens it
 * execs the Python waiter with the argv it was given, and that one does today's work.
 *
 * "Anything" is: a forwarded signal arrives (they came blocked across execve and stay
 * blocked; a signalfd reports them but is never read, so the signal is still pending when the
 * Python waiter installs its handlers and unblocks it - nothing is lost and nothing takes its
 * default action), the payload exits (its pidfd becomes readable and stays so for the Python
 * waiter's poll), or the calling pilot exits (same). The pid, the parent, the child subreaper
 * flag, the payload as a child, the open descriptors and the pending signals all survive both
 * execs.
 *
 * The one thing it does itself: reap the zombies of re-parented orphans (daemons the payload
 * left that died since), so a long job does not pile them up under its launcher. It looks
 * first (waitid WNOWAIT) and never reaps the payload, whose status belongs to the Python
 * waiter. SIGCHLD is blocked and read from a second signalfd for that, and given back as it
 * was before the exec.
 *
 * On any failure of its own it execs the Python waiter at once; if even that exec fails it
 * retries every second (exiting would orphan the payload and lose the records).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_SYSTEM 202

extern char **environ;

/* waiter.FORWARDED: HUP INT QUIT USR1 USR2 ALRM TERM XCPU */
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM,
                                SIGXCPU};

static int parse_int(const char *text, long min, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > INT_MAX)
        return -1;
    *out = value;
    return 0;
}

static void exec_python_waiter(char **python_argv, const sigset_t *mask)
{
    sigprocmask(SIG_SETMASK, mask, NULL);
    for (int attempt = 0;; attempt++) {
        execve(python_argv[0], python_argv, environ);
        if (attempt == 0)
            dprintf(2, "glexec: cannot start the lingering launcher's waiter %s: %s; "
                       "retrying\n", python_argv[0], strerror(errno));
        sleep(1);
    }
}

/* Reap every dead child but the payload; 1 if the payload is dead too (leave it alone). */
static int reap_orphans(pid_t payload)
{
    for (;;) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT | __WALL) != 0)
            return 0; /* ECHILD: cannot happen while the payload lives; nothing to do */
        if (info.si_pid == 0)
            return 0;
        if (info.si_pid == payload)
            return 1;
        siginfo_t reaped;
        memset(&reaped, 0, sizeof reaped);
        if (waitid(P_PID, (id_t)info.si_pid, &reaped, WEXITED | WNOHANG | __WALL) != 0)
            return 0;
    }
}

static void drain(int fd)
{
    struct signalfd_siginfo info;
    while (read(fd, &info, sizeof info) == (ssize_t)sizeof info)
        ;
}

int main(int argc, char **argv)
{
    /* execve made us dumpable again: a process of this call must not be (no core, no ptrace
     * by the caller in declare-only mode). Before anything else; on failure the Python waiter
     * tries again. */
    int undumpable = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
    if (argc < 6 || strcmp(argv[4], "--") != 0) {
        dprintf(2, "glexec: usage: glexec-py-waiter PID PIDFD PILOT_PIDFD -- ARGV...\n");
        return EXIT_SYSTEM;
    }
    char **python_argv = argv + 5;
    sigset_t watched, chld, blocked, original;
    sigemptyset(&watched);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaddset(&watched, forwarded[i]);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    blocked = watched;
    sigaddset(&blocked, SIGCHLD);
    /* Already blocked by the launcher (and kept across execve); SIGCHLD is ours to read. */
    if (sigprocmask(SIG_BLOCK, &blocked, &original) != 0)
        exec_python_waiter(python_argv, &original);
    sigset_t handed_back = original;
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaddset(&handed_back, forwarded[i]);

    if (!undumpable)
        exec_python_waiter(python_argv, &handed_back);
    long pid, payload_fd, pilot_fd;
    if (parse_int(argv[1], 2, &pid) != 0 || parse_int(argv[2], 0, &payload_fd) != 0 ||
        parse_int(argv[3], -1, &pilot_fd) != 0)
        exec_python_waiter(python_argv, &handed_back);
    int signal_fd = signalfd(-1, &watched, SFD_CLOEXEC | SFD_NONBLOCK);
    int child_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0 || child_fd < 0)
        exec_python_waiter(python_argv, &handed_back);

    struct pollfd fds[4];
    nfds_t count = 0;
    fds[count++] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
    fds[count++] = (struct pollfd){.fd = (int)payload_fd, .events = POLLIN};
    fds[count++] = (struct pollfd){.fd = child_fd, .events = POLLIN};
    if (pilot_fd >= 0)
        fds[count++] = (struct pollfd){.fd = (int)pilot_fd, .events = POLLIN};
    if (reap_orphans((pid_t)pid))
        exec_python_waiter(python_argv, &handed_back);
    for (;;) {
        int ready = poll(fds, count, -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[0].revents || fds[1].revents || (count > 3 && fds[3].revents))
            break; /* a signal, the payload or the pilot: the Python waiter's business */
        if (fds[2].revents & ~POLLIN)
            break;
        if (fds[2].revents) {
            drain(child_fd);
            if (reap_orphans((pid_t)pid))
                break;
        }
    }
    exec_python_waiter(python_argv, &handed_back);
    return EXIT_SYSTEM;
}
