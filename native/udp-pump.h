/* udp-pump.c: the packet path of a connected UDP socket (see there). */
#ifndef METALBOOT_UDP_PUMP_H
#define METALBOOT_UDP_PUMP_H
#include <node_api.h>
void udp_pump_register(napi_env env, napi_value exports);
#endif
