/*
 * udp-pump: the packet path of one connected UDP socket (a TFTP transfer's
 * TID) without node:dgram in between.
 *
 * Why native: a lock-step TFTP transfer is one round trip per block, so the
 * per-packet cost of the socket layer is the transfer's speed. Through
 * node:dgram every block costs a send request, a completion callback on the
 * next loop turn, a Buffer and an rinfo object per received ACK, and a
 * second recvmsg that finds the queue empty. Here a readable socket wakes one
 * uv_poll callback that does one recv() into a fixed buffer and hands the
 * ACK's block number to JavaScript, and a whole window of DATA packets leaves
 * with one sendmmsg() straight from the caller's buffer (the kernel copies
 * it, so the buffer is free again when the call returns). The protocol stays
 * in TypeScript (tftp/transfer.ts); this file only moves bytes.
 *
 *   connectUdp4(fd, address, port)
 *   localPort(fd) -> the port the socket is bound to
 *   pumpStart(fd, onPacket(kind, value)) -> handle
 *       kind 0: an ACK, value its 16-bit block number
 *       kind 1: any other packet, value a Buffer copy (at most 2048 bytes)
 *       kind 2: a receive error (ICMP unreachable and the like), value the errno
 *       kind 3: streaming records were copied into the log, value their number
 *       kind 4: streaming: a batch of the above has been handed over
 *   pumpSend(fd, buffer, offsets: Uint32Array, lengths: Uint32Array, count) -> number sent
 *       (fewer than count when the send queue is full; negative errno when none left)
 *   pumpClose(handle): stops receiving; the fd is closed once nothing uses it
 *
 * Streaming (pumpStream, pumpArm, pumpDrain), for a transfer from a regular
 * file. The step that follows a full-window ACK is always the same (RFC 7440
 * / RFC 1350: read the next window, send it), so a thread of the transfer's
 * own does it: it waits in a blocking recv() (a waiting thread is woken more
 * cheaply than an epoll set, which is most of what a lock-step block costs
 * beyond its system calls), and on the ACK of the last block of the armed
 * window reads the next window with preadv() into the slots, sends it and
 * logs one record (the ACK's block and time, the window, the bytes read, the
 * send time). JavaScript replays the records through its state machine
 * (tftp/transfer.ts), which stays the authority: it checks every record and
 * does everything else (options, partial and duplicate ACKs, timeouts, the
 * last ACK, errors). Any other packet is queued for JavaScript and disarms
 * the thread, so that records and packets reach it in the order they
 * happened; the thread wakes the event loop (uv_async) for packets and every
 * FLUSH_AT records.
 *
 * Who may touch the slots: the thread, only while armed and under p->mu;
 * JavaScript, only after disarming (pumpArm(h, 0, 0) waits for a step in
 * progress). pumpArm refuses to arm while records or packets wait, which
 * JavaScript learns of through the next batch.
 *   pumpStream(handle, fileFd, slots: Buffer, blksize, windowsize, fileSize, log: Float64Array)
 *   pumpArm(handle, first, count) -> armed?: the window first..first+count-1 is out
 *       (count 0: disarm; JavaScript is about to use the slots)
 *   pumpDrain(handle) -> records copied into the log (now JavaScript's to read)
 */
#define _GNU_SOURCE
#include "netsock.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define RECV_MAX 2048
#define SEND_BATCH 64
/* Doubles per streaming-log record: ack wire block, ack time, first block, count, bytes, send time (ms). */
#define LOG_FIELDS 6
#define DATA_HEADER 4
/* Records the thread holds before it must hand them over, and after how many it wakes JavaScript. */
#define WLOG_MAX 64
#define FLUSH_AT 16
/* Packets the thread queues for JavaScript; beyond that they are dropped (as a full socket would). */
#define QUEUE_MAX 16

typedef struct {
  int kind;
  uint32_t value;
  uint32_t len;
  unsigned char data[RECV_MAX];
} queued_t;

typedef struct {
  uv_poll_t poll;
  uv_async_t async;
  int handles_open;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int fd;
  int closing;
  /* Streaming (file_fd >= 0): see the top of this file. Below, under mu. */
  int file_fd;
  napi_ref slots_ref, log_ref;
  unsigned char *slots;
  size_t slots_len;
  double *log;
  uint32_t log_cap;
  uint32_t blksize, windowsize;
  uint64_t file_size, total_blocks;
  pthread_mutex_t mu;
  int refs;
  int stop;
  int armed;
  uint64_t first, count;
  double wlog[WLOG_MAX * LOG_FIELDS];
  uint32_t wlog_len;
  queued_t *queue;
  uint32_t queue_len;
} pump_t;

