{
  "targets": [
    {
      "target_name": "netsock",
      "sources": ["native/netsock.c", "native/udp-pump.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
