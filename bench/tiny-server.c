/* Minimal keep-alive HTTP/1.1 server on 127.0.0.1:$PORT: answers "ok\n" to
 * every request (one per blank line ending a header block). No output.
 * START_DELAY_MS=n: sleep that long before listening (a slower app).
 * LISTEN_FDS=1 (socket activation): serve the listening socket on fd 3. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#define MAXC 256
int main(void) {
    const char *p = getenv("PORT"), *d = getenv("START_DELAY_MS");
    if (d) { struct timespec ts = {atoi(d) / 1000, (atoi(d) % 1000) * 1000000L}; nanosleep(&ts, 0); }
    const char *fds_env = getenv("LISTEN_FDS");
    int ls = 3, one = 1;
    if (!fds_env || atoi(fds_env) != 1) {
        ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p ? atoi(p) : 8080)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) return 1;
    }
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
    static const char end[] = "\r\n\r\n";
    struct pollfd fds[MAXC] = {{.fd = ls, .events = POLLIN}};
    int state[MAXC] = {0}, n = 1;
    char buf[8192];
    for (;;) {
        if (poll(fds, n, -1) < 0) continue;
        for (int i = n - 1; i >= 1; i--) {
            if (!fds[i].revents) continue;
            ssize_t r = read(fds[i].fd, buf, sizeof buf);
            if (r <= 0) { close(fds[i].fd); fds[i] = fds[n - 1]; state[i] = state[n - 1]; n--; continue; }
            for (ssize_t j = 0; j < r; j++) {
                state[i] = buf[j] == end[state[i]] ? state[i] + 1 : (buf[j] == '\r');
                if (state[i] == 4) { state[i] = 0; if (write(fds[i].fd, resp, sizeof resp - 1) < 0) break; }
            }
        }
        if (fds[0].revents & POLLIN) {
            int c = accept4(ls, 0, 0, SOCK_CLOEXEC);
            if (c >= 0 && n < MAXC) { fds[n].fd = c; fds[n].events = POLLIN; fds[n].revents = 0; state[n++] = 0; }
            else if (c >= 0) close(c);
        }
    }
}