static napi_value connect_udp4(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1;
  uint32_t port = 0;
  char address[INET_ADDRSTRLEN + 1] = {0};
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], address, sizeof address, &len) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &port) != napi_ok || fd < 0 || port == 0 || port > 65535) {
    napi_throw_type_error(env, NULL, "connectUdp4(fd, address, port)");
    return NULL;
  }
  struct sockaddr_in sa;
  if (ipv4_sockaddr(address, port, &sa) < 0) {
    napi_throw_range_error(env, NULL, "connectUdp4: bad IPv4 address");
    return NULL;
  }
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return throw_errno(env, "connect", errno);
  return NULL;
}

static napi_value local_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "localPort(fd)");
    return NULL;
  }
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0) return throw_errno(env, "getsockname", errno);
  napi_value result;
  napi_create_uint32(env, ntohs(sa.sin_port), &result);
  return result;
}

static void call_js(pump_t *p, int kind, napi_value value) {
  napi_env env = p->env;
  napi_value cb, global, argv[2], result;
  napi_get_reference_value(env, p->callback, &cb);
  napi_get_global(env, &global);
  napi_create_int32(env, kind, &argv[0]);
  argv[1] = value;
  if (napi_make_callback(env, p->context, global, cb, 2, argv, &result) == napi_pending_exception) {
    /* The JavaScript side catches its own errors; anything that still escapes is a bug: report it as node would. */
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

static double now_ms(void) {
  /* The clock of JavaScript's Date.now(), which the state machine's times are in. */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)(ts.tv_nsec / 1000000);
}

/*
 * Sends packets pkts[0..n) (n <= SEND_BATCH) on the connected socket, without
 * blocking: how many left, or -errno when none did. One packet (lock-step)
 * goes with plain send(), which skips sendmmsg's per-message header copying.
 */
static int send_packets(int fd, const struct iovec *pkts, uint32_t n) {
  struct mmsghdr msgs[SEND_BATCH];
  if (n > 1) {
    memset(msgs, 0, sizeof(msgs[0]) * n);
    for (uint32_t i = 0; i < n; i++) {
      msgs[i].msg_hdr.msg_iov = (struct iovec *)&pkts[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
  }
  for (;;) {
    int r = n == 1 ? (send(fd, pkts[0].iov_base, pkts[0].iov_len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -1 : 1)
                   : sendmmsg(fd, msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) return r;
    if (errno != EINTR) return -errno;
  }
}

/*
 * On the worker thread, with p->mu held. The ACK of wire block `wire`
 * arrived. When it acknowledges the whole armed window and another window
 * follows, reads and sends that window, logs it and returns 1; otherwise (or
 * when the read comes up short) returns 0 and the ACK goes to JavaScript.
 */
static int stream_step(pump_t *p, uint32_t wire) {
  if (p->file_fd < 0 || !p->armed || p->stop || p->wlog_len >= WLOG_MAX) return 0;
  uint64_t last = p->first + p->count - 1;
  if (wire != (last & 0xffff) || last >= p->total_blocks) return 0;
  double t_ack = now_ms();
  uint64_t first = last + 1;
  uint64_t count = p->total_blocks - first + 1;
  if (count > p->windowsize) count = p->windowsize;
  uint64_t slot_len = (uint64_t)DATA_HEADER + p->blksize;
  if (count == 0 || count > SEND_BATCH || count * slot_len > p->slots_len) return 0;
  uint64_t pos = (first - 1) * (uint64_t)p->blksize;
  uint64_t want = p->file_size > pos ? p->file_size - pos : 0;
  if (want > count * (uint64_t)p->blksize) want = count * (uint64_t)p->blksize;
  struct iovec iov[SEND_BATCH];
  uint32_t lengths[SEND_BATCH];
  for (uint64_t i = 0; i < count; i++) {
    uint64_t start = i * (uint64_t)p->blksize;
    uint64_t len = want > start ? want - start : 0;
    if (len > p->blksize) len = p->blksize;
    iov[i].iov_base = p->slots + i * slot_len + DATA_HEADER;
    iov[i].iov_len = p->blksize;
    lengths[i] = (uint32_t)(DATA_HEADER + len);
  }
  /* Fill the slots; a short read before `want` means the file changed: JavaScript decides. */
  uint64_t got = 0;
  while (got < want) {
    struct iovec rest[SEND_BATCH];
    uint64_t skip = got;
    int n = 0;
    for (uint64_t i = 0; i < count; i++) {
      if (skip >= iov[i].iov_len) { skip -= iov[i].iov_len; continue; }
      rest[n].iov_base = (unsigned char *)iov[i].iov_base + skip;
      rest[n].iov_len = iov[i].iov_len - skip;
      skip = 0;
      n++;
    }
    ssize_t r = n == 1 ? pread(p->file_fd, rest[0].iov_base, rest[0].iov_len, (off_t)(pos + got))
                       : preadv(p->file_fd, rest, n, (off_t)(pos + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    got += (uint64_t)r;
  }
  if (got != want) return 0;
  struct iovec out[SEND_BATCH];
  for (uint64_t i = 0; i < count; i++) {
    unsigned char *slot = p->slots + i * slot_len;
    uint64_t block = first + i;
    slot[0] = 0;
    slot[1] = 3;
    slot[2] = (unsigned char)((block >> 8) & 0xff);
    slot[3] = (unsigned char)(block & 0xff);
    out[i].iov_base = slot;
    out[i].iov_len = lengths[i];
  }
  /* What the kernel does not take is lost as far as the protocol knows: the retransmit timer covers it. */
  (void)send_packets(p->fd, out, (uint32_t)count);
  double *rec = p->wlog + (size_t)p->wlog_len * LOG_FIELDS;
  rec[0] = wire;
  rec[1] = t_ack;
  rec[2] = (double)first;
  rec[3] = (double)count;
  rec[4] = (double)got;
  rec[5] = now_ms();
  p->wlog_len++;
  p->first = first;
  p->count = count;
  return 1;
}

/* Drops a reference (the event loop's, the thread's); the last one closes the fd and frees. */
static void release(pump_t *p) {
  pthread_mutex_lock(&p->mu);
  int left = --p->refs;
  pthread_mutex_unlock(&p->mu);
  if (left > 0) return;
  close(p->fd);
  pthread_mutex_destroy(&p->mu);
  free(p->queue);
  free(p);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  pump_t *p = (pump_t *)handle->data;
  if (p->closing) return;
  (void)events;
  napi_handle_scope scope;
  napi_open_handle_scope(p->env, &scope);
  napi_value value;
  if (status < 0) {
    /* libuv reports a socket error (EPOLLERR: an ICMP unreachable on a connected
       socket) as UV_EBADF and stops the poll. Read and clear the real error, and
       poll again: one stray ICMP message must not deafen the transfer. */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0) err = -status;
    int r = uv_poll_start(&p->poll, UV_READABLE, on_readable);
    napi_create_int32(p->env, err, &value);
    call_js(p, 2, value);
    if (r != 0 && !p->closing) {
      napi_create_int32(p->env, -r, &value);
      call_js(p, 2, value);
    }
    napi_close_handle_scope(p->env, scope);
    return;
  }
  /* One datagram per wake: the poll is level-triggered, so a second one wakes us again
     without a recv() that finds the queue empty. */
  unsigned char buf[RECV_MAX];
  ssize_t n = recv(p->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      napi_create_int32(p->env, errno, &value);
      call_js(p, 2, value);
    }
  } else if (n == 4 && buf[0] == 0 && buf[1] == 4) {
    napi_create_uint32(p->env, ((uint32_t)buf[2] << 8) | buf[3], &value);
    call_js(p, 0, value);
  } else {
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf;
    void *data;
    napi_create_buffer_copy(p->env, len, buf, &data, &value);
    call_js(p, 1, value);
  }
  napi_close_handle_scope(p->env, scope);
}

/* With p->mu held: a packet for JavaScript. */
static void enqueue(pump_t *p, int kind, uint32_t value, const unsigned char *data, size_t len) {
  if (p->queue_len >= QUEUE_MAX) return;
  queued_t *q = &p->queue[p->queue_len++];
  q->kind = kind;
  q->value = value;
  q->len = (uint32_t)(len < RECV_MAX ? len : RECV_MAX);
  if (q->len > 0) memcpy(q->data, data, q->len);
}

static void *worker_main(void *arg) {
  pump_t *p = (pump_t *)arg;
  unsigned char buf[RECV_MAX];
  for (;;) {
    ssize_t n = recv(p->fd, buf, sizeof buf, MSG_TRUNC);
    int e = errno;
    pthread_mutex_lock(&p->mu);
    if (p->stop) {
      pthread_mutex_unlock(&p->mu);
      break;
    }
    int wake = 0;
    if (n < 0) {
      /* EAGAIN: the receive timeout that bounds how long a stop can go unnoticed. */
      if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR) {
        enqueue(p, 2, (uint32_t)e, NULL, 0);
        wake = 1;
      }
    } else if (n == 4 && buf[0] == 0 && buf[1] == 4) {
      uint32_t wire = ((uint32_t)buf[2] << 8) | buf[3];
      if (stream_step(p, wire)) {
        wake = p->wlog_len >= FLUSH_AT;
      } else {
        enqueue(p, 0, wire, NULL, 0);
        p->armed = 0;
        wake = 1;
      }
    } else {
      enqueue(p, 1, 0, buf, (size_t)n);
      p->armed = 0;
      wake = 1;
    }
    /* Under the lock: pumpClose sets stop under it before it closes the async handle. */
    if (wake) uv_async_send(&p->async);
    pthread_mutex_unlock(&p->mu);
  }
  release(p);
  return NULL;
}

/* With p->mu held: moves the thread's records into JavaScript's log; their number. */
static uint32_t take_log(pump_t *p) {
  uint32_t n = p->wlog_len;
  if (n > p->log_cap) n = p->log_cap;
  memcpy(p->log, p->wlog, (size_t)n * LOG_FIELDS * sizeof(double));
  memmove(p->wlog, p->wlog + (size_t)n * LOG_FIELDS, (size_t)(p->wlog_len - n) * LOG_FIELDS * sizeof(double));
  p->wlog_len -= n;
  return n;
}

/* On the event loop: the thread has records or packets for JavaScript. */
static void on_async(uv_async_t *handle) {
  pump_t *p = (pump_t *)handle->data;
  if (p->closing) return;
  napi_handle_scope scope;
  napi_open_handle_scope(p->env, &scope);
  napi_value value;
  for (;;) {
    queued_t local;
    int have_packet = 0;
    pthread_mutex_lock(&p->mu);
    uint32_t n = take_log(p);
    if (n == 0 && p->queue_len > 0) {
      local = p->queue[0];
      memmove(&p->queue[0], &p->queue[1], (p->queue_len - 1) * sizeof(queued_t));
      p->queue_len--;
      have_packet = 1;
    }
    pthread_mutex_unlock(&p->mu);
    if (n > 0) {
      napi_create_uint32(p->env, n, &value);
      call_js(p, 3, value);
    } else if (have_packet) {
      if (local.kind == 1) {
        void *data;
        napi_create_buffer_copy(p->env, local.len, local.data, &data, &value);
      } else {
        napi_create_uint32(p->env, local.value, &value);
      }
      call_js(p, local.kind, value);
    } else {
      break;
    }
    if (p->closing) break;
  }
  if (!p->closing) {
    napi_get_undefined(p->env, &value);
    call_js(p, 4, value);
  }
  napi_close_handle_scope(p->env, scope);
}

static napi_value pump_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1;
  napi_valuetype t;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "pumpStart(fd, onPacket)");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "pumpStart: no event loop");
    return NULL;
  }
  pump_t *p = calloc(1, sizeof *p);
  if (p == NULL) return throw_errno(env, "calloc", ENOMEM);
  p->env = env;
  p->fd = fd;
  p->file_fd = -1;
  p->refs = 1;
  pthread_mutex_init(&p->mu, NULL);
  napi_value name;
  napi_create_string_utf8(env, "metalboot.udpPump", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &p->context);
  napi_create_reference(env, argv[1], 1, &p->callback);
  int r = uv_poll_init(loop, &p->poll, fd);
  if (r == 0) {
    p->poll.data = p;
    p->handles_open = 1;
    r = uv_poll_start(&p->poll, UV_READABLE, on_readable);
  }
  if (r != 0) {
    napi_delete_reference(env, p->callback);
    napi_async_destroy(env, p->context);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return throw_errno(env, "uv_poll_start", -r);
  }
  napi_value handle;
  napi_create_external(env, p, NULL, NULL, &handle);
  return handle;
}

