"""Probes of the log pipeline, for tests and the audit (tooling: never imported by the collection).

``relp_send`` is a minimal RELP-over-TLS client (does the collector admit this certificate?); ``relp_send_argv``
runs the same client inside a sender's container, with that host's own certificate and from its own address (what
root on an admitted host can do); ``attacker_argv`` runs failed MQTT logins from a container that has only Python's
standard library.
"""

from __future__ import annotations

import inspect
import json
import socket
import ssl

from rampart.mqttprobe import connect_packet


def relp_frame(txnr: int, command: str, data: bytes = b"") -> bytes:
    """One RELP frame: TXNR SP COMMAND SP DATALEN [SP DATA] LF."""
    head = f"{txnr} {command} {len(data)}".encode()
    return head + (b" " + data if data else b"") + b"\n"


def parse_relp_frames(buffer: bytes) -> tuple[list[tuple[int, str, bytes]], bytes]:
    """Complete frames in ``buffer`` as (txnr, command, data), and the unparsed rest."""
    frames = []
    while True:
        parts = buffer.split(b" ", 3)
        if len(parts) < 3:
            return frames, buffer
        try:
            txnr, command = int(parts[0]), parts[1].decode()
            length_field = parts[2].split(b"\n", 1)[0]
            length = int(length_field)
        except ValueError as exc:
            raise ValueError(f"not a RELP frame: {buffer[:40]!r}") from exc
        if length == 0:
            header = b" ".join(parts[:2]) + b" " + length_field
            if len(buffer) < len(header) + 1:
                return frames, buffer
            frames.append((txnr, command, b""))
            buffer = buffer[len(header) + 1:]
            continue
        header = b" ".join(parts[:3]) + b" "
        if len(buffer) < len(header) + length + 1:
            return frames, buffer
        frames.append((txnr, command, buffer[len(header):len(header) + length]))
        buffer = buffer[len(header) + length + 1:]


RELP_OFFER = b"relp_version=0\nrelp_software=rampart-probe\ncommands=syslog"


def relp_send(address: str, port: int, ctx: ssl.SSLContext, server_name: str, lines: list[str],
              timeout: float = 5.0) -> list[str]:
    """Open a RELP session over TLS, send ``lines`` as syslog messages, return each reply's status text.

    Raises ssl.SSLError or OSError when the collector refuses the session.
    """
    replies: list[str] = []
    with (socket.create_connection((address, port), timeout=timeout) as raw,
          ctx.wrap_socket(raw, server_hostname=server_name) as s):
        s.sendall(relp_frame(1, "open", RELP_OFFER))
        for n, line in enumerate(lines, start=2):
            s.sendall(relp_frame(n, "syslog", line.encode()))
        wanted, buffer = 1 + len(lines), b""
        while len(replies) < wanted:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError(f"the collector closed the session after {len(replies)} replies")
            buffer += chunk
            frames, buffer = parse_relp_frames(buffer)
            replies += [data.split(b"\n", 1)[0].decode() for _, command, data in frames if command == "rsp"]
        s.sendall(relp_frame(wanted + 1, "close"))
    return replies


# The end of the script relp_send_argv runs: the functions above, then this.
_RELP_SEND_MAIN = """
args = json.loads(sys.stdin.read())
ctx = ssl.create_default_context(cafile=args["cafile"])
ctx.load_cert_chain(args["certfile"], args["keyfile"])
print(json.dumps(relp_send(args["address"], args["port"], ctx, args["server_name"], args["lines"])))
"""


def relp_send_argv(address: str, port: int, server_name: str, cafile: str, certfile: str, keyfile: str,
                   lines: list[str]) -> tuple[list[str], str]:
    """The python3 command line that runs :func:`relp_send` in a container with only the standard library (for
    `docker exec -i <sender> ...`), and its standard input (the arguments, as JSON: the lines may be many). It
    prints the replies as a JSON list. The paths are the container's."""
    script = "\n".join(["import json, socket, ssl, sys", f"RELP_OFFER = {RELP_OFFER!r}",
                         *(inspect.getsource(f) for f in (relp_frame, parse_relp_frames, relp_send)),
                         _RELP_SEND_MAIN])
    args = {"address": address, "port": port, "server_name": server_name, "cafile": cafile, "certfile": certfile,
            "keyfile": keyfile, "lines": lines}
    return ["python3", "-c", script], json.dumps(args)


# Run inside the attacker container with `python3 -c` (see attacker_argv). Mode "login": a TLS session
# and one CONNECT per try; mode "connect": a TLS session closed at once (a connection flood; Mosquitto
# logs a connection only once the TLS handshake is done).
# Prints one line per try: "connack <code>", "connected", or "error <exception>" (e.g. once banned).
ATTACKER_SCRIPT = """
import socket, ssl, sys
mode, host, port, tries = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
packet = bytes.fromhex(sys.argv[5])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for i in range(tries):
    try:
        with socket.create_connection((host, port), timeout=3) as raw:
            with ctx.wrap_socket(raw) as s:
                if mode == "connect":
                    print("connected", flush=True)
                    continue
                s.sendall(packet)
                data = s.recv(4)
                print("connack", data[3] if len(data) == 4 else "short", flush=True)
    except Exception as exc:
        print("error", type(exc).__name__, flush=True)
"""


def attacker_argv(mode: str, host: str, port: int, tries: int, username: str = "", password: str = "",
                  client_id: str = "") -> list[str]:
    """The python3 command line that runs ATTACKER_SCRIPT (for `docker exec <attacker> ...`)."""
    if mode not in ("login", "connect"):
        raise ValueError(f"mode must be login or connect, not {mode!r}")
    packet = connect_packet(client_id, username or None, password or None)
    return ["python3", "-c", ATTACKER_SCRIPT, mode, host, str(port), str(tries), packet.hex()]


def attacker_results(output: str) -> list[str]:
    """The attacker's per-try outcomes: "connack:<code>", "connected" or "error:<name>"."""
    return [":".join(line.split(" ", 1)) for line in output.splitlines() if line.strip()]
