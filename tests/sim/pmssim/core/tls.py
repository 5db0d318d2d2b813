"""TLS for the simulator's HTTPS listener (certificate and key given on the command line).

Tests generate a private CA and a server certificate for 127.0.0.1/localhost; the client trusts
that CA. TLS 1.2 minimum, ALPN http/1.1. The handshake runs in the connection's own thread
(see server.py), so a slow or broken client never blocks accept().
"""

import ssl


def make_ssl_context(cert_file, key_file):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    try:
        ctx.set_alpn_protocols(["http/1.1"])
    except NotImplementedError:
        pass
    return ctx