static void on_closed(uv_handle_t *handle) {
  pump_t *p = (pump_t *)handle->data;
  if (--p->handles_open > 0) return;
  /* Released here, not in pumpClose: pumpClose may run inside this pump's own callback. */
  napi_handle_scope scope;
  napi_open_handle_scope(p->env, &scope);
  napi_delete_reference(p->env, p->callback);
  if (p->slots_ref) napi_delete_reference(p->env, p->slots_ref);
  if (p->log_ref) napi_delete_reference(p->env, p->log_ref);
  napi_async_destroy(p->env, p->context);
  napi_close_handle_scope(p->env, scope);
  release(p);
}

static napi_value pump_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  pump_t *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_external(env, argv[0], (void **)&p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "pumpClose(handle)");
    return NULL;
  }
  if (p->closing) return NULL;
  p->closing = 1;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  p->armed = 0;
  pthread_mutex_unlock(&p->mu);
  /* Wakes a thread waiting in recv() (it then sees stop); its receive timeout is the fallback. */
  if (p->file_fd >= 0) shutdown(p->fd, SHUT_RDWR);
  uv_poll_stop(&p->poll);
  uv_close((uv_handle_t *)&p->poll, on_closed);
  if (p->handles_open == 2) uv_close((uv_handle_t *)&p->async, on_closed);
  return NULL;
}

