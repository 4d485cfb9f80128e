/* A gLExec-equivalent launcher on Debian's real LCMAPS, for the benchmark only.
 *
 * Installed setuid root by bench/run.py (and removed when the run ends). It does what a gLExec
 * call does on the C stack, in the same order, so the benchmark compares whole calls:
 *   1. read GLEXEC_CLIENT_CERT with the caller's effective uid (root never opens the path),
 *   2. lcmaps_init_and_logfile + lcmaps_run_with_pem_and_return_account with the site's
 *      lcmaps.db (verify-proxy, VOMS extraction by the core, pool/VOMS pool accounts),
 *   3. write the target proxy /tmp/x509up_u<uid> as the target, log one syslog-style line,
 *   4. setgroups/setgid/setuid to the mapping and exec the command with a fixed environment.
 * Paths are compiled in (-DDB_FILE=... -DLOG_FILE=... -DCERT_DIR=... -DVOMS_DIR=...);
 * argv[1] chooses one of the policies in DB_FILE; argv[2...] is the command.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <lcmaps/lcmaps_basic.h>

#define MAX_PROXY (256 * 1024)

static int fail(int code, const char *what)
{
    fprintf(stderr, "lcmaps-driver: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    return code;
}

static char *read_as_caller(const char *path, uid_t caller)
{
    static char buf[MAX_PROXY + 1];
    struct stat st;
    ssize_t n, total = 0;
    int fd;

    if (setresuid(-1, caller, -1) != 0)
        return NULL;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (setresuid(-1, 0, -1) != 0)
        _exit(202);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != caller ||
        st.st_size > MAX_PROXY) {
        close(fd);
        return NULL;
    }
    while ((n = read(fd, buf + total, MAX_PROXY - total)) > 0)
        total += n;
    close(fd);
    buf[total] = '\0';
    return buf;
}

static int write_target_proxy(const char *pem, uid_t uid, gid_t gid)
{
    char path[64];
    int fd, rc = 0;
    size_t len = strlen(pem);

    snprintf(path, sizeof path, "/tmp/x509up_u%u", (unsigned)uid);
    if (setresgid(-1, gid, -1) != 0 || setresuid(-1, uid, -1) != 0)
        return -1;
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, pem, len) != (ssize_t)len)
        rc = -1;
    if (fd >= 0)
        close(fd);
    if (setresuid(-1, 0, -1) != 0 || setresgid(-1, 0, -1) != 0)
        _exit(202);
    return rc;
}

int main(int argc, char **argv)
{
    uid_t caller = getuid(), uid = 0;
    gid_t *pgids = NULL, *sgids = NULL, groups[64];
    int npg = 0, nsg = 0, i, ng;
    char *pool = NULL, *pem, *policies[1];
    const char *proxy = getenv("GLEXEC_CLIENT_CERT");
    FILE *log;
    static char *env[] = {"PATH=/usr/bin:/bin", "HOME=/", NULL};

    if (argc < 3)
        return fail(201, "usage: lcmaps-driver POLICY COMMAND [ARGS...]");
    if (geteuid() != 0)
        return fail(202, "not setuid root");
    if (proxy == NULL || proxy[0] != '/')
        return fail(201, "GLEXEC_CLIENT_CERT is not an absolute path");
    pem = read_as_caller(proxy, caller);
    if (pem == NULL)
        return fail(201, "cannot read the proxy as the caller");
    if (clearenv() != 0 || setenv("LCMAPS_DB_FILE", DB_FILE, 1) != 0 ||
        setenv("X509_CERT_DIR", CERT_DIR, 1) != 0 || setenv("X509_VOMS_DIR", VOMS_DIR, 1) != 0 ||
        setenv("LCMAPS_DEBUG_LEVEL", "3", 1) != 0)
        return fail(202, "environment");
    if (lcmaps_init_and_logfile(LOG_FILE, NULL, 1) != 0)
        return fail(202, "lcmaps_init failed");
    policies[0] = argv[1];
    if (lcmaps_run_with_pem_and_return_account(NULL, pem, 0, NULL, 1, policies, &uid, &pgids,
                                               &npg, &sgids, &nsg, &pool) != 0 || npg < 1)
        return fail(203, "LCMAPS refused the mapping");
    lcmaps_term();
    if (uid == 0)
        return fail(203, "mapped to root");
    if (write_target_proxy(pem, uid, pgids[0]) != 0)
        return fail(202, "cannot write the target proxy");
    log = fopen(LOG_FILE, "a");
    if (log == NULL)
        return fail(202, "cannot open the log");
    fprintf(log, "lcmaps-driver: real_uid(%u)->mapped_uid(%u),mapped_gid(%u) pool(%s) cmd: %s\n",
            (unsigned)caller, (unsigned)uid, (unsigned)pgids[0], pool ? pool : "", argv[2]);
    fclose(log);
    ng = 0;
    groups[ng++] = pgids[0];
    for (i = 0; i < nsg && ng < 64; i++)
        groups[ng++] = sgids[i];
    if (setgroups(ng, groups) != 0 || setgid(pgids[0]) != 0 || setuid(uid) != 0)
        return fail(202, "identity switch failed");
    if (getuid() != uid || geteuid() != uid)
        return fail(202, "identity switch not complete");
    execve(argv[2], argv + 2, env);
    return fail(errno == ENOENT ? 201 : 126, "exec failed");
}
