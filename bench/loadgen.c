/*
 * udping bench: a UDP load generator that is not the bottleneck.
 *
 * Keeps WINDOW requests of SIZE bytes in flight against HOST PORT for
 * SECONDS (or until MAX replies): each reply is answered with a new request
 * at once; when no reply comes for 200 ms the window is refilled. Prints
 * one line: "replies=N seconds=S rate=R lost=L".
 *
 * usage: loadgen HOST PORT SECONDS [WINDOW=64] [SIZE=64] [MAX=0 (no limit)]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A udping-shaped request with its own seq, so every server treats it as
 * a ping, and no two are the same bytes (a udping server takes the same
 * bytes coming back at once from one address for an echo loop). Returns
 * the size. */
static int fill(char *request, int size, long seq) {
  char head[64];
  int n = snprintf(head, sizeof head, "PING %ld 0.000 0000BEEF ", seq % 4294967296L);
  memcpy(request, head, n < size ? n : size);
  return size;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: loadgen HOST PORT SECONDS [WINDOW] [SIZE] [MAX]\n");
    return 2;
  }
  double seconds = atof(argv[3]);
  int window = argc > 4 ? atoi(argv[4]) : 64;
  int size = argc > 5 ? atoi(argv[5]) : 64;
  long max = argc > 6 ? atol(argv[6]) : 0;
  struct addrinfo hints = {0}, *target;
  hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(argv[1], argv[2], &hints, &target) != 0) {
    fprintf(stderr, "loadgen: cannot resolve %s\n", argv[1]);
    return 2;
  }
  int fd = socket(target->ai_family, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, target->ai_addr, target->ai_addrlen) < 0) {
    perror("loadgen: socket");
    return 2;
  }
  struct timeval timeout = {0, 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  char *request = malloc(size), reply[65536];
  for (int i = 0; i < size; i++) request[i] = 'A' + i % 26;
  long replies = 0, lost = 0, seq = 0;
  double start = now(), end = start + seconds;
  for (int i = 0; i < window; i++) send(fd, request, fill(request, size, ++seq), 0);
  while (now() < end && (max == 0 || replies < max)) {
    ssize_t n = recv(fd, reply, sizeof reply, 0);
    if (n >= 0) {
      replies++;
      send(fd, request, fill(request, size, ++seq), 0);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      /* Replies stopped: assume the window was lost and refill it. */
      lost += window;
      for (int i = 0; i < window; i++) send(fd, request, fill(request, size, ++seq), 0);
    } else if (errno != EINTR && errno != ECONNREFUSED) {
      perror("loadgen: recv");
      return 1;
    }
  }
  double elapsed = now() - start;
  printf("replies=%ld seconds=%.3f rate=%.0f lost=%ld\n", replies, elapsed, replies / elapsed, lost);
  return 0;
}
