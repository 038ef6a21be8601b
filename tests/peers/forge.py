# Sends UDP datagrams with forged source addresses, for the hostile tests (tests/namespace.ts).
#
# Raw sockets (IP_HDRINCL) can put any source on a datagram, so this refuses
# to run outside a private network namespace that has only loopback
# (`unshare -n`), and refuses every destination outside 127.0.0.0/8 and the
# namespace's test network, 10.231.0.0/24 (on its loopback interface), and
# every source outside those but the broadcast and multicast addresses of
# loop_guard_hostile_test.ts. Every loop is bounded in count and time.
#
# Usage (inside `unshare -n`):
#   python3 forge.py up
#       bring the namespace's loopback interface up
#   python3 forge.py send SRC_IP SRC_PORT DST_IP DST_PORT HEX_PAYLOAD
#       one datagram from SRC to DST
#   python3 forge.py spray DST_IP DST_PORT SOURCES FLOOD_EVERY SECONDS
#       SOURCES datagrams, each from a distinct forged source
#       (127.0.0.2-201, ports from 20000), with one datagram from a real
#       socket on 127.0.0.1 (the flooder) after every FLOOD_EVERY of them,
#       spread over SECONDS; then listens 0.3 s more. Prints JSON: the
#       flooder's datagrams sent and the arrival times (s from the start) of
#       the replies it got.
import fcntl
import ipaddress
import json
import os
import socket
import struct
import sys
import time

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
TEST_NETWORK = ipaddress.ip_network("10.231.0.0/24")
GROUP_SOURCES = {"255.255.255.255", "224.0.0.1", "239.255.255.250"}
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
MAX_DATAGRAMS = 100_000
MAX_SECONDS = 10.0


def refuse(message):
    print(f"forge.py: {message}", file=sys.stderr)
    sys.exit(2)


def check_namespace():
    # /proc/self/net is the calling process's namespace (sysfs may be the host's).
    with open("/proc/self/net/dev") as table:
        interfaces = sorted(line.split(":")[0].strip() for line in table.readlines()[2:])
    if interfaces != ["lo"]:
        refuse(f"run me in a namespace with loopback only (unshare -n), not with {interfaces}")


def check_loopback(address, source=False):
    if source and address in GROUP_SOURCES:
        return
    if not any(ipaddress.ip_address(address) in net for net in (LOOPBACK, TEST_NETWORK)):
        refuse(f"{address} is not a loopback or test network address")


def loopback_up():
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    request = struct.pack("16sH22x", b"lo", 0)
    flags = struct.unpack("16sH22x", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
    fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))
    probe.close()


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def datagram(src, sport, dst, dport, payload, ident=0):
    check_loopback(src, source=True)
    check_loopback(dst)
    if not (0 <= sport <= 65535 and 1 <= dport <= 65535):
        refuse(f"bad ports {sport} -> {dport}")
    length = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, length)
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    udp_sum = checksum(pseudo + udp) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, length, udp_sum) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + length, ident & 0xFFFF, 0, 64, 17, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + udp


def raw_socket():
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    raw.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    return raw


def send(src, sport, dst, dport, payload_hex):
    raw = raw_socket()
    raw.sendto(datagram(src, int(sport), dst, int(dport), bytes.fromhex(payload_hex)), (dst, 0))
    raw.close()


def spray(dst, dport, sources, flood_every, seconds):
    dport, sources, flood_every, seconds = int(dport), int(sources), int(flood_every), float(seconds)
    if not (0 < sources <= MAX_DATAGRAMS and 0 < seconds <= MAX_SECONDS and flood_every > 0):
        refuse("spray: bounds exceeded")
    check_loopback(dst)
    raw = raw_socket()
    flooder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flooder.bind(("127.0.0.1", 0))
    flooder.setblocking(False)
    replies = []
    flooded = 0
    start = time.monotonic()

    def drain():
        while True:
            try:
                flooder.recvfrom(65535)
            except BlockingIOError:
                return
            replies.append(time.monotonic() - start)

    for i in range(sources):
        src = f"127.0.0.{2 + i % 200}"
        payload = b"forged source %d" % i
        raw.sendto(datagram(src, 20000 + i, dst, dport, payload, i), (dst, 0))
        if i % flood_every == 0:
            flooder.sendto(b"flood %d" % flooded, (dst, dport))
            flooded += 1
            drain()
        # Keep to the schedule: datagram i goes out at start + i * seconds / sources.
        ahead = start + (i + 1) * seconds / sources - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        if time.monotonic() - start > MAX_SECONDS:
            break
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        drain()
        time.sleep(0.005)
    print(json.dumps({
        "forged": sources,
        "flooded": flooded,
        "seconds": time.monotonic() - start - 0.3,
        "replies": replies,
    }))


def main():
    if len(sys.argv) < 2:
        refuse("usage: forge.py up | send ... | spray ...")
    check_namespace()
    command, args = sys.argv[1], sys.argv[2:]
    if command == "up" and not args:
        loopback_up()
    elif command == "send" and len(args) == 5:
        send(*args)
    elif command == "spray" and len(args) == 5:
        spray(*args)
    else:
        refuse(f"unknown command or arguments: {sys.argv[1:]}")


main()
