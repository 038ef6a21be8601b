/*
 * udping bench: the reference ping-pong client. Sends COUNT requests of 64
 * bytes to HOST PORT one at a time, each as soon as the previous reply is
 * in, and times each round trip with the monotonic clock. Prints one line:
 * "count=N median_us=M p99_us=P lost=L".
 *
 * usage: pingpong HOST PORT [COUNT=5000]
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: pingpong HOST PORT [COUNT]\n");
    return 2;
  }
  int count = argc > 3 ? atoi(argv[3]) : 5000;
  struct addrinfo hints = {0}, *target;
  hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(argv[1], argv[2], &hints, &target) != 0) return 2;
  int fd = socket(target->ai_family, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, target->ai_addr, target->ai_addrlen) < 0) return 2;
  struct timeval timeout = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  char request[64], reply[65536];
  double *rtts = malloc(sizeof(double) * count);
  int answered = 0;
  for (int seq = 1; seq <= count; seq++) {
    int n = snprintf(request, sizeof request, "PING %d 0.000 0000BEEF ", seq);
    memset(request + n, 'A', sizeof request - n);
    double start = now_us();
    send(fd, request, sizeof request, 0);
    if (recv(fd, reply, sizeof reply, 0) >= 0) rtts[answered++] = now_us() - start;
  }
  qsort(rtts, answered, sizeof(double), compare);
  /* Nearest rank, as udping reports it. */
  double median = answered ? rtts[(answered + 1) / 2 - 1] : 0;
  int rank99 = (int)((answered * 99 + 99) / 100);
  double p99 = answered ? rtts[rank99 - 1] : 0;
  printf("count=%d median_us=%.1f p99_us=%.1f lost=%d\n", answered, median, p99, count - answered);
  return 0;
}
