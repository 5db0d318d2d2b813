"""SimContext: the shared state one simulator process owns (clock, data, auth, limits, faults)."""

import gc
import threading
import time

from . import auth, datagen
from .clock import SimClock, parse_instant_ms
from .faults import FaultInjector
from .mutate import Mutator
from .ratelimit import RateLimiter, parse_rate
from .stats import Stats
from .store import ResourceStore


class SimContext:
    def __init__(self, args):
        self.args = args
        self.clock = SimClock(args.clock_skew or 0.0)
        self.stats = Stats()
        self.faults = FaultInjector(args.seed)
        self.registry = auth.ClientRegistry()
        self.tokens = auth.TokenStore()
        self.store = ResourceStore(self.clock, args.timestamp_precision)
        self.limiters = self.stats.limiters
        self.retry_after_style = args.retry_after_style
        self.revocations = 0
        self.not_before = {}       # Retry-After discipline per limit scope (dispatch.py)
        self.ready = {}
        self.gen = None
        self.mutator = None
        self._shutdown = threading.Event()
        self._runtime_hooks = []   # (get_fn, set_fn) pairs registered by apps
        self.set_rate_limit("api", args.rate_limit, args.rate_limit_mode)
        self.set_rate_limit("token", args.token_rate_limit, "rolling")

    # -- rate limits -------------------------------------------------------------------------
    def set_rate_limit(self, scope, spec, mode="rolling"):
        rate = parse_rate(spec)
        if rate is None:
            self.limiters.pop(scope, None)
        else:
            self.limiters[scope] = RateLimiter(rate[0], rate[1], mode or "rolling", scope)

    # -- data --------------------------------------------------------------------------------
    def build_data(self, types, id_factory):
        a = self.args
        epoch_ms = parse_instant_ms(a.data_epoch) if a.data_epoch else int(time.time() * 1000) + int((a.clock_skew or 0) * 1000)
        self.gen = datagen.DataGenerator(a.seed, a.marker, id_factory, types, epoch_ms)
        patients = a.patients
        if a.resources:
            patients = datagen.patients_for_resources(a.resources, types)
        gc.disable()        # many small containers: cyclic GC passes only cost time here
        try:
            self.store.load_initial(self.gen.generate(patients))
        finally:
            gc.enable()
            gc.freeze()     # the loaded data set is long-lived; keep it out of later GC passes
        for t in types:
            self.store.rows.setdefault(t, [])
        self.mutator = Mutator(self.store, self.gen, a.seed)

    # -- clients -----------------------------------------------------------------------------
    def register_clients(self, default_scopes):
        a = self.args
        keys = []
        for path in a.client_public_key or ():
            keys.extend(auth.load_public_keys(path))
        for path in a.client_jwks or ():
            keys.extend(auth.load_public_keys(path))
        scopes = a.client_scopes.split() if a.client_scopes else list(default_scopes)
        self.registry.add(auth.Client(a.client_id, a.client_secret, keys, scopes))
        if a.clients_file:
            import json
            with open(a.clients_file, encoding="utf-8") as fh:
                for c in json.load(fh):
                    ks = []
                    for p in c.get("public_keys", ()):
                        ks.extend(auth.load_public_keys(p))
                    for jwk in c.get("jwks", {}).get("keys", ()):
                        ks.append({"kid": jwk.get("kid"), "key": auth.jwk_to_key(jwk)})
                    self.registry.add(auth.Client(c["client_id"], c.get("client_secret"), ks,
                                                  c.get("scopes", default_scopes)))

    def revoke_all_tokens(self):
        self.revocations += 1
        return self.tokens.revoke_all()

    # -- runtime config ----------------------------------------------------------------------
    def add_runtime_hook(self, getter, setter):
        self._runtime_hooks.append((getter, setter))

    def runtime_config(self):
        out = {
            "rate_limit": self._rate_str("api"),
            "token_rate_limit": self._rate_str("token"),
            "retry_after_style": self.retry_after_style,
            "token_ttl": self.args.token_ttl,
        }
        for getter, _ in self._runtime_hooks:
            out.update(getter())
        return out

    def _rate_str(self, scope):
        lim = self.limiters.get(scope)
        return "off" if lim is None else "%d/%g" % (lim.limit, lim.window)

    def set_runtime_config(self, cfg):
        cfg = dict(cfg)
        if "rate_limit" in cfg:
            self.set_rate_limit("api", cfg.pop("rate_limit"), cfg.pop("rate_limit_mode", None) or
                                (self.limiters["api"].mode if "api" in self.limiters else self.args.rate_limit_mode))
        if "token_rate_limit" in cfg:
            self.set_rate_limit("token", cfg.pop("token_rate_limit"))
        if "retry_after_style" in cfg:
            style = cfg.pop("retry_after_style")
            if style not in ("seconds", "http-date", "none"):
                raise ValueError("retry_after_style must be seconds, http-date or none")
            self.retry_after_style = style
        if "token_ttl" in cfg:
            self.args.token_ttl = float(cfg.pop("token_ttl"))
        for _, setter in self._runtime_hooks:
            setter(cfg)
        if cfg:
            raise ValueError("unknown runtime settings: %s" % ", ".join(sorted(cfg)))

    # -- lifecycle ---------------------------------------------------------------------------
    def request_shutdown(self):
        time.sleep(0.05)
        self._shutdown.set()

    def wait_shutdown(self):
        while not self._shutdown.wait(0.5):
            pass
