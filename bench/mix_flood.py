# udping bench: the two paced floods of `deno task soak --mix`, loopback
# only, each bounded in time.
#
#   python3 mix_flood.py lo-up
#       bring the loopback interface up (a fresh `unshare -n` namespace has
#       it down); needs CAP_NET_ADMIN in the namespace
#   python3 mix_flood.py tokens HOST PORT SECONDS [RATE]
#       RATE datagrams/s (default 3000) from 8 ordinary sockets on
#       127.0.0.1, each a udping request with a fresh random token that asks
#       for a stamp, one in ten malformed (random bytes, cut-off records,
#       bad tokens, empty); the replies are read and counted
#   python3 mix_flood.py forged HOST PORT SECONDS [RATE] [SOURCES]
#       RATE datagrams/s (default 3000) through a raw socket, each a udping
#       request from one of SOURCES (default 900,000) distinct forged
#       sources 127.a.b.c:port (c 2-254, port 1024-65535), taken in turn;
#       needs CAP_NET_RAW, so run it inside `unshare -n` as root, where the
#       replies go nowhere
#
# HOST must be a 127.0.0.0/8 address. At the end each prints one JSON line:
# {"kind", "seconds", "sent", "received", "errors"}.
import ipaddress
import json
import math
import os
import random
import signal
import socket
import struct
import sys
import time

MAX_SECONDS = 7200
TICK = 0.01
# After a stall, at most this much backlog is caught up at once.
MAX_BACKLOG = 0.1
SOCKETS = 8
SIZE = 64
PADDING = "0123456789abcdefghijklmnopqrstuvwxyz" * 2
FIRST_PORT = 1024
PORTS = 65536 - FIRST_PORT
LAST_OCTETS = range(2, 255)  # no .0, no .255, never 127.0.0.1
ADDRESSES = 256 * 256 * len(LAST_OCTETS)
SPACE = ADDRESSES * PORTS
STRIDE = 1_000_003  # a prime sharing no factor with SPACE: i -> i * STRIDE is a bijection


def usage() -> None:
    sys.exit(
        "usage: mix_flood.py lo-up | tokens HOST PORT SECONDS [RATE]"
        " | forged HOST PORT SECONDS [RATE] [SOURCES]"
    )


def loopback_up() -> None:
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def request(seq: int, token: int, stamp: bool) -> bytes:
    head = f"PING {seq} {time.time() * 1000:.3f} {token:08X} "
    return (head + ("?" if stamp else "") + PADDING)[:SIZE].encode()


def malformed(seq: int) -> bytes:
    kind = seq % 6
    if kind == 0:
        return os.urandom(random.randrange(1, SIZE + 1))
    if kind == 1:
        return request(seq, random.getrandbits(32), True)[: random.randrange(5, 30)]
    if kind == 2:
        return f"PING {seq} {time.time() * 1000:.3f} ZZZZZZZZ ?".encode()
    if kind == 3:
        return f"PING 99999999999 1.0 {random.getrandbits(32):08X} ?".encode()
    if kind == 4:
        return b""
    return bytes([0xFF]) * SIZE


def forged_source(index: int) -> tuple[bytes, int]:
    value = (index * STRIDE) % SPACE
    address, port = divmod(value, PORTS)
    high, low = divmod(address, len(LAST_OCTETS))
    octets = bytes([127, high >> 8, high & 0xFF, LAST_OCTETS[low]])
    return octets, FIRST_PORT + port


def udp_packet(source: bytes, sport: int, destination: bytes, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    # Version 4, 20-byte header; the kernel fills in the total length, the
    # identification and the checksum. UDP checksum 0: none (IPv4 allows it).
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0, 64, socket.IPPROTO_UDP, 0,
                     source, destination)
    return ip + struct.pack("!HHHH", sport, dport, length, 0) + payload


def paced(seconds: float, rate: float, send_one, drain=None) -> None:
    start = time.monotonic()
    sent = 0
    while True:
        now = time.monotonic()
        elapsed = now - start
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        if due - sent > rate * MAX_BACKLOG:
            sent = due - int(rate * MAX_BACKLOG)
        while sent < due:
            send_one(sent)
            sent += 1
        if drain:
            drain()
        time.sleep(max(0.0, start + (math.floor(elapsed / TICK) + 1) * TICK - time.monotonic()))


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["lo-up"]:
        loopback_up()
        return
    if len(args) < 4 or args[0] not in ("tokens", "forged"):
        usage()
    kind, host, port, seconds = args[0], args[1], int(args[2]), float(args[3])
    rate = float(args[4]) if len(args) > 4 else 3000.0
    sources = int(args[5]) if len(args) > 5 else 900_000
    if not ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8"):
        sys.exit(f"mix_flood.py: {host} is not a 127.0.0.0/8 address: loopback only")
    if not (0 < seconds <= MAX_SECONDS and 0 < rate <= 100_000 and 0 < port < 65536):
        sys.exit("mix_flood.py: SECONDS 0-7200, RATE 0-100000, PORT 1-65535")
    if not (0 < sources <= SPACE):
        sys.exit(f"mix_flood.py: SOURCES 1-{SPACE}")
    # A hard stop whatever happens to the pacing loop.
    signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
    signal.alarm(int(seconds) + 10)
    counts = {"kind": kind, "seconds": seconds, "sent": 0, "received": 0, "errors": 0}

    if kind == "tokens":
        socks = []
        for _ in range(SOCKETS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            socks.append(sock)
        target = (host, port)

        def send_one(seq: int) -> None:
            data = malformed(seq) if seq % 10 == 9 else request(seq, random.getrandbits(32), True)
            try:
                socks[seq % SOCKETS].sendto(data, target)
                counts["sent"] += 1
            except OSError:
                counts["errors"] += 1

        def drain() -> None:
            for sock in socks:
                while True:
                    try:
                        sock.recv(2048)
                        counts["received"] += 1
                    except BlockingIOError:
                        break
                    except OSError:
                        counts["errors"] += 1
                        break

        paced(seconds, rate, send_one, drain)
        time.sleep(0.1)
        drain()
    else:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        destination = socket.inet_aton(host)

        def send_one(seq: int) -> None:
            index = seq % sources
            source, sport = forged_source(index)
            payload = request(seq // sources + 1, index, False)
            try:
                raw.sendto(udp_packet(source, sport, destination, port, payload), (host, 0))
                counts["sent"] += 1
            except OSError:
                counts["errors"] += 1

        paced(seconds, rate, send_one)
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
