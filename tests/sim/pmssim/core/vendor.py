"""Vendor application interface and discovery.

A vendor simulator is a subclass of `VendorApp` registered in a module under `pmssim/vendors/`
through a module-level dict `VENDORS = {"vendor-name": VendorAppSubclass}`. The core imports
every module of that package at start-up, so adding a vendor means adding one file; nothing in
the core or in other vendors needs editing.

The core calls, per request (see dispatch.py):
  route(req)                -> (endpoint_key, handler, limit_scope) or None
  handler(req)              -> Response (may raise HttpError / AuthFailure)
  error_response(...)       -> vendor-shaped error (OperationOutcome, JSON, SOAP Fault ...)
  throttle_response(...)    -> vendor-shaped 429 (or in-band throttle)
  auth_failure_response(...) -> vendor-shaped 401/403
and at start-up: add_arguments (class method), defaults, build_data(), ready_info().
"""

import importlib
import pkgutil

from .fhirmodel import ALL_TYPES
from .http import Response, json_response
from .clock import fmt_http_date


class VendorApp:
    name = None            # CLI --vendor value
    summary = ""
    types = ALL_TYPES      # resource types this vendor serves (data set is filtered to these)
    id_style = "uuid"      # see core/ids.py
    defaults = {}          # defaults for generic CLI options (see cli.py) that this vendor changes

    def __init__(self, ctx):
        self.ctx = ctx

    # -- CLI ---------------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser):
        """Add vendor-specific CLI options (argparse parser)."""

    # -- start-up ----------------------------------------------------------------------------
    def setup(self):
        """Build the data set and register clients. Subclasses extend (call super first)."""
        self.ctx.build_data(self.served_types(), self.id_factory())
        self.ctx.register_clients(self.default_scopes())

    def default_scopes(self):
        """Scopes registered for the client unless --client-scopes is given."""
        out = []
        for t in self.served_types() + ["Group"]:
            out += ["system/%s.read" % t, "system/%s.rs" % t]
        return out

    # -- data --------------------------------------------------------------------------------
    def id_factory(self):
        from . import ids
        return ids.STYLES[self.id_style]()

    def served_types(self):
        wanted = self.ctx.args.types
        if wanted and wanted != "default":
            if wanted == "all":
                return list(ALL_TYPES)
            return [t.strip() for t in wanted.split(",") if t.strip()]
        return list(self.types)

    # -- requests ----------------------------------------------------------------------------
    def route(self, req):
        return None

    def error_response(self, req, status, code, message, headers=None):
        return json_response({"error": code, "message": message}, status, headers=headers)

    def throttle_response(self, req, retry_after_s, style=None):
        """429 in the vendor's style. style: 'seconds' | 'http-date' | 'none' (None = vendor default)."""
        return self.error_response(req, 429, "throttled", "Too many requests",
                                   headers=self.retry_after_headers(retry_after_s, style))

    def retry_after_headers(self, retry_after_s, style=None):
        style = style or self.ctx.retry_after_style
        if style == "none" or retry_after_s is None:
            return []
        secs = max(1, int(-(-float(retry_after_s) // 1)))
        if style == "http-date":
            # round up to a whole second so the date is never earlier than the real wait
            due_ms = self.ctx.clock.now_ms() + int(float(retry_after_s) * 1000)
            return [("Retry-After", fmt_http_date(-(-due_ms // 1000) * 1000))]
        return [("Retry-After", str(secs))]

    def auth_failure_response(self, req, exc):
        headers = [("WWW-Authenticate", exc.www_authenticate)] if exc.www_authenticate else []
        return self.error_response(req, exc.status, exc.code, exc.description, headers=headers)

    # -- info / admin ------------------------------------------------------------------------
    def ready_info(self, base_urls):
        """Extra fields for the ready file, given {'https': url, 'http': url}."""
        return {}

    def info(self):
        return {}

    def runtime_config(self):
        return {}

    def set_runtime_config(self, cfg):
        raise ValueError("no runtime options for this vendor")

    def expected(self, req, types):
        """The state a correct client must hold (admin GET /_sim/expected). FHIR vendors: the
        store's view (`Type/id` keys); vendor-specific APIs override it with their own ids."""
        return self.ctx.store.expected(types)

    def admin(self, req, sub):
        """Vendor-specific admin endpoints under /_sim/vendor/<sub>. Return Response or None."""
        return None

    def not_found(self, req):
        return self.error_response(req, 404, "not-found", "Unknown resource path %s" % req.path)


def discover():
    """Import every module in pmssim.vendors and collect their VENDORS dicts."""
    from .. import vendors as pkg
    found = {}
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("_"):
            continue
        m = importlib.import_module("%s.%s" % (pkg.__name__, mod.name))
        for name, cls in getattr(m, "VENDORS", {}).items():
            found[name] = cls
    return found


def text_response(text, status=200):
    return Response(status, text.encode("utf-8"), content_type="text/plain; charset=utf-8")
