/* Distinct free loopback ports for the benches' nodes: all bound at once, then closed (the
 * short race with other processes is harmless in practice). */
#ifndef CRAFT_BENCH_LOOPBACK_PORTS_H
#define CRAFT_BENCH_LOOPBACK_PORTS_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* Fills ports[1..n] (n <= 16); 0 or -1 if a socket could not be bound. */
static inline int bench_pick_ports(uint16_t *ports, int n)
{
    int fds[16];
    int err = n > 16 ? -1 : 0;
    for (int i = 0; i < n && i < 16; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
            err = -1;
        } else {
            ports[i + 1] = ntohs(a.sin_port);
        }
    }
    for (int i = 0; i < n && i < 16; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    return err;
}

#endif
