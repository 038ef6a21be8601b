# Sends one datagram with Python 3 and prints the reply (or "timeout").
# Usage: python3 udp_send.py HOST PORT TEXT
import socket
import sys

host, port, text = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
client.settimeout(5)
client.sendto(text.encode(), (host, port))
try:
    reply, _ = client.recvfrom(65535)
    print(reply.decode(errors="replace"))
except socket.timeout:
    print("timeout")
