/*
 * glexec front end: the only set-id code of glexec-py.
 *
 * Runs as: setuid root (identity-mapping mode) or as the caller (declare-only mode).
 * Trusts: nothing from the caller but argv words and environment bytes, which it passes on
 * as data. Everything it needs is compiled in by glexec-install:
 *   GLEXEC_PYTHON        the interpreter (root-owned, from the launcher's own environment)
 *   GLEXEC_BOOTSTRAP     glexec_py/bootstrap.py in that environment
 *   GLEXEC_SITE          the environment's site-packages directory
 *   GLEXEC_CONFIG_FILE   glexec.conf
 *   GLEXEC_MODE          "setuid" or "declare-only"
 *
 * It does, in this order (sudo's and Apptainer's order: protect before reading anything):
 * refuse argc == 0 (CVE-2021-4034 class); put /dev/null on any of fds 0-2 that is closed, so no
 * later file can become "stderr"; close every other descriptor; reset signal dispositions and
 * unblock everything; copy the caller's environment -- bounded, as opaque bytes -- into a
 * sealed memfd on fd 3, so not one caller variable reaches the interpreter's own environment
 * (no PYTHON*, LD_*, locale); in setuid mode become root in real, effective and saved ids
 * (the caller then cannot signal or ptrace the Python process), leaving the supplementary
 * groups as inherited because they carry the batch system's tracking gids; exec the fixed
 * interpreter with -I -S -B, a fixed two-variable environment and the caller's uid, gid,
 * parent pid and umask as arguments taken from the kernel.
 *
 * In setuid mode it also raises its own rlimits (see raise_own_limits) and hands the caller's
 * values on, so that the payload gets them back.
 *
 * It does not read any file, parse configuration, resolve PATH, look at the command, change
 * the session, process group or cgroup, or log. On its own failure it prints one line
 * and exits 202 (201 for a caller error such as an empty argv or an oversized environment).
 * A variable given twice is refused by the Python side (environment.parse_env_blob), which
 * logs the refusal and escapes the name; here it would be neither logged nor safe to print.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef GLEXEC_PYTHON
#error "GLEXEC_PYTHON must be defined by glexec-install"
#endif
#ifndef GLEXEC_BOOTSTRAP
#error "GLEXEC_BOOTSTRAP must be defined by glexec-install"
#endif
#ifndef GLEXEC_SITE
#error "GLEXEC_SITE must be defined by glexec-install"
#endif
#ifndef GLEXEC_CONFIG_FILE
#error "GLEXEC_CONFIG_FILE must be defined by glexec-install"
#endif
#ifndef GLEXEC_MODE
#error "GLEXEC_MODE must be defined by glexec-install"
#endif

#define EXIT_CLIENT 201
#define EXIT_SYSTEM 202
#define ENV_FD 3
#define MAX_ENV_ENTRIES 8192
#define MAX_ENV_BYTES (4 * 1024 * 1024)
#define MAX_ARGS 65536

extern char **environ;

static void die(int code, const char *message)
{
    /* fds 0-2 are guaranteed open by now (or this is the very first check) */
    dprintf(2, "glexec: %s\n", message);
    _exit(code);
}

static void fix_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
            int nullfd = open("/dev/null", O_RDWR);
            if (nullfd == -1)
                _exit(EXIT_SYSTEM);
            if (nullfd != fd) {
                if (dup2(nullfd, fd) == -1)
                    _exit(EXIT_SYSTEM);
                close(nullfd);
            }
        }
    }
}

static void close_other_fds(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 1048576)
        max = 1048576;
    for (long fd = 3; fd < max; fd++)
        close((int)fd);
}

static void reset_signals(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        sigaction(sig, &dfl, NULL); /* reserved glibc signals fail harmlessly */
    }
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
        die(EXIT_SYSTEM, "cannot reset the signal mask");
}

