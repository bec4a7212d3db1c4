"""Which protocol versions and cipher suites a TLS server accepts, found with sslyze's own connections in a few
dozen handshakes instead of sslyze's one handshake per suite (533 for SSL 2.0 to TLS 1.3).

Run by the python of sslyze's virtualenv (.venv-sslyze), not imported by the audit: sslyze and its nassl builds live
there only. Prints {"protocols": {"TLSv1.2": [IANA suite names], ...}} or {"error": "..."} as JSON.

    tlsscan.py HOST PORT SERVER_NAME [CERT KEY]

CERT and KEY, a client certificate the server admits, let a listener that requires one finish its handshakes; without
them such a listener is still scanned, with more handshakes (below).

How: for each version, and for each of the two OpenSSL builds sslyze speaks it with (its legacy build for SSL 3.0 to
TLS 1.1 and for the TLS 1.2 suites modern OpenSSL dropped), offer every suite sslyze knows for that version at once.
The server picks one; record it, offer the rest again, until the server refuses the handshake. A version the
server refuses costs one handshake, and a version it accepts costs one more than the number of suites it accepts.
The result is the set sslyze's per-suite scan finds (tests/unit/test_tlsscan.py compares them), but a perimeter
that meters new connections per source (Rampart's does: 60 a minute, burst 30, by default) no longer throttles it.
A server that asks for a client certificate still reveals the suite it chose: the handshake stops after the
ServerHello, where sslyze's per-suite scan also counts the suite as accepted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nassl.ssl_client import ClientCertificateRequested, OpenSSLError
from sslyze import (
    ClientAuthenticationCredentials,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    TlsVersionEnum,
)
from sslyze.connection_helpers.tls_connection import NoCiphersAvailableBugInSSlyze
from sslyze.errors import (
    ConnectionToServerFailed,
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import (
    CipherSuiteAcceptedByServer,
    connect_with_cipher_suite,
)
from sslyze.plugins.openssl_cipher_suites._tls12_workaround import WorkaroundForTls12ForCipherSuites
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository
from sslyze.server_connectivity import ServerConnectivityInfo, check_connectivity_to_server

NAMES = {TlsVersionEnum.SSL_2_0: "SSLv2", TlsVersionEnum.SSL_3_0: "SSLv3", TlsVersionEnum.TLS_1_0: "TLSv1.0",
         TlsVersionEnum.TLS_1_1: "TLSv1.1", TlsVersionEnum.TLS_1_2: "TLSv1.2", TlsVersionEnum.TLS_1_3: "TLSv1.3"}


def needs_legacy(version: TlsVersionEnum, openssl_name: str) -> bool:
    """The OpenSSL build sslyze's per-suite scan uses for this suite (its own rule)."""
    if version == TlsVersionEnum.TLS_1_2:
        return WorkaroundForTls12ForCipherSuites.requires_legacy_openssl(openssl_name)
    return version != TlsVersionEnum.TLS_1_3


def accepted_by_elimination(info: ServerConnectivityInfo, version: TlsVersionEnum, legacy: bool,
                            suites: dict) -> list[str]:
    """IANA names of the suites the server accepts among ``suites`` (OpenSSL name -> CipherSuite)."""
    remaining, accepted = dict(suites), []
    while remaining:
        connection = info.get_preconfigured_tls_connection(override_tls_version=version,
                                                           should_use_legacy_openssl=legacy)
        client = connection.ssl_client
        try:
            if version == TlsVersionEnum.TLS_1_3:
                client.set_ciphersuites(":".join(remaining))
            else:
                client.set_cipher_list(":".join(remaining))
        except OpenSSLError:
            # None of the remaining suites exists in this OpenSSL build for this version (sslyze's per-suite
            # scan skips the same suites: NoCiphersAvailableBugInSSlyze).
            connection.close()
            break
        try:
            connection.connect()
        except (ClientCertificateRequested, ServerTlsConfigurationNotSupported):
            pass  # the server chose a suite; sslyze's per-suite scan counts these as accepted too
        except (ServerRejectedTlsHandshake, TlsHandshakeTimedOut, NoCiphersAvailableBugInSSlyze):
            connection.close()
            break
        try:
            chosen = client.get_current_cipher_name()
        finally:
            connection.close()
        if chosen is None:
            # OpenSSL 1.1 does not say which suite it was offered when the server asks for a client certificate
            # and none was given: test the rest one by one, as sslyze's per-suite scan does.
            return accepted + one_by_one(info, version, list(remaining.values()))
        if chosen not in remaining:
            raise RuntimeError(f"{NAMES[version]}: the server chose {chosen!r}, which was not offered")
        accepted.append(remaining.pop(chosen).name)
    return accepted


def one_by_one(info: ServerConnectivityInfo, version: TlsVersionEnum, suites: list) -> list[str]:
    """sslyze's per-suite test (the full scan's), for the suites elimination cannot decide."""
    accepted = []
    for suite in suites:
        try:
            result = connect_with_cipher_suite(info, version, suite)
        except (OpenSSLError, NoCiphersAvailableBugInSSlyze):
            continue  # not in this OpenSSL build for this version (sslyze's NoCiphersAvailableBugInSSlyze)
        if isinstance(result, CipherSuiteAcceptedByServer):
            accepted.append(suite.name)
    return accepted


def scan(host: str, port: int, server_name: str, cert: str | None = None, key: str | None = None) -> dict:
    location = ServerNetworkLocation(hostname=server_name, port=port, ip_address=host)
    credentials = ClientAuthenticationCredentials(certificate_chain_path=Path(cert), key_path=Path(key)) \
        if cert and key else None
    # The client certificate goes with modern OpenSSL only: sslyze's legacy build (1.0.2) cannot load every key
    # and certificate Rampart issues, and it names the chosen suite without finishing the handshake anyway.
    # sslyze's own connectivity check for each configuration: with the certificate, it finds that the server needs
    # none (so the handshakes complete); without, that it requires one (so a handshake the server stops after its
    # ServerHello counts as accepted, as in sslyze's per-suite scan).
    def connectivity(network: ServerNetworkConfiguration) -> ServerConnectivityInfo:
        return ServerConnectivityInfo(server_location=location, network_configuration=network,
                                      tls_probing_result=check_connectivity_to_server(location, network))

    try:
        legacy_info = connectivity(ServerNetworkConfiguration(server_name))
        modern_info = connectivity(ServerNetworkConfiguration(server_name, tls_client_auth_credentials=credentials)) \
            if credentials else legacy_info
    except ConnectionToServerFailed as exc:
        return {"error": f"sslyze could not connect: {exc.error_message}"}
    infos = {True: legacy_info, False: modern_info}
    protocols = {}
    for version, name in NAMES.items():
        known = CipherSuitesRepository.get_all_cipher_suites(version)
        accepted = []
        for legacy, info in infos.items():
            suites = {s.openssl_name: s for s in known if needs_legacy(version, s.openssl_name) == legacy}
            if suites:
                accepted += accepted_by_elimination(info, version, legacy, suites)
        protocols[name] = sorted(accepted)
    return {"protocols": protocols}


def main(argv: list[str]) -> int:
    host, port, server_name, *credentials = argv
    try:
        result = scan(host, int(port), server_name, *credentials)
    except (OSError, RuntimeError, OpenSSLError) as exc:  # OpenSSLError: e.g. a client certificate it cannot load
        result = {"error": f"TLS scan of {server_name}:{port} ({host}) failed: {type(exc).__name__}: {exc}"}
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
