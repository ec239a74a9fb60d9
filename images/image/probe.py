#!/usr/bin/env python3
"""The box in a booted image, seen from outside over HTTPS by its name (images/test-image).

    probe.py PORT wait SECONDS          /healthz answers 200 within SECONDS: prints the seconds taken
    probe.py PORT setup LINK USER       the first administrator, through the setup link (password
                                        from OUTPOST_TEST_PASSWORD); keeps the session in ./cookies
    probe.py PORT health                the box's health as the administrator sees it (JSON)
    probe.py PORT healthz SECONDS       /healthz's status and body, once it answers at all
    probe.py PORT login USER            signs in again (a box that restarted)
    probe.py PORT people N              admits N people: their ids to ./people.txt
    probe.py PORT declare FILE          declares for those people, one after the other, until the
                                        box stops answering: each declaration the box acknowledged
                                        (201) is appended to FILE, on disk before the next is sent
    probe.py PORT check FILE            every declaration in FILE is at the box: prints how many
    probe.py PORT stick ACTION USER SECONDS
                                        asks, as an administrator on the health page, for a backup
                                        onto (ACTION backup) or an update from (update) the USB
                                        stick, and waits until the page says it is done: prints its
                                        message (signs in again if the box restarted meanwhile)

The connection goes to 127.0.0.1:PORT (QEMU's forward to the box's 443) with the name outpost.local
in TLS and Host, as a phone on the site's network reaches it. The box's certificate is its own
(made on its first boot): it is read and its name checked, not its issuer.
"""

import http.client
import json
import os
import re
import socket
import ssl
import sys
import time
import urllib.parse

NAME = "outpost.local"
COOKIES = "cookies.json"


def connection(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(NAME, port, context=ctx, timeout=30)
    # The name in TLS (SNI) and in Host; the address QEMU forwards.
    conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname=NAME)
    return conn


def request(port, method, path, body=None, headers=None):
    cookies = json.load(open(COOKIES)) if os.path.exists(COOKIES) else {}
    headers = dict(headers or {})
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    conn = connection(port)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    for h in resp.headers.get_all("Set-Cookie") or []:
        k, _, rest = h.partition("=")
        cookies[k.strip()] = rest.split(";", 1)[0]
    json.dump(cookies, open(COOKIES, "w"))
    return resp.status, resp.headers, data.decode("utf-8", "replace")


def wait(port, seconds):
    started = time.monotonic()
    last = None
    while time.monotonic() - started < seconds:
        try:
            status, _, body = request(port, "GET", "/healthz")
            if status == 200:
                print(f"{time.monotonic() - started:.0f}")
                return 0
            last = f"{status} {body[:200]}"
        except (OSError, http.client.HTTPException) as e:
            last = str(e)
        time.sleep(5)
    print(f"/healthz did not answer 200 in {seconds} s (last: {last})", file=sys.stderr)
    return 1


def healthz(port, seconds):
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            status, _, body = request(port, "GET", "/healthz")
            print(status, body)
            return 0
        except (OSError, http.client.HTTPException):
            time.sleep(5)
    print(f"/healthz did not answer in {seconds} s", file=sys.stderr)
    return 1