static void seal_environment(void)
{
    size_t count = 0, total = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        if (++count > MAX_ENV_ENTRIES)
            die(EXIT_CLIENT, "too many environment variables");
        size_t len = strlen(*e);
        if (len > MAX_ENV_BYTES || total + len + 1 > MAX_ENV_BYTES)
            die(EXIT_CLIENT, "environment too large");
        total += len + 1;
    }
    int fd = memfd_create("glexec-caller-env", MFD_ALLOW_SEALING);
    if (fd == -1)
        die(EXIT_SYSTEM, "cannot create the environment descriptor");
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        size_t len = strlen(*e) + 1; /* with the NUL separator */
        const char *p = *e;
        while (len > 0) {
            ssize_t w = write(fd, p, len);
            if (w <= 0) {
                if (w < 0 && errno == EINTR)
                    continue;
                if (w < 0 && errno == EFBIG)
                    die(EXIT_SYSTEM, "the caller's RLIMIT_FSIZE is too small to run glexec");
                die(EXIT_SYSTEM, "cannot write the environment descriptor");
            }
            p += w;
            len -= (size_t)w;
        }
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        die(EXIT_SYSTEM, "cannot seal the environment descriptor");
    if (lseek(fd, 0, SEEK_SET) != 0)
        die(EXIT_SYSTEM, "cannot rewind the environment descriptor");
    if (fd != ENV_FD) {
        if (dup2(fd, ENV_FD) == -1)
            die(EXIT_SYSTEM, "cannot place the environment descriptor");
        close(fd);
    } else if (fcntl(fd, F_SETFD, 0) != 0) {
        die(EXIT_SYSTEM, "cannot keep the environment descriptor open");
    }
}

/*
 * The caller sets every rlimit of this process. Left alone, they let the caller starve the root
 * side into failing at a moment of its choosing: RLIMIT_FSIZE just above the log's size lets
 * the decision record through and kills the completion record (EGI-SVG-2011-1641 class),
 * RLIMIT_CPU kills the lingering parent and with it the clean-up of leftovers, a tiny
 * RLIMIT_NOFILE or RLIMIT_AS breaks the interpreter before it can report anything. So, like
 * sudo's unlimit_sudo, root raises them for itself (as far as its capabilities allow), and
 * the caller's values travel (as numbers
 * from the kernel, never from the caller's environment) in GLEXEC_CALLER_RLIMITS to the
 * payload child, which puts them back just before exec: the payload keeps the batch
 * system's limits.
 */
static const int raised_limits[] = {RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK,
                                    RLIMIT_NOFILE, RLIMIT_AS, RLIMIT_CORE};
#define NOFILE_FLOOR 1024
#define STACK_FLOOR (8UL * 1024 * 1024)
#define NOFILE_MIN 32
#define MEMORY_MIN (256UL * 1024 * 1024)

static void append_limit(char *buf, size_t size, size_t *used, int resource, rlim_t soft,
                         rlim_t hard)
{
    char soft_s[24], hard_s[24];
    if (soft == RLIM_INFINITY)
        strcpy(soft_s, "inf");
    else
        snprintf(soft_s, sizeof soft_s, "%llu", (unsigned long long)soft);
    if (hard == RLIM_INFINITY)
        strcpy(hard_s, "inf");
    else
        snprintf(hard_s, sizeof hard_s, "%llu", (unsigned long long)hard);
    int n = snprintf(buf + *used, size - *used, "%s%d:%s:%s", *used > 22 ? "," : "", resource,
                     soft_s, hard_s);
    if (n < 0 || (size_t)n >= size - *used)
        die(EXIT_SYSTEM, "cannot record the caller's resource limits");
    *used += (size_t)n;
}

static void raise_own_limits(char *saved, size_t size)
{
    size_t used = (size_t)snprintf(saved, size, "GLEXEC_CALLER_RLIMITS=");
    for (size_t i = 0; i < sizeof raised_limits / sizeof raised_limits[0]; i++) {
        int resource = raised_limits[i];
        struct rlimit old, new;
        if (getrlimit(resource, &old) != 0)
            die(EXIT_SYSTEM, "cannot read the caller's resource limits");
        append_limit(saved, size, &used, resource, old.rlim_cur, old.rlim_max);
        new.rlim_cur = new.rlim_max = RLIM_INFINITY;
        if (resource == RLIMIT_CORE) {
            /* a root process never dumps core; the hard limit stays so the payload child
             * (no longer privileged) can get the caller's soft limit back */
            new.rlim_cur = 0;
            new.rlim_max = old.rlim_max;
        } else if (resource == RLIMIT_NOFILE) {
            new.rlim_cur = new.rlim_max = NOFILE_FLOOR;
            if (old.rlim_max != RLIM_INFINITY && old.rlim_max > NOFILE_FLOOR)
                new.rlim_cur = new.rlim_max = old.rlim_max;
        } else if (resource == RLIMIT_STACK) {
            /* a bigger stack changes nothing else; an unlimited one changes the mmap layout */
            new.rlim_cur = old.rlim_cur != RLIM_INFINITY && old.rlim_cur < STACK_FLOOR
                               ? STACK_FLOOR : old.rlim_cur;
            new.rlim_max = RLIM_INFINITY;
        }
        if (setrlimit(resource, &new) == 0)
            continue;
        /* Without CAP_SYS_RESOURCE (a reduced bounding set) a hard limit cannot be raised:
         * take what the caller's hard limit allows. log.py refuses to start a payload when
         * RLIMIT_FSIZE leaves no room for the records of the run. */
        new.rlim_max = old.rlim_max;
        if (new.rlim_cur == RLIM_INFINITY || (old.rlim_max != RLIM_INFINITY &&
                                              new.rlim_cur > old.rlim_max))
            new.rlim_cur = old.rlim_max;
        if (setrlimit(resource, &new) != 0)
            die(EXIT_SYSTEM, "cannot set the launcher's resource limits");
        /* Below these the interpreter dies in ways it cannot report (ld.so's EMFILE, "Fatal
         * Python error" on a failed allocation): refuse cleanly before starting it. */
        if ((resource == RLIMIT_NOFILE && new.rlim_cur < NOFILE_MIN) ||
            ((resource == RLIMIT_AS || resource == RLIMIT_DATA) &&
             new.rlim_cur != RLIM_INFINITY && new.rlim_cur < MEMORY_MIN))
            die(EXIT_SYSTEM, "the caller's resource limits (RLIMIT_NOFILE, RLIMIT_AS or "
                             "RLIMIT_DATA) are too small to run glexec");
    }
}

