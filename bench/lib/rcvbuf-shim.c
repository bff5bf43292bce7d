/*
 * LD_PRELOAD shim for the load generator only (perfdhcp in bench/dhcp):
 * every UDP socket it opens gets a receive buffer of $MBBENCH_RCVBUF bytes
 * (SO_RCVBUFFORCE, so net.core.rmem_max does not cap it; needs root).
 * Without it perfdhcp keeps the kernel default (net.core.rmem_default, about
 * 208 KiB, which a network namespace cannot change) and loses replies that a
 * server sends in bursts whenever perfdhcp is briefly descheduled: those
 * losses would be counted against the server. Servers are never given this.
 *
 * Build: cc -shared -fPIC -O2 -o rcvbuf-shim.so rcvbuf-shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>

int socket(int domain, int type, int protocol)
{
    static int (*real_socket)(int, int, int);
    if (!real_socket)
        real_socket = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
    int fd = real_socket(domain, type, protocol);
    if (fd >= 0 && (domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_DGRAM) {
        const char *e = getenv("MBBENCH_RCVBUF");
        int size = e ? atoi(e) : 0;
        if (size > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    return fd;
}
