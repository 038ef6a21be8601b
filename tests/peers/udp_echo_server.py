# The textbook UDP echo server, in Python 3, as a peer that udping did not
# write. Usage: python3 udp_echo_server.py [PORT] [--upper]; prints its port
# first (a free one when PORT is left out).
import socket
import sys

server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ports = [int(arg) for arg in sys.argv[1:] if arg.isdigit()]
server.bind(("127.0.0.1", ports[0] if ports else 0))
print(server.getsockname()[1], flush=True)
while True:
    message, address = server.recvfrom(65535)
    server.sendto(message.upper() if "--upper" in sys.argv else message, address)