int main(int argc, char **argv)
{
    /* Linux >= 5.18 turns an empty argv into {""}: refuse that form too. */
    if (argc < 1 || argv == NULL || argv[0] == NULL || argv[0][0] == '\0') {
        fix_std_fds();
        die(EXIT_CLIENT, "called without a program name (empty argv)");
    }
    fix_std_fds();
    close_other_fds();
    reset_signals();
    /* A write beyond RLIMIT_FSIZE must fail with EFBIG, not kill us silently; the payload
     * child puts every disposition back to default before exec. */
    signal(SIGXFSZ, SIG_IGN);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (argc > MAX_ARGS)
        die(EXIT_CLIENT, "too many arguments");

    /* Taken from the kernel before anything changes them. */
    uid_t uid = getuid();
    gid_t gid = getgid();
    pid_t invoker = getppid();
    mode_t mask = umask(077);

    /* before the memfd is written: a caller's RLIMIT_FSIZE of 1 would kill us there */
    static char saved_limits[512];
    if (strcmp(GLEXEC_MODE, "setuid") == 0 && geteuid() == 0)
        raise_own_limits(saved_limits, sizeof saved_limits);

    seal_environment();

    if (strcmp(GLEXEC_MODE, "setuid") == 0) {
        if (geteuid() != 0) {
            if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1)
                die(EXIT_SYSTEM, "not running privileged: no_new_privs is set, so the setuid "
                                 "bit has no effect here");
            die(EXIT_SYSTEM, "not running privileged: glexec is not installed setuid root");
        }
        if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)
            die(EXIT_SYSTEM, "cannot become root");
        uid_t r, e, s;
        if (getresuid(&r, &e, &s) != 0 || r != 0 || e != 0 || s != 0)
            die(EXIT_SYSTEM, "cannot become root");
    }

    char uid_s[24], gid_s[24], pid_s[24], mask_s[8];
    snprintf(uid_s, sizeof uid_s, "%u", (unsigned)uid);
    snprintf(gid_s, sizeof gid_s, "%u", (unsigned)gid);
    snprintf(pid_s, sizeof pid_s, "%d", (int)invoker);
    snprintf(mask_s, sizeof mask_s, "%03o", (unsigned)mask);

    const int fixed = 14;
    char **args = calloc((size_t)argc + fixed + 1, sizeof *args);
    if (args == NULL)
        die(EXIT_SYSTEM, "out of memory");
    int n = 0;
    args[n++] = GLEXEC_PYTHON;
    args[n++] = "-I";
    args[n++] = "-S";
    args[n++] = "-B";
    args[n++] = GLEXEC_BOOTSTRAP;
    args[n++] = uid_s;
    args[n++] = gid_s;
    args[n++] = pid_s;
    args[n++] = mask_s;
    args[n++] = GLEXEC_CONFIG_FILE;
    args[n++] = GLEXEC_MODE;
    args[n++] = GLEXEC_PYTHON;
    args[n++] = GLEXEC_SITE;
    args[n++] = "--";
    for (int i = 1; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;

    char *clean_env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8",
                         saved_limits[0] ? saved_limits : NULL, NULL};
    execve(GLEXEC_PYTHON, args, clean_env);
    die(EXIT_SYSTEM, "cannot start the launcher's interpreter");
    return EXIT_SYSTEM;
}