static pump_t *pump_arg(napi_env env, napi_value v) {
  pump_t *p = NULL;
  if (napi_get_value_external(env, v, (void **)&p) != napi_ok) return NULL;
  return p;
}

static napi_value pump_stream(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  pump_t *p = NULL;
  int32_t file_fd = -1;
  uint32_t blksize = 0, windowsize = 0;
  double file_size = -1;
  unsigned char *slots;
  size_t slots_len, log_len;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  double *log;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 7 ||
      (p = pump_arg(env, argv[0])) == NULL || p->closing || p->file_fd >= 0 ||
      napi_get_value_int32(env, argv[1], &file_fd) != napi_ok || file_fd < 0 ||
      napi_get_buffer_info(env, argv[2], (void **)&slots, &slots_len) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &blksize) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &windowsize) != napi_ok ||
      napi_get_value_double(env, argv[5], &file_size) != napi_ok ||
      napi_get_typedarray_info(env, argv[6], &type, &log_len, (void **)&log, &ab, &off) != napi_ok ||
      type != napi_float64_array) {
    napi_throw_type_error(env, NULL, "pumpStream(handle, fileFd, slots, blksize, windowsize, fileSize, log)");
    return NULL;
  }
  if (blksize < 8 || blksize > 65464 || windowsize < 1 || windowsize > SEND_BATCH ||
      !(file_size >= 0 && file_size < 9007199254740992.0) || log_len < LOG_FIELDS ||
      slots_len < (size_t)(DATA_HEADER + blksize)) {
    napi_throw_range_error(env, NULL, "pumpStream: blksize, windowsize, fileSize or a buffer out of range");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "pumpStream: no event loop");
    return NULL;
  }
  p->queue = calloc(QUEUE_MAX, sizeof(queued_t));
  if (p->queue == NULL) return throw_errno(env, "calloc", ENOMEM);
  int r = uv_async_init(loop, &p->async, on_async);
  if (r != 0) {
    free(p->queue);
    p->queue = NULL;
    return throw_errno(env, "uv_async_init", -r);
  }
  p->async.data = p;
  p->handles_open = 2;
  p->slots = slots;
  p->slots_len = slots_len;
  p->log = log;
  p->log_cap = (uint32_t)(log_len / LOG_FIELDS);
  p->blksize = blksize;
  p->windowsize = windowsize;
  p->file_size = (uint64_t)file_size;
  p->total_blocks = p->file_size / blksize + 1;
  p->armed = 0;
  /* The thread receives from now on, blocking; the event loop stops polling the socket.
     Sends stay non-blocking (MSG_DONTWAIT). The timeout bounds how long a stop waits. */
  uv_poll_stop(&p->poll);
  int flags = fcntl(p->fd, F_GETFL);
  struct timeval tv = {0, 200 * 1000};
  setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (flags < 0 || fcntl(p->fd, F_SETFL, flags & ~O_NONBLOCK) < 0) r = errno;
  p->file_fd = file_fd;
  p->refs++;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  if (r == 0) r = pthread_create(&thread, &attr, worker_main, p);
  pthread_attr_destroy(&attr);
  if (r != 0) {
    /* Back to the event loop's polling; the transfer goes on without streaming. */
    p->file_fd = -1;
    p->refs--;
    if (flags >= 0) fcntl(p->fd, F_SETFL, flags);
    uv_poll_start(&p->poll, UV_READABLE, on_readable);
    p->handles_open = 1;
    uv_close((uv_handle_t *)&p->async, NULL);
    return throw_errno(env, "pumpStream: starting the receive thread", r);
  }
  napi_create_reference(env, argv[2], 1, &p->slots_ref);
  napi_create_reference(env, argv[6], 1, &p->log_ref);
  return NULL;
}

