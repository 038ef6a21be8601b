# udping bench: the kernel-stamped reference client. Sends a udping request,
# takes the send time with time.time_ns() right before sendto, and the
# receive time from the kernel (SO_TIMESTAMPNS, CLOCK_REALTIME like
# time_ns), so the client's own wake-up is left out of the RTT. Sleeps the
# interval between probes; prints one RTT in microseconds a line at the end.
#
# usage: python3 stamp_client.py HOST PORT COUNT INTERVAL_MS
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)

host, port, count, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
sock.settimeout(2)
ancillary = socket.CMSG_SPACE(struct.calcsize("qq"))
rtts = []
for seq in range(1, count + 1):
    head = f"PING {seq} {time.time() * 1000:.3f} 0000BEEF "
    payload = (head + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2)[:64].encode()
    sent = time.time_ns()
    sock.sendto(payload, (host, port))
    _, data, _, _ = sock.recvmsg(2048, ancillary)
    for level, kind, value in data:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("qq", value[:16])
            rtts.append((seconds * 1_000_000_000 + nanoseconds - sent) / 1000)
    time.sleep(interval / 1000)
print("\n".join(f"{rtt:.3f}" for rtt in rtts))
