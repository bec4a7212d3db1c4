"""Probe run INSIDE a test container with the container's own python3 (stdlib only), fed on stdin.

  python3 - tcp HOST PORT TIMEOUT [SOURCE]       -> {"result": "open" | "refused" | "timeout" | "unreachable"}
  python3 - hold HOST PORT COUNT TIMEOUT SOURCE  -> {"held": [COUNT results, as tcp], "other": result}: opens
           COUNT connections from SOURCE one after the other and keeps the open ones open; while they are held,
           one more from the container's own address ("other"); then closes them all.
  python3 - mqtt HOST PORT TLS_NAME CAFILE USER PASSWORD TOPIC
        -> {"connack": rc, "roundtrip": true/false}: TLS (hostname checked against TLS_NAME, so the broker
           can be dialled by any of its addresses), MQTT 3.1.1 CONNECT, then SUBSCRIBE + PUBLISH on TOPIC
           and wait for the message to come back.
"""

import json
import socket
import ssl
import struct
import sys


def _connect(host, port, timeout, source=None):
    """(result, the connected socket or None)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(float(timeout))
    if source:
        sock.bind((source, 0))
    try:
        sock.connect((host, int(port)))
        return "open", sock
    except ConnectionRefusedError:
        result = "refused"
    except TimeoutError:
        result = "timeout"
    except OSError:
        result = "unreachable"
    sock.close()
    return result, None


def tcp(host, port, timeout, source=None):
    result, sock = _connect(host, port, timeout, source)
    if sock:
        sock.close()
    return result


def hold(host, port, count, timeout, source):
    held, socks = [], []
    try:
        for _ in range(int(count)):
            result, sock = _connect(host, port, timeout, source)
            held.append(result)
            if sock:
                socks.append(sock)
        return {"held": held, "other": tcp(host, port, timeout)}
    finally:
        for sock in socks:
            sock.close()


def _remaining(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _read_packet(sock):
    head = sock.recv(1)
    if not head:
        raise ConnectionError("closed")
    mult, length = 1, 0
    while True:
        b = sock.recv(1)[0]
        length += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return head[0], body


def mqtt(host, port, tls_name, cafile, user, password, topic):
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection((host, int(port)), timeout=10)
    sock = ctx.wrap_socket(raw, server_hostname=tls_name)
    var = _str("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 30)
    payload = _str("") + _str(user) + _str(password)
    sock.sendall(bytes([0x10]) + _remaining(len(var) + len(payload)) + var + payload)
    kind, body = _read_packet(sock)
    if kind != 0x20:
        return {"connack": None, "roundtrip": False}
    rc = body[1]
    if rc != 0:
        return {"connack": rc, "roundtrip": False}
    sub = struct.pack("!H", 1) + _str(topic) + bytes([0])
    sock.sendall(bytes([0x82]) + _remaining(len(sub)) + sub)
    kind, body = _read_packet(sock)
    if kind != 0x90 or body[-1] == 0x80:
        return {"connack": rc, "roundtrip": False, "suback": list(body)}
    msg = b"perimeter-probe"
    pub = _str(topic) + msg
    sock.sendall(bytes([0x30]) + _remaining(len(pub)) + pub)
    while True:
        kind, body = _read_packet(sock)
        if kind & 0xF0 == 0x30:
            tlen = struct.unpack("!H", body[:2])[0]
            ok = body[2 + tlen:] == msg
            sock.sendall(bytes([0xE0, 0]))
            sock.close()
            return {"connack": rc, "roundtrip": ok}


def main(argv):
    try:
        if argv[0] == "tcp":
            out = {"result": tcp(*argv[1:])}
        else:
            out = hold(*argv[1:]) if argv[0] == "hold" else mqtt(*argv[1:])
    except Exception as exc:  # the test reads the error
        out = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out))


main(sys.argv[1:])
