/*
 * netsock: opens a UDP/IPv4 socket that is bound to one network interface
 * (SO_BINDTODEVICE) before it is bound to its port, and hands the fd to
 * node:dgram (socket.bind({ fd })).
 *
 * Why native: a DHCP server must bind 0.0.0.0:67 to receive broadcasts from
 * clients that have no address yet, and node:dgram offers no way to restrict
 * such a socket to one interface. SO_BINDTODEVICE makes the kernel deliver
 * only packets that arrived on that interface and route replies out of it,
 * so metalboot never answers on an interface it was not told to serve.
 * Setting it before bind() leaves no window in which other interfaces'
 * packets are queued. A raw/packet socket would do too, but would need us to
 * build IP/UDP headers and would bypass the kernel's UDP demultiplexing.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include "netsock.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Fills `sa` with a dotted-quad IPv4 address and a port; -1 when the address does not parse. */
int ipv4_sockaddr(const char *address, uint32_t port, struct sockaddr_in *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, address, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Throws an Error "what: strerror(err)" with code "E<errno>"; returns NULL for the caller to return. */
napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  char code[32];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  snprintf(code, sizeof code, "E%d", err);
  napi_throw_error(env, code, msg);
  return NULL;
}

/*
 * openUdp4(address: string, port: number, device: string | '', broadcast: boolean,
 *          reuse: boolean, rcvbuf: number): number
 * rcvbuf > 0 asks for that receive buffer with SO_RCVBUFFORCE (CAP_NET_ADMIN:
 * past net.core.rmem_max, which is small by default and per network
 * namespace), falling back to SO_RCVBUF. A boot storm after a power cut
 * arrives as a burst; a deep buffer absorbs it instead of dropping.
 */
static napi_value open_udp4(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6) {
    napi_throw_type_error(env, NULL, "openUdp4(address, port, device, broadcast, reuse, rcvbuf)");
    return NULL;
  }
  char address[INET_ADDRSTRLEN + 1] = {0};
  char device[IFNAMSIZ + 1] = {0};
  size_t len = 0;
  uint32_t port = 0;
  bool broadcast = false, reuse = false;
  int32_t rcvbuf = 0;
  if (napi_get_value_int32(env, argv[5], &rcvbuf) != napi_ok) {
    napi_throw_type_error(env, NULL, "openUdp4: rcvbuf must be a number");
    return NULL;
  }
  if (napi_get_value_string_utf8(env, argv[0], address, sizeof address, &len) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &port) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], device, sizeof device, &len) != napi_ok ||
      napi_get_value_bool(env, argv[3], &broadcast) != napi_ok ||
      napi_get_value_bool(env, argv[4], &reuse) != napi_ok || port > 65535) {
    napi_throw_type_error(env, NULL, "openUdp4: bad argument types");
    return NULL;
  }
  if (len >= IFNAMSIZ) {
    napi_throw_range_error(env, NULL, "openUdp4: interface name too long");
    return NULL;
  }
  struct sockaddr_in sa;
  if (ipv4_sockaddr(address, port, &sa) < 0) {
    napi_throw_range_error(env, NULL, "openUdp4: bad IPv4 address");
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1;
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
    int e = errno; close(fd); return throw_errno(env, "setsockopt(SO_REUSEADDR)", e);
  }
  if (broadcast && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0) {
    int e = errno; close(fd); return throw_errno(env, "setsockopt(SO_BROADCAST)", e);
  }
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0) {
    /* Without CAP_NET_ADMIN: as much as rmem_max allows. */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  if (device[0] != '\0' &&
      setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device, (socklen_t)strlen(device) + 1) < 0) {
    int e = errno; close(fd); return throw_errno(env, "setsockopt(SO_BINDTODEVICE)", e);
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno; close(fd); return throw_errno(env, "bind", e);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

/* closeFd(fd): for error paths before node:dgram owns the fd. */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 1 &&
      napi_get_value_int32(env, argv[0], &fd) == napi_ok && fd > 2) {
    close(fd);
  }
  return NULL;
}

/*
 * notify(socketPath: string, state: string): undefined
 * The sd_notify(3) protocol without libsystemd: one AF_UNIX datagram with the
 * state text (e.g. "READY=1\nSTATUS=...") to $NOTIFY_SOCKET. A leading '@'
 * names an abstract socket (sun_path starts with NUL, no terminator). Node
 * cannot send unix datagrams itself. Non-blocking: a full receive queue is
 * an error (EAGAIN) for the caller to log, never a stalled event loop. The
 * kernel attaches our credentials when systemd asks for them (SO_PASSCRED),
 * which is how NotifyAccess=main knows the sender. Throws on failure.
 */
static napi_value notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) {
    napi_throw_type_error(env, NULL, "notify(socketPath, state)");
    return NULL;
  }
  struct sockaddr_un sa;
  char path[sizeof sa.sun_path + 2];
  size_t plen = 0, slen = 0;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], NULL, 0, &slen) != napi_ok) {
    napi_throw_type_error(env, NULL, "notify: socketPath and state must be strings");
    return NULL;
  }
  /* The buffer holds one more byte than sun_path: a longer path was truncated. */
  if (plen < 2 || plen > sizeof sa.sun_path || (path[0] != '/' && path[0] != '@')) {
    napi_throw_range_error(env, NULL, "notify: socketPath must be an absolute path or @abstract name that fits sun_path");
    return NULL;
  }
  if (slen == 0 || slen > 65536) {
    napi_throw_range_error(env, NULL, "notify: state must be 1..65536 bytes");
    return NULL;
  }
  char *state = malloc(slen + 1);
  if (state == NULL) return throw_errno(env, "malloc", ENOMEM);
  if (napi_get_value_string_utf8(env, argv[1], state, slen + 1, &slen) != napi_ok) {
    free(state);
    napi_throw_type_error(env, NULL, "notify: bad state");
    return NULL;
  }
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, plen);
  if (path[0] == '@') sa.sun_path[0] = '\0';
  /* Abstract names are exactly plen bytes; paths get their NUL when there is room. */
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/' && plen < sizeof sa.sun_path ? 1 : 0));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { int e = errno; free(state); return throw_errno(env, "socket(AF_UNIX)", e); }
  ssize_t n = sendto(fd, state, slen, MSG_NOSIGNAL, (struct sockaddr *)&sa, alen);
  int e = errno;
  close(fd);
  free(state);
  if (n < 0) return throw_errno(env, "sendto(NOTIFY_SOCKET)", e);
  if ((size_t)n != slen) return throw_errno(env, "sendto(NOTIFY_SOCKET): short write", EMSGSIZE);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"openUdp4", NULL, open_udp4, NULL, NULL, NULL, napi_default, NULL},
    {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_default, NULL},
    {"notify", NULL, notify, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  udp_pump_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
