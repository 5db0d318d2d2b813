"""Command line and process lifecycle: parse options, build the context, serve, write ready file."""

import argparse
import json
import os
import signal
import sys
import threading

from .admin import Admin
from .context import SimContext
from .dispatch import Dispatcher
from .server import SimHTTPServer
from .tls import make_ssl_context
from .vendor import discover

# Generic options whose default depends on the vendor (VendorApp.defaults); None = vendor decides.
VENDOR_DEFAULTS = {
    "token_ttl": 3600.0,
    "rate_limit": "off",
    "rate_limit_mode": "rolling",
    "token_rate_limit": "off",
    "retry_after_style": "seconds",
    "strict_search": "off",
    "history": "on",
    "timestamp_precision": "ms",
    "bulk_job_seconds": 2.0,
    "bulk_retry_after": 1,
    "bulk_file_max": 20000,
    "page_size": 50,
    "max_page_size": 1000,
}


def build_parser(vendors):
    p = argparse.ArgumentParser(
        prog="pms_sim.py",
        description="Local simulator of a PMS/EHR vendor interface (see tests/sim/README.md).")
    p.add_argument("--vendor", required=True, choices=sorted(vendors))
    g = p.add_argument_group("listening")
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=int, default=0, help="HTTPS port (0 = pick a free one)")
    g.add_argument("--cert", help="server certificate chain (PEM); enables HTTPS")
    g.add_argument("--key", help="server private key (PEM)")
    g.add_argument("--plain", action="store_true", help="also serve plain HTTP (always on without --cert)")
    g.add_argument("--plain-port", type=int, default=0)
    g.add_argument("--ready-file", help="write base URLs as JSON here once listening")
    g.add_argument("--verbose", action="store_true", help="log requests to stderr")
    g = p.add_argument_group("data set")
    g.add_argument("--seed", default="1")
    g.add_argument("--patients", type=int, default=20)
    g.add_argument("--resources", type=int, default=0,
                   help="size the data set to about this many resources (overrides --patients)")
    g.add_argument("--marker", default="", help="string planted in every patient name")
    g.add_argument("--types", default="default",
                   help="served resource types: 'default' (vendor profile), 'all', or a comma list")
    g.add_argument("--data-epoch", help="pin 'now' for generated data (FHIR instant); default: start time")
    g.add_argument("--timestamp-precision", choices=["ms", "s"])
    g = p.add_argument_group("auth")
    g.add_argument("--client-id", default="pmssim-client")
    g.add_argument("--client-public-key", action="append", help="PEM public key or certificate (repeatable)")
    g.add_argument("--client-jwks", action="append", help="JWKS JSON file with the client's public keys (repeatable)")
    g.add_argument("--client-secret", help="client secret (client_secret_basic / _post)")
    g.add_argument("--client-scopes", help="registered scopes (space separated); default: all read scopes")
    g.add_argument("--clients-file", help="JSON list of extra clients {client_id, client_secret, public_keys, jwks, scopes}")
    g.add_argument("--token-ttl", type=float)
    g.add_argument("--jwt-leeway", type=float, default=30.0, help="clock leeway for exp/nbf/iat (s)")
    g = p.add_argument_group("limits and faults")
    g.add_argument("--rate-limit", help="API limit N/WINDOW_S (e.g. 250/60, 100/1) or off")
    g.add_argument("--rate-limit-mode", choices=["rolling", "fixed"])
    g.add_argument("--token-rate-limit", help="token endpoint limit N/WINDOW_S or off")
    g.add_argument("--retry-after-style", choices=["seconds", "http-date", "none"],
                   help="Retry-After on 429: delta seconds, HTTP date, or no header")
    g.add_argument("--clock-skew", type=float, default=0.0, help="server clock offset in seconds")
    g.add_argument("--faults-file", help="JSON list of fault rules to install at start")
    g = p.add_argument_group("FHIR behaviour")
    g.add_argument("--strict-search", choices=["on", "off"],
                   help="refuse population searches (require patient/_id/identifier...)")
    g.add_argument("--history", choices=["on", "off"], help="serve _history (type and system level)")
    g.add_argument("--page-size", type=int, help="default _count")
    g.add_argument("--max-page-size", type=int, help="largest _count honoured")
    g.add_argument("--bulk-job-seconds", type=float, help="how long an export job runs")
    g.add_argument("--bulk-retry-after", type=int, help="Retry-After (s) announced while a job runs")
    g.add_argument("--bulk-file-max", type=int, help="max resources per NDJSON file")
    g.add_argument("--base-path", help="override the vendor's FHIR base path")
    return p


def parse_args(argv):
    vendors = discover()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--vendor")
    known, _ = pre.parse_known_args(argv)
    parser = build_parser(vendors)
    cls = vendors.get(known.vendor)
    if cls is not None:
        cls.add_arguments(parser.add_argument_group("%s options" % cls.name))
    args = parser.parse_args(argv)
    cls = vendors[args.vendor]
    for key, dflt in VENDOR_DEFAULTS.items():
        if getattr(args, key, None) is None:
            setattr(args, key, cls.defaults.get(key, dflt))
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    return args, cls


def write_ready(path, info):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=1)
    os.replace(tmp, path)


def main(argv=None):
    args, cls = parse_args(sys.argv[1:] if argv is None else argv)
    ctx = SimContext(args)
    app = cls(ctx)
    app.setup()
    if args.faults_file:
        with open(args.faults_file, encoding="utf-8") as fh:
            ctx.faults.set_rules(json.load(fh))
    dispatcher = Dispatcher(ctx, app, Admin(ctx, app))

    servers = []
    if args.cert:
        servers.append(SimHTTPServer((args.host, args.port), dispatcher, ctx.clock, ctx.stats,
                                     make_ssl_context(args.cert, args.key), args.verbose))
    if args.plain or not args.cert:
        servers.append(SimHTTPServer((args.host, args.plain_port), dispatcher, ctx.clock, ctx.stats,
                                     None, args.verbose))
    urls = {s.scheme: s.base_url for s in servers}
    ctx.urls = urls
    info = {"vendor": args.vendor, "pid": os.getpid(), "urls": urls,
            "admin": {k: v + "/_sim" for k, v in urls.items()}}
    info.update(app.ready_info(urls))
    ctx.ready = info

    threads = []
    for s in servers:
        t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                             name="listen-" + s.scheme, daemon=True)
        t.start()
        threads.append(t)

    def on_signal(signum, frame):
        ctx._shutdown.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.ready_file:
        write_ready(args.ready_file, info)
    else:
        print(json.dumps(info), flush=True)
    ctx.wait_shutdown()
    ctx.mutator.stop_background()
    for s in servers:
        s.stopping = True
        s.shutdown()
        s.server_close()
    return 0
