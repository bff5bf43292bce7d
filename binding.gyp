{
  "targets": [
    {
      "target_name": "netsock",
      "sources": ["native/netsock.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
