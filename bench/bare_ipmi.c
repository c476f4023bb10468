/*
 * bare_ipmi.c -- the floor the ipmi benchmark compares stockade with: plain libfreeipmi, no
 * stockade code, run as a whole process (exec, dynamic loading, session, exit).
 *
 *   bare_ipmi status USER PWFILE SESSION_MS RETRANS_MS HOST:PORT
 *       open an IPMI 2.0 session (cipher 3, ADMIN, opensesspriv workaround), Get Chassis Status,
 *       close; prints "on" or "off"; exit 0, or 1 on any error.
 *   bare_ipmi off USER PWFILE SESSION_MS RETRANS_MS HOST:PORT...
 *       one thread per BMC: open a session, Chassis Control power down, then read Get Chassis
 *       Status until it says off (at once, then after 50 ms doubling up to 1 s, as stockade's
 *       ipmi agent polls; give up after 20 s); prints "HOST:PORT: off" per confirmed BMC; exit 0
 *       only when every BMC was confirmed off.
 * The password is read from PWFILE (first line), never from the command line.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <freeipmi/freeipmi.h>

static const char *g_user;
static char g_pass[256];
static unsigned g_session_ms, g_retrans_ms;

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

int main(int argc, char **argv)
{
    if (argc < 7 || (strcmp(argv[1], "status") && strcmp(argv[1], "off")) ||
        (!strcmp(argv[1], "status") && argc != 7)) {
        fprintf(stderr, "usage: bare_ipmi status|off USER PWFILE SESSION_MS RETRANS_MS HOST:PORT...\n");
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
    if (!strcmp(argv[1], "status")) {
        ipmi_ctx_t c = open_session(argv[6]);
        if (!c)
            return 1;
        int st = power_state(c);
        close_session(c);
        if (st < 0)
            return 1;
        printf("%s\n", st ? "on" : "off");
        return 0;
    }
    int n = argc - 6, failed = 0;
    pthread_t *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; ++i)
        if (pthread_create(&t[i], NULL, off_one, argv[6 + i]) != 0)
            return 1;
    for (int i = 0; i < n; ++i) {
        void *r = NULL;
        pthread_join(t[i], &r);
        failed += r != NULL;
    }
    free(t);
    fflush(stdout);
    return failed ? 1 : 0;
}
