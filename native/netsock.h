/* Declarations shared by the addon's source files (one addon: build/Release/netsock.node). */
#ifndef METALBOOT_NETSOCK_H
#define METALBOOT_NETSOCK_H
#include <node_api.h>
#include <netinet/in.h>
#include <stdint.h>

/* netsock.c */
napi_value throw_errno(napi_env env, const char *what, int err);
int ipv4_sockaddr(const char *address, uint32_t port, struct sockaddr_in *sa);

/* udp-pump.c: the packet path of a connected UDP socket (see there). */
void udp_pump_register(napi_env env, napi_value exports);
#endif
