/*
 * udping bench: the reference UDP echo server, a plain recvfrom/sendto
 * loop. Prints its port, then serves until killed.
 *
 * usage: echo HOST [PORT=0]
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>

int main(int argc, char **argv) {
  struct addrinfo hints = {0}, *local;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_PASSIVE;
  if (getaddrinfo(argc > 1 ? argv[1] : "127.0.0.1", argc > 2 ? argv[2] : "0", &hints, &local) != 0) {
    fprintf(stderr, "echo: cannot resolve\n");
    return 2;
  }
  int fd = socket(local->ai_family, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, local->ai_addr, local->ai_addrlen) < 0) {
    perror("echo: bind");
    return 2;
  }
  struct sockaddr_storage bound;
  socklen_t length = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &length);
  int port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                               : ((struct sockaddr_in *)&bound)->sin_port);
  printf("%d\n", port);
  fflush(stdout);
  static char buffer[65536];
  for (;;) {
    struct sockaddr_storage peer;
    socklen_t peer_length = sizeof peer;
    ssize_t n = recvfrom(fd, buffer, sizeof buffer, 0, (struct sockaddr *)&peer, &peer_length);
    if (n >= 0) sendto(fd, buffer, n, 0, (struct sockaddr *)&peer, peer_length);
  }
}