static napi_value pump_arm(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  pump_t *p = NULL;
  double first = 0, count = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      (p = pump_arg(env, argv[0])) == NULL ||
      napi_get_value_double(env, argv[1], &first) != napi_ok || napi_get_value_double(env, argv[2], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "pumpArm(handle, first, count)");
    return NULL;
  }
  if (count != 0 && (p->file_fd < 0 || !(first >= 1) || !(count >= 1) || count > p->windowsize ||
                     first + count - 1 > (double)p->total_blocks)) {
    napi_throw_range_error(env, NULL, "pumpArm: no stream, or a window outside the file");
    return NULL;
  }
  int armed = 0;
  pthread_mutex_lock(&p->mu);
  if (count == 0 || p->stop) {
    p->armed = 0;
  } else if (p->wlog_len == 0 && p->queue_len == 0) {
    p->first = (uint64_t)first;
    p->count = (uint64_t)count;
    p->armed = armed = 1;
  }
  pthread_mutex_unlock(&p->mu);
  napi_value result;
  napi_get_boolean(env, armed, &result);
  return result;
}

static napi_value pump_drain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  pump_t *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || (p = pump_arg(env, argv[0])) == NULL) {
    napi_throw_type_error(env, NULL, "pumpDrain(handle)");
    return NULL;
  }
  uint32_t n = 0;
  if (p->file_fd >= 0 && !p->closing) {
    pthread_mutex_lock(&p->mu);
    n = take_log(p);
    pthread_mutex_unlock(&p->mu);
  }
  napi_value result;
  napi_create_uint32(env, n, &result);
  return result;
}

