# udping bench: the plain textbook UDP Pinger client, as a student writes it
# in the classic lab: COUNT pings INTERVAL seconds apart, a one-second
# timeout (socket.settimeout(1)), the RTT from time.perf_counter() around
# sendto/recvfrom. Prints one RTT in ms a line, or "timeout".
#
# usage: python3 textbook_client.py HOST PORT [COUNT=10] [INTERVAL_S=0.2]
import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 10
interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.2
client = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
client.settimeout(1)
for seq in range(1, count + 1):
    message = f"Ping {seq} {time.time()}".encode()
    start = time.perf_counter()
    client.sendto(message, (host, port))
    try:
        client.recvfrom(1024)
        print(f"{(time.perf_counter() - start) * 1000:.3f}")
    except socket.timeout:
        print("timeout")
    time.sleep(interval)
