"""Floods for the hostile-network tests (tests/e2e/hostile.rs), on loopback only.

  attack.py logins WEB_PORT MQTT_PORT N   N wrong web logins and N wrong MQTT logins at once, each
                                          from its own loopback address and with its own name
  attack.py halfopen PORT N web|mqtt|tls  N connections from one address (127.0.0.2) that send
                                          half a request and then nothing; held until killed
  attack.py posts PORT PATH COOKIE BODY N SOURCE
                                          N form posts at once (SOURCE: one address, or `spread`
                                          for one address each); the count of each status

Prints a one-line summary (for `logins`, when done; for `halfopen`, `ready …` once opened).
"""

import collections
import resource
import socket
import struct
import sys
import threading
import time

HOST = "127.0.0.1"


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def connect_from(source, port, timeout=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((HOST, port))
    return s


def web_login(i, port, results, start):
    csrf = "%032x" % i
    body = "csrf=%s&username=ghost%d&password=wrong-password-%d&next=/" % (csrf, i, i)
    request = (
        "POST /login HTTP/1.1\r\nHost: outpost.local\r\nCookie: outpost_csrf=%s\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
        "Connection: close\r\n\r\n%s" % (csrf, len(body), body)
    )
    start.wait()
    try:
        s = connect_from("127.0.0.%d" % (2 + i % 250), port, timeout=60)
        s.sendall(request.encode())
        status = status_of(s)
        s.close()
    except (ConnectionResetError, BrokenPipeError):
        status = "closed"
    except Exception as e:  # noqa: BLE001 - any other failure is a result to count
        status = type(e).__name__
    results["web " + status] += 1


def mqtt_string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def mqtt_login(i, port, results, start):
    body = mqtt_string("MQTT") + bytes([4, 0xC2, 0, 60])
    body += mqtt_string("flood-%d" % i) + mqtt_string("ghost%d" % i) + mqtt_string("wrong-password-%d" % i)
    packet = bytes([0x10, len(body)]) + body
    start.wait()
    try:
        s = connect_from("127.0.1.%d" % (2 + i % 250), port, timeout=60)
        s.sendall(packet)
        ack = s.recv(4)
        code = "connack %d" % ack[3] if len(ack) == 4 else "closed"
        s.close()
    except Exception as e:  # noqa: BLE001
        code = type(e).__name__
    results["mqtt " + code] += 1


def logins(web_port, mqtt_port, n):
    results = collections.Counter()
    start = threading.Barrier(2 * n + 1)
    threads = [threading.Thread(target=web_login, args=(i, web_port, results, start)) for i in range(n)]
    threads += [threading.Thread(target=mqtt_login, args=(i, mqtt_port, results, start)) for i in range(n)]
    for t in threads:
        t.start()
    began = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    print("%d logins in %.1f s: %s" % (2 * n, time.monotonic() - began, dict(sorted(results.items()))))


def halfopen(port, n, kind):
    raise_fd_limit()
    held, failed = [], 0
    # Half a request: an HTTP request line and one header; the first bytes of an MQTT CONNECT; the
    # header of a TLS handshake record announcing 512 bytes.
    first = {
        "web": b"GET / HTTP/1.1\r\nHost: outpost.local\r\n",
        "mqtt": b"\x10\x20\x00",
        "tls": b"\x16\x03\x01\x02\x00",
    }[kind]
    for _ in range(n):
        try:
            s = connect_from("127.0.0.2", port, timeout=2.0)
            try:
                s.send(first)
            except OSError:
                pass
            held.append(s)
        except OSError:
            failed += 1
    print("ready opened=%d failed=%d" % (len(held), failed), flush=True)
    time.sleep(120)


def status_of(s):
    """The HTTP status a server answered on socket `s`, or `closed` if it closed without one."""
    head = s.recv(64)
    return head.split(b" ")[1].decode() if head.startswith(b"HTTP/") else "closed"


def post(port, path, cookie, body, source, results, start):
    request = (
        "POST %s HTTP/1.1\r\nHost: outpost.local\r\nCookie: %s\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
        "Connection: close\r\n\r\n%s" % (path, cookie, len(body.encode()), body)
    )
    start.wait()
    try:
        s = connect_from(source, port, timeout=60)
        s.sendall(request.encode())
        status = status_of(s)
        s.close()
    except (ConnectionResetError, BrokenPipeError):
        status = "closed"
    except Exception as e:  # noqa: BLE001
        status = type(e).__name__
    results[status] += 1


def posts(port, path, cookie, body, n, source):
    results = collections.Counter()
    start = threading.Barrier(n + 1)
    sources = ["127.0.0.%d" % (2 + i % 250) if source == "spread" else source for i in range(n)]
    threads = [
        threading.Thread(target=post, args=(port, path, cookie, body, sources[i], results, start)) for i in range(n)
    ]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join()
    print(" ".join("%s=%d" % kv for kv in sorted(results.items())))


def main():
    if sys.argv[1] == "logins":
        logins(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "halfopen":
        halfopen(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "posts":
        posts(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
