# The textbook UDP echo server, in Python 3, as a peer that udping did not
# write. Usage: python3 udp_echo_server.py [--upper]; prints its port first.
import socket
import sys

server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
while True:
    message, address = server.recvfrom(65535)
    server.sendto(message.upper() if "--upper" in sys.argv else message, address)