def form(port, path, fields, page=None):
    status, _, body = request(port, "GET", page or path)
    assert status == 200, f"GET {page or path}: {status} {body[:300]}"
    token = re.search(r'name="csrf" value="([^"]+)"', body)
    if token:
        fields = dict(fields, csrf=token.group(1))
    return request(
        port,
        "POST",
        path,
        body=urllib.parse.urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def setup(port, link, user):
    password = os.environ["OUTPOST_TEST_PASSWORD"]
    path = link[link.index("/setup/"):]
    status, _, body = form(
        port,
        path,
        {"display_name": "Quản trị viên", "username": user, "password": password, "password2": password},
    )
    if status != 303:
        print(f"setup: {status} {body[:300]}", file=sys.stderr)
        return 1
    return 0


def health(port):
    status, _, body = request(port, "GET", "/api/v1/health")
    if status != 200:
        print(f"health: {status} {body[:300]}", file=sys.stderr)
        return 1
    print(body)
    return 0


def csrf(port):
    status, _, body = request(port, "GET", "/api/v1/session")
    assert status == 200, f"session: {status} {body[:300]}"
    return json.loads(body)["csrf"]


def api(port, method, path, value, token):
    headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
    return request(port, method, path, body=json.dumps(value), headers=headers)


def login(port, user):
    password = os.environ["OUTPOST_TEST_PASSWORD"]
    if os.path.exists(COOKIES):
        os.remove(COOKIES)
    status, _, body = form(port, "/login", {"username": user, "password": password, "next": "/"})
    if status != 303:
        print(f"login: {status} {body[:300]}", file=sys.stderr)
        return 1
    return 0


def people(port, n):
    token = csrf(port)
    today = time.strftime("%Y-%m-%d")
    end = time.strftime("%Y-%m-%d", time.localtime(time.time() + 14 * 86400))
    ids = []
    for i in range(n):
        person = {
            "full_name": f"Nguyễn Văn Thử {i}",
            "phone": f"09120{i:05d}",
            "id_number": f"0791990{i:05d}",
            "quarantine_start": today,
            "quarantine_end": end,
        }
        status, _, body = api(port, "POST", "/api/v1/people", person, token)
        assert status == 201, f"admit: {status} {body[:300]}"
        ids.append(json.loads(body)["id"])
    with open("people.txt", "w") as f:
        f.write("\n".join(ids) + "\n")
    return 0


def declare(port, path):
    ids = open("people.txt").read().split()
    token = csrf(port)
    sent = 0
    with open(path, "a") as acked:
        while True:
            person = ids[sent % len(ids)]
            value = {"temperature": f"{36.5 + (sent % 5) / 10:.1f}", "spo2": "97", "symptoms": []}
            try:
                status, _, body = api(port, "POST", f"/api/v1/people/{person}/declarations", value, token)
            except (OSError, http.client.HTTPException):
                print(sent)
                return 0
            assert status == 201, f"declare: {status} {body[:300]}"
            acked.write(f"{person} {json.loads(body)['declaration']['id']}\n")
            acked.flush()
            os.fsync(acked.fileno())
            sent += 1


def check(port, path):
    wanted = {}
    for line in open(path).read().splitlines():
        person, declaration = line.split()
        wanted.setdefault(person, set()).add(declaration)
    missing = []
    for person, declarations in wanted.items():
        status, _, body = request(port, "GET", f"/api/v1/people/{person}/declarations")
        assert status == 200, f"declarations: {status} {body[:300]}"
        there = {d["id"] for d in json.loads(body)}
        missing += sorted(declarations - there)
    if missing:
        print(f"{len(missing)} acknowledged declarations lost: {missing[:5]}", file=sys.stderr)
        return 1
    print(sum(len(d) for d in wanted.values()))
    return 0


def stick(port, action, user, seconds):
    status, _, body = request(port, "GET", "/api/v1/health")
    assert status == 200, f"health: {status} {body[:300]}"
    before = (json.loads(body)["stick"]["status"] or {}).get("at")
    status, headers, body = form(port, f"/admin/stick/{action}", {}, page="/health")
    if status != 303:
        print(f"stick {action}: {status} {body[:300]}", file=sys.stderr)
        return 1
    started = time.monotonic()
    last = None
    while time.monotonic() - started < seconds:
        time.sleep(5)
        try:
            status, _, body = request(port, "GET", "/api/v1/health")
            if status in (401, 403):
                login(port, user)
                continue
            if status != 200:
                last = f"{status} {body[:200]}"
                continue
        except (OSError, http.client.HTTPException, AssertionError) as e:
            last = str(e)  # the box restarting after an update
            continue
        stick = json.loads(body)["stick"]
        done = stick["status"] or {}
        last = json.dumps(stick, ensure_ascii=False)
        if stick["pending"] is None and done.get("at") != before and done.get("state") in ("done", "failed"):
            print(f"{done['state']} in {time.monotonic() - started:.0f} s: {done['message']}")
            return 0 if done["state"] == "done" else 1
    print(f"stick {action}: not done in {seconds} s (last: {last})", file=sys.stderr)
    return 1


def main(argv):
    port, verb, args = int(argv[1]), argv[2], argv[3:]
    if verb == "wait":
        return wait(port, float(args[0]))
    if verb == "setup":
        return setup(port, args[0], args[1])
    if verb == "health":
        return health(port)
    if verb == "healthz":
        return healthz(port, float(args[0]))
    if verb == "login":
        return login(port, args[0])
    if verb == "people":
        return people(port, int(args[0]))
    if verb == "declare":
        return declare(port, args[0])
    if verb == "check":
        return check(port, args[0])
    if verb == "stick":
        return stick(port, args[0], args[1], float(args[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