static int typed_u32(napi_env env, napi_value v, uint32_t **data, size_t *len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  return napi_get_typedarray_info(env, v, &type, len, (void **)data, &ab, &off) == napi_ok && type == napi_uint32_array;
}

static napi_value pump_send(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fd = -1;
  uint32_t count = 0;
  unsigned char *buf;
  size_t buflen, noff, nlen;
  uint32_t *offsets, *lengths;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_buffer_info(env, argv[1], (void **)&buf, &buflen) != napi_ok ||
      !typed_u32(env, argv[2], &offsets, &noff) || !typed_u32(env, argv[3], &lengths, &nlen) ||
      napi_get_value_uint32(env, argv[4], &count) != napi_ok || count > noff || count > nlen) {
    napi_throw_type_error(env, NULL, "pumpSend(fd, buffer, offsets, lengths, count)");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    if (offsets[i] > buflen || lengths[i] > buflen - offsets[i]) {
      napi_throw_range_error(env, NULL, "pumpSend: a packet lies outside the buffer");
      return NULL;
    }
  }
  struct iovec iov[SEND_BATCH];
  uint32_t sent = 0;
  int err = 0;
  while (sent < count) {
    uint32_t n = count - sent < SEND_BATCH ? count - sent : SEND_BATCH;
    for (uint32_t i = 0; i < n; i++) {
      iov[i].iov_base = buf + offsets[sent + i];
      iov[i].iov_len = lengths[sent + i];
    }
    int r = send_packets(fd, iov, n);
    if (r < 0) {
      err = -r;
      break;
    }
    sent += (uint32_t)r;
    if ((uint32_t)r < n) break;
  }
  napi_value result;
  napi_create_int32(env, sent == 0 && err != 0 ? -err : (int32_t)sent, &result);
  return result;
}

void udp_pump_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"connectUdp4", NULL, connect_udp4, NULL, NULL, NULL, napi_default, NULL},
    {"localPort", NULL, local_port, NULL, NULL, NULL, napi_default, NULL},
    {"pumpStart", NULL, pump_start, NULL, NULL, NULL, napi_default, NULL},
    {"pumpSend", NULL, pump_send, NULL, NULL, NULL, napi_default, NULL},
    {"pumpClose", NULL, pump_close, NULL, NULL, NULL, napi_default, NULL},
    {"pumpStream", NULL, pump_stream, NULL, NULL, NULL, napi_default, NULL},
    {"pumpArm", NULL, pump_arm, NULL, NULL, NULL, napi_default, NULL},
    {"pumpDrain", NULL, pump_drain, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
