/* bench/tpsgw/idle_sessions.c - idle-session memory of one tpsgw (make bench; not a test):
 * opens connections up to each LEVEL, each sending the POST head and a Begin Op (format) and
 * then waiting until tpsgw's first request of the session (a TOKEN_PDU or a login prompt) has
 * arrived, then stalls there. At each level it reads VmRSS and Threads of the tpsgw process
 * from /proc and prints a row. Connections are closed at exit.
 *
 *   idle_sessions --port P --pid PID LEVEL...     (levels ascending, at most 20000)
 * Exits 0 when every level was reached, 1 otherwise. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/tpsmsg.h"

#define MAX_CONNS 20000

static long
proc_kb(long pid, const char *field)
{
    char path[64], line[256];
    size_t fl = strlen(field);
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static long
proc_fds(long pid)
{
    char path[64];
    struct dirent *e;
    long n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Opens one session: head + Begin Op, then reads until the first TPS message (a chunk holding
 * "msg_type=") has arrived. Returns the fd, or -1. */
static int
open_session(unsigned port, const struct cmn_buf *begin)
{
    struct sockaddr_in a;
    char req[1024], in[4096];
    size_t got = 0;
    int fd, n;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("idle_sessions: socket");
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("idle_sessions: connect");
        close(fd);
        return -1;
    }
    n = snprintf(req, sizeof(req),
                 "POST /tps/tps HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "%zx\r\n%.*s\r\n",
                 begin->len, (int)begin->len, (const char *)begin->data);
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t r;

        if (poll(&p, 1, 10000) != 1) {
            fprintf(stderr, "idle_sessions: no first message within 10 s\n");
            break;
        }
        r = read(fd, in + got, sizeof(in) - 1 - got);
        if (r <= 0) {
            fprintf(stderr, "idle_sessions: connection closed before the first message\n");
            break;
        }
        got += (size_t)r;
        in[got] = '\0';
        if (strstr(in, "msg_type=") != NULL)
            return fd;
        if (strncmp(in, "HTTP/1.1 503", 12) == 0 || got == sizeof(in) - 1) {
            fprintf(stderr, "idle_sessions: %.40s\n", in);
            break;
        }
    }
    close(fd);
    return -1;
}

int
main(int argc, char **argv)
{
    static int fds[MAX_CONNS];
    struct cmn_buf begin;
    unsigned long port = 0;
    long pid = 0, rss0, thr0;
    int nfd = 0, rc = 0, argi = 1;

    for (; argi + 1 < argc && argv[argi][0] == '-'; argi += 2) {
        if (strcmp(argv[argi], "--port") == 0)
            port = strtoul(argv[argi + 1], NULL, 10);
        else if (strcmp(argv[argi], "--pid") == 0)
            pid = strtol(argv[argi + 1], NULL, 10);
        else
            break;
    }
    if (port == 0 || port > 65535 || pid <= 0 || argi >= argc) {
        fprintf(stderr, "usage: idle_sessions --port P --pid PID LEVEL...\n");
        return 2;
    }
    cmn_buf_init(&begin, 4096);
    if (cmn_tpsmsg_build_begin_op(&begin, CMN_TPS_OP_FORMAT, "tokenType=userKey") != CMN_OK)
        return 2;
    rss0 = proc_kb(pid, "VmRSS");
    thr0 = proc_kb(pid, "Threads");
    if (rss0 < 0) {
        fprintf(stderr, "idle_sessions: no process %ld\n", pid);
        return 2;
    }
    printf("%9s %10s %8s %7s %14s %16s %4s\n", "sessions", "VmRSS kB", "threads", "fds",
           "kB per session", "connect+1st ms", "ok");
    printf("%9d %10ld %8ld %7ld %14s %16s %4s\n", 0, rss0, thr0, proc_fds(pid), "-", "-", "-");
    for (; argi < argc; argi++) {
        long level = strtol(argv[argi], NULL, 10), rss;
        struct timespec t0, t1, pause = {.tv_sec = 0, .tv_nsec = 500000000};
        double ms;
        int opened = 0;

        if (level <= nfd || level > MAX_CONNS) {
            fprintf(stderr, "idle_sessions: level %s: must rise, at most %d\n", argv[argi],
                    MAX_CONNS);
            rc = 1;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (nfd < level) {
            int fd = open_session((unsigned)port, &begin);

            if (fd < 0)
                break;
            fds[nfd++] = fd;
            opened++;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        nanosleep(&pause, NULL); /* let the workers settle */
        rss = proc_kb(pid, "VmRSS");
        printf("%9d %10ld %8ld %7ld %14.1f %16.3f %4s\n", nfd, rss, proc_kb(pid, "Threads"),
               proc_fds(pid), nfd > 0 ? (double)(rss - rss0) / nfd : 0.0,
               opened > 0 ? ms / opened : 0.0, nfd == level ? "yes" : "NO");
        fflush(stdout);
        if (nfd != level) {
            rc = 1;
            break;
        }
    }
    for (int i = 0; i < nfd; i++)
        close(fds[i]);
    cmn_buf_cleanup(&begin);
    return rc;
}
