/*
 * bare_ipmi.c -- the floor the ipmi benchmark compares stockade with: plain libfreeipmi, no
 * stockade code, run as a whole process (exec, dynamic loading, session, exit).
 *
 *   bare_ipmi status [--fork] USER PWFILE SESSION_MS RETRANS_MS HOST:PORT...
 *       per BMC: open an IPMI 2.0 session (cipher 3, ADMIN, opensesspriv workaround), Get Chassis
 *       Status, close.  One BMC: prints "on" or "off"; several: one thread per BMC, prints
 *       "HOST:PORT: on|off" per BMC.  Exit 0 when every BMC answered, else 1.
 *   bare_ipmi off [--fork] USER PWFILE SESSION_MS RETRANS_MS HOST:PORT...
 *       one thread per BMC: open a session, Chassis Control power down, then read Get Chassis
 *       Status until it says off (at once, then after 50 ms doubling up to 1 s, as stockade's
 *       ipmi agent polls; give up after 20 s); prints "HOST:PORT: off" per confirmed BMC; exit 0
 *       only when every BMC was confirmed off.
 *   --fork: each BMC's operation runs in a child forked for it (all at once) instead of a thread:
 *       the least a process per operation costs, which is what stockade's isolation is.
 * Built twice: bare_ipmi (C only) and bare_ipmi_cxx (the same code with libstdc++ loaded and
 * initialised, as in any C++ program).  The password is read from PWFILE (first line), never
 * from the command line.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <freeipmi/freeipmi.h>

static const char *g_user;
static char g_pass[256];
static unsigned g_session_ms, g_retrans_ms;
static int g_single; /* one status: the bare "on"/"off" answer */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ipmi_ctx_t open_session(const char *host)
{
    ipmi_ctx_t c = ipmi_ctx_create();
    if (!c)
        return NULL;
    if (ipmi_ctx_open_outofband_2_0(c, host, g_user, g_pass, NULL, 0, IPMI_PRIVILEGE_LEVEL_ADMIN, 3, g_session_ms,
                                    g_retrans_ms, IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_OPEN_SESSION_PRIVILEGE,
                                    IPMI_FLAGS_DEFAULT) < 0) {
        fprintf(stderr, "%s: %s\n", host, ipmi_ctx_errormsg(c));
        ipmi_ctx_destroy(c);
        return NULL;
    }
    return c;
}

/* 1 on, 0 off, -1 error */
static int power_state(ipmi_ctx_t c)
{
    fiid_obj_t o = fiid_obj_create(tmpl_cmd_get_chassis_status_rs);
    uint64_t on = 0;
    int r = -1;
    if (o && ipmi_cmd_get_chassis_status(c, o) == 0 && FIID_OBJ_GET(o, "current_power_state.power_is_on", &on) == 1)
        r = on ? 1 : 0;
    if (o)
        fiid_obj_destroy(o);
    return r;
}

static void close_session(ipmi_ctx_t c)
{
    ipmi_ctx_close(c);
    ipmi_ctx_destroy(c);
}

static void *off_one(void *arg)
{
    const char *host = arg;
    ipmi_ctx_t c = open_session(host);
    if (!c)
        return (void *)1;
    fiid_obj_t o = fiid_obj_create(tmpl_cmd_chassis_control_rs);
    int ok = o && ipmi_cmd_chassis_control(c, IPMI_CHASSIS_CONTROL_POWER_DOWN, o) == 0;
    if (o)
        fiid_obj_destroy(o);
    int64_t give_up = now_ms() + 20000, interval = 50;
    int confirmed = 0;
    while (ok && !confirmed) {
        int st = power_state(c);
        if (st == 0) {
            confirmed = 1;
            break;
        }
        if (now_ms() >= give_up)
            break;
        struct timespec ts = {interval / 1000, (interval % 1000) * 1000000};
        nanosleep(&ts, NULL);
        interval = interval * 2 > 1000 ? 1000 : interval * 2;
    }
    close_session(c);
    if (confirmed)
        printf("%s: off\n", host);
    else
        fprintf(stderr, "%s: not confirmed off\n", host);
    return confirmed ? NULL : (void *)1;
}

static void *status_one(void *arg)
{
    const char *host = arg;
    ipmi_ctx_t c = open_session(host);
    if (!c)
        return (void *)1;
    int st = power_state(c);
    close_session(c);
    if (st < 0)
        return (void *)1;
    if (g_single)
        printf("%s\n", st ? "on" : "off");
    else
        printf("%s: %s\n", host, st ? "on" : "off");
    return NULL;
}

/* One child per host, all at once; the number that failed. */
static int run_forked(void *(*op)(void *), char **hosts, int n)
{
    pid_t *p = calloc((size_t)n, sizeof *p);
    int failed = 0;
    fflush(stdout);
    for (int i = 0; i < n; ++i) {
        p[i] = fork();
        if (p[i] == 0) {
            void *r = op(hosts[i]);
            fflush(stdout);
            _exit(r ? 1 : 0);
        }
        failed += p[i] < 0;
    }
    for (int i = 0; i < n; ++i) {
        int st = 0;
        if (p[i] > 0 && (waitpid(p[i], &st, 0) != p[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0))
            ++failed;
    }
    free(p);
    return failed;
}

static int run_threaded(void *(*op)(void *), char **hosts, int n)
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    int failed = 0;
    for (int i = 0; i < n; ++i)
        if (pthread_create(&t[i], NULL, op, hosts[i]) != 0)
            return n;
    for (int i = 0; i < n; ++i) {
        void *r = NULL;
        pthread_join(t[i], &r);
        failed += r != NULL;
    }
    free(t);
    return failed;
}

int main(int argc, char **argv)
{
    int forked = 0;
    if (argc > 2 && !strcmp(argv[2], "--fork")) { /* then as if it was not there */
        forked = 1;
        for (int i = 2; i + 1 < argc; ++i)
            argv[i] = argv[i + 1];
        --argc;
    }
    /* argv[1] is the command, argv[2..5] the settings, argv[6..] the hosts */
    if (argc < 7 || (strcmp(argv[1], "status") && strcmp(argv[1], "off"))) {
        fprintf(stderr, "usage: bare_ipmi status|off [--fork] USER PWFILE SESSION_MS RETRANS_MS HOST:PORT...\n");
        return 2;
    }
    g_user = argv[2];
    FILE *f = fopen(argv[3], "r");
    if (!f || !fgets(g_pass, sizeof g_pass, f)) {
        fprintf(stderr, "bare_ipmi: cannot read %s\n", argv[3]);
        return 2;
    }
    fclose(f);
    g_pass[strcspn(g_pass, "\r\n")] = 0;
    g_session_ms = (unsigned)strtoul(argv[4], NULL, 10);
    g_retrans_ms = (unsigned)strtoul(argv[5], NULL, 10);
    const int n = argc - 6;
    void *(*op)(void *) = strcmp(argv[1], "status") ? off_one : status_one;
    g_single = op == status_one && n == 1;
    int failed;
    if (forked)
        failed = run_forked(op, argv + 6, n);
    else if (g_single)
        failed = op(argv[6]) != NULL;
    else
        failed = run_threaded(op, argv + 6, n);
    fflush(stdout);
    return failed ? 1 : 0;
}
