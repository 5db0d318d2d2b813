"""OAuth 2.0 / SMART Backend Services building blocks.

- Client registry: client id, optional client secret, public keys (PEM key, PEM certificate or
  JWKS file), registered scopes.
- JWT client assertion verification (RS256/RS384/RS512/ES256/ES384 as the vendor allows):
  signature, iss = sub = client_id, aud = token endpoint URL, exp not past and at most
  `max_exp_s` (300) ahead, optional nbf/iat sanity, jti uniqueness (replay -> invalid_grant).
- Client secret authentication (client_secret_basic / client_secret_post).
- Scope intersection (SMART v1 `system/Patient.read`, v2 `system/Patient.rs`, wildcards).
- Opaque bearer tokens with a TTL, revocation, and bearer checks on API requests.

Error mapping (token endpoint):
  unknown client, bad signature, unsupported alg, wrong iss/sub/aud, wrong secret,
  auth method not allowed for the vendor      -> 401 invalid_client
  assertion expired / exp too far ahead / nbf in the future / jti reused -> 400 invalid_grant
  no requested scope is registered            -> 400 invalid_scope
  grant_type not client_credentials           -> 400 unsupported_grant_type
  malformed request                            -> 400 invalid_request
"""

import base64
import binascii
import json
import secrets
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class OAuthError(Exception):
    def __init__(self, status, error, description, headers=None):
        super().__init__("%s: %s" % (error, description))
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or []


class AuthFailure(Exception):
    """Bearer check failed on an API request: 401 (or 403 for scope problems)."""

    def __init__(self, status, description, www_authenticate=None, code="security"):
        super().__init__(description)
        self.status = status
        self.description = description
        self.www_authenticate = www_authenticate
        self.code = code


# -- keys ----------------------------------------------------------------------------------------

def b64url_decode(text):
    if isinstance(text, str):
        text = text.encode("ascii")
    text += b"=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text)


def _b64_int(text):
    return int.from_bytes(b64url_decode(text), "big")


def jwk_to_key(jwk):
    kty = jwk.get("kty")
    if kty == "RSA":
        return rsa.RSAPublicNumbers(_b64_int(jwk["e"]), _b64_int(jwk["n"])).public_key()
    if kty == "EC":
        curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}[jwk["crv"]]
        return ec.EllipticCurvePublicNumbers(_b64_int(jwk["x"]), _b64_int(jwk["y"]), curve).public_key()
    raise ValueError("unsupported JWK kty %r" % kty)


def load_public_keys(path):
    """Read public keys from a JWKS JSON file, a PEM public key or PEM certificate(s).

    Returns a list of {"kid": str|None, "key": public key object}.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    stripped = data.strip()
    if stripped.startswith(b"{"):
        doc = json.loads(stripped)
        keys = doc.get("keys", [doc])
        return [{"kid": k.get("kid"), "key": jwk_to_key(k)} for k in keys]
    out = []
    if b"-----BEGIN CERTIFICATE-----" in data:
        end = b"-----END CERTIFICATE-----"
        for block in data.split(end)[:-1]:
            pem = block[block.index(b"-----BEGIN CERTIFICATE-----"):] + end + b"\n"
            out.append({"kid": None, "key": x509.load_pem_x509_certificate(pem).public_key()})
        return out
    out.append({"kid": None, "key": serialization.load_pem_public_key(data)})
    return out


# -- scopes --------------------------------------------------------------------------------------

_V1 = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}


def parse_scope(scope):
    """'system/Patient.read' -> ('system', 'Patient', {'r','s'}, 'v1'); None if not a resource scope."""
    ctx, sep, rest = scope.partition("/")
    if not sep or ctx not in ("system", "user", "patient"):
        return None
    rtype, dot, perm = rest.rpartition(".")
    if not dot or not rtype:
        return None
    perm = perm.split("?", 1)[0]
    if perm in _V1:
        return ctx, rtype, _V1[perm], "v1"
    if perm and all(c in "cruds" for c in perm) and "".join(sorted(perm, key="cruds".index)) == perm:
        return ctx, rtype, frozenset(perm), "v2"
    return None


def _covers(reg, req):
    return reg[0] == req[0] and (reg[1] == "*" or reg[1] == req[1]) and req[2] <= reg[2]


def grant_scopes(requested, registered):
    """Intersection of requested and registered scopes (SMART semantics, see module doc)."""
    reg_parsed = [(s, parse_scope(s)) for s in registered]
    granted = []
    for r in requested:
        rp = parse_scope(r)
        if rp is None:
            if r in registered:
                granted.append(r)
            continue
        if any(p is not None and _covers(p, rp) for _, p in reg_parsed):
            granted.append(r)
            continue
        if rp[1] == "*":
            for s, p in reg_parsed:
                if p is None or p[0] != rp[0] or p[1] == "*":
                    continue
                perms = rp[2] & p[2]
                if not perms:
                    continue
                if rp[3] == "v1" and perms >= _V1["read"] and not perms & _V1["write"]:
                    granted.append("%s/%s.read" % (rp[0], p[1]))
                else:
                    granted.append("%s/%s.%s" % (rp[0], p[1], "".join(c for c in "cruds" if c in perms)))
    seen, out = set(), []
    for g in granted:
        if g not in seen:
            seen.add(g)
            out.append(g)
    return out


class ScopeSet:
    def __init__(self, scopes):
        self.scopes = list(scopes)
        self._parsed = [p for p in (parse_scope(s) for s in scopes) if p is not None]

    def allows(self, rtype, interaction):
        """interaction: 'read' (needs r) or 'search' (needs s)."""
        need = "r" if interaction == "read" else "s"
        return any((p[1] == "*" or p[1] == rtype) and need in p[2] for p in self._parsed)

    def has(self, scope):
        return scope in self.scopes

    def __str__(self):
        return " ".join(self.scopes)


# -- clients and tokens --------------------------------------------------------------------------

class Client:
    def __init__(self, client_id, secret=None, keys=None, scopes=None):
        self.client_id = client_id
        self.secret = secret
        self.keys = list(keys or [])
        self.scopes = list(scopes or [])


class ClientRegistry:
    def __init__(self):
        self._clients = {}

    def add(self, client):
        self._clients[client.client_id] = client

    def get(self, client_id):
        return self._clients.get(client_id)

    def all(self):
        return list(self._clients.values())


class TokenInfo:
    __slots__ = ("token", "client_id", "scopes", "expires_mono", "issued")

    def __init__(self, token, client_id, scopes, ttl):
        self.token = token
        self.client_id = client_id
        self.scopes = ScopeSet(scopes)
        self.issued = time.monotonic()
        self.expires_mono = self.issued + ttl


class TokenStore:
    def __init__(self):
        self._lock = threading.Lock()
        self._tokens = {}
        self._revoked = set()

    def issue(self, client_id, scopes, ttl):
        tok = secrets.token_urlsafe(32)
        info = TokenInfo(tok, client_id, scopes, ttl)
        with self._lock:
            self._tokens[tok] = info
            if len(self._tokens) > 10000:
                now = time.monotonic()
                self._tokens = {k: v for k, v in self._tokens.items() if v.expires_mono > now}
        return info

    def check(self, token):
        """Returns (TokenInfo, None) or (None, reason)."""
        with self._lock:
            if token in self._revoked:
                return None, "token revoked"
            info = self._tokens.get(token)
        if info is None:
            return None, "unknown token"
        if time.monotonic() >= info.expires_mono:
            return None, "token expired"
        return info, None

    def revoke(self, token):
        with self._lock:
            self._tokens.pop(token, None)
            self._revoked.add(token)

    def revoke_all(self):
        with self._lock:
            n = len(self._tokens)
            self._revoked.update(self._tokens)
            self._tokens.clear()
            return n


# -- JWT -----------------------------------------------------------------------------------------

_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_EC_CURVES = {"ES256": ("secp256r1", 32), "ES384": ("secp384r1", 48), "ES512": ("secp521r1", 66)}


def verify_signature(alg, key, signing_input, sig):
    try:
        if alg.startswith("RS") and isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, signing_input, padding.PKCS1v15(), _HASHES[alg[2:]]())
            return True
        if alg in _EC_CURVES and isinstance(key, ec.EllipticCurvePublicKey):
            curve, size = _EC_CURVES[alg]
            if key.curve.name != curve or len(sig) != 2 * size:
                return False
            r = int.from_bytes(sig[:size], "big")
            s = int.from_bytes(sig[size:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(_HASHES[alg[2:]]()))
            return True
    except (InvalidSignature, ValueError, KeyError):
        return False
    return False


class JtiCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._seen = {}

    def use(self, jti, exp_s):
        """Record a jti; False if it was already used (and has not expired from the cache)."""
        now = time.time()
        with self._lock:
            if len(self._seen) > 50000:
                self._seen = {k: v for k, v in self._seen.items() if v > now - 600}
            if jti in self._seen:
                return False
            self._seen[jti] = max(exp_s, now)
            return True


class TokenService:
    """The client_credentials token endpoint, configurable per vendor profile.

    auth_methods: subset of {"private_key_jwt", "client_secret_basic", "client_secret_post"}.
    jwt_algs: accepted JWS algs for client assertions.
    error_body: callable(error, description) -> dict (vendor's OAuth error shape).
    expires_in_string: athenahealth sends expires_in as a string.
    """

    def __init__(self, clock, registry, tokens, auth_methods, jwt_algs, token_ttl,
                 leeway_s=60, max_exp_s=300, error_body=None, expires_in_string=False,
                 token_type="bearer", stats=None):
        self.clock = clock
        self.registry = registry
        self.tokens = tokens
        self.auth_methods = list(auth_methods)
        self.jwt_algs = list(jwt_algs)
        self.token_ttl = token_ttl
        self.leeway_s = leeway_s
        self.max_exp_s = max_exp_s
        self.error_body = error_body or (lambda e, d: {"error": e, "error_description": d})
        self.expires_in_string = expires_in_string
        self.token_type = token_type
        self.jti = JtiCache()
        self.stats = stats

    # Client authentication ----------------------------------------------------------------
    def _auth_assertion(self, form, audiences):
        if "private_key_jwt" not in self.auth_methods:
            raise OAuthError(401, "invalid_client", "private_key_jwt is not supported by this server")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError(400, "invalid_request", "client_assertion_type must be " + ASSERTION_TYPE)
        jwt = form.get("client_assertion", "")
        parts = jwt.split(".")
        if len(parts) != 3:
            raise OAuthError(401, "invalid_client", "client_assertion is not a compact JWS")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise OAuthError(401, "invalid_client", "client_assertion is not a valid JWS") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise OAuthError(401, "invalid_client", "client_assertion is not a valid JWS")
        alg = header.get("alg")
        if alg not in self.jwt_algs:
            raise OAuthError(401, "invalid_client", "unsupported client assertion alg %r (accepted: %s)"
                             % (alg, ", ".join(self.jwt_algs)))
        iss, sub = claims.get("iss"), claims.get("sub")
        client = self.registry.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise OAuthError(401, "invalid_client", "unknown client (iss)")
        if sub != iss:
            raise OAuthError(401, "invalid_client", "iss and sub must both be the client_id")
        if form.get("client_id") and form["client_id"] != iss:
            raise OAuthError(401, "invalid_client", "client_id does not match the assertion")
        kid = header.get("kid")
        keys = [k for k in client.keys if kid is None or k["kid"] is None or k["kid"] == kid]
        if not keys:
            raise OAuthError(401, "invalid_client", "no registered key matches kid %r" % kid)
        signing_input = (parts[0] + "." + parts[1]).encode("ascii")
        if not any(verify_signature(alg, k["key"], signing_input, sig) for k in keys):
            raise OAuthError(401, "invalid_client", "client assertion signature verification failed")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(a in audiences for a in auds):
            raise OAuthError(401, "invalid_client", "aud must be the token endpoint URL")
        now = self.clock.now()
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)):
            raise OAuthError(400, "invalid_grant", "exp claim is required")
        if exp <= now - self.leeway_s:
            raise OAuthError(400, "invalid_grant", "client assertion has expired")
        if exp > now + self.max_exp_s + self.leeway_s:
            raise OAuthError(400, "invalid_grant", "client assertion exp is more than %d s in the future"
                             % self.max_exp_s)
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and nbf > now + self.leeway_s:
            raise OAuthError(400, "invalid_grant", "client assertion is not yet valid (nbf)")
        iat = claims.get("iat")
        if isinstance(iat, (int, float)) and iat > now + self.leeway_s:
            raise OAuthError(400, "invalid_grant", "client assertion iat is in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise OAuthError(400, "invalid_grant", "jti claim is required")
        if not self.jti.use(iss + "\x00" + jti, exp):
            raise OAuthError(400, "invalid_grant", "client assertion jti has already been used")
        return client

    def _auth_secret(self, req, form):
        authz = req.header("authorization", "")
        if authz[:6].lower() == "basic ":
            if "client_secret_basic" not in self.auth_methods:
                raise OAuthError(401, "invalid_client", "client_secret_basic is not supported by this server")
            try:
                raw = base64.b64decode(authz[6:].strip(), validate=True).decode("utf-8")
                cid, _, secret = raw.partition(":")
                cid, secret = urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(secret)
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise OAuthError(401, "invalid_client", "malformed Basic credentials",
                                 [("WWW-Authenticate", 'Basic realm="token"')]) from None
            hdrs = [("WWW-Authenticate", 'Basic realm="token"')]
        elif form.get("client_secret") is not None:
            if "client_secret_post" not in self.auth_methods:
                raise OAuthError(401, "invalid_client", "client_secret_post is not supported by this server")
            cid, secret = form.get("client_id", ""), form["client_secret"]
            hdrs = []
        else:
            raise OAuthError(401, "invalid_client", "client authentication is required")
        client = self.registry.get(cid)
        if client is None or not client.secret or not secrets.compare_digest(
                client.secret.encode("utf-8"), secret.encode("utf-8")):
            raise OAuthError(401, "invalid_client", "client authentication failed", hdrs)
        return client

    # Token endpoint ------------------------------------------------------------------------
    def token_request(self, req, audiences, extra_required_scopes=()):
        """Handle POST token. Returns (status, body_dict, headers)."""
        if self.stats:
            self.stats.inc("token_requests")
        try:
            if req.method != "POST":
                raise OAuthError(405, "invalid_request", "token endpoint requires POST")
            pairs = req.form()
            if pairs is None:
                raise OAuthError(400, "invalid_request",
                                 "Content-Type must be application/x-www-form-urlencoded")
            form = {}
            for k, v in pairs:
                if k in form:
                    raise OAuthError(400, "invalid_request", "parameter %s repeated" % k)
                form[k] = v
            if form.get("grant_type") != "client_credentials":
                raise OAuthError(400, "unsupported_grant_type", "grant_type must be client_credentials")
            if "client_assertion" in form or "client_assertion_type" in form:
                if req.header("authorization") or "client_secret" in form:
                    raise OAuthError(400, "invalid_request", "use exactly one client authentication method")
                client = self._auth_assertion(form, audiences)
            else:
                client = self._auth_secret(req, form)
            requested = form.get("scope", "").split()
            if not requested:
                raise OAuthError(400, "invalid_scope", "scope is required")
            granted = grant_scopes(requested, client.scopes)
            if not granted:
                raise OAuthError(400, "invalid_scope", "none of the requested scopes is registered for this client")
            ttl = self.token_ttl() if callable(self.token_ttl) else self.token_ttl
            info = self.tokens.issue(client.client_id, granted, ttl)
            if self.stats:
                self.stats.inc("tokens_issued")
            ttl = max(1, int(round(ttl)))
            body = {"access_token": info.token, "token_type": self.token_type,
                    "expires_in": str(ttl) if self.expires_in_string else ttl,
                    "scope": " ".join(granted)}
            return 200, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        except OAuthError as exc:
            if self.stats and exc.status != 401:   # 401s are counted by the dispatcher
                self.stats.inc("auth_failures")
            return exc.status, self.error_body(exc.error, exc.description), exc.headers + [("Cache-Control", "no-store")]

    # API requests --------------------------------------------------------------------------
    def check_bearer(self, req, realm="pmssim"):
        """Return the TokenInfo for the request's bearer token or raise AuthFailure(401)."""
        authz = req.header("authorization", "")
        if authz[:7].lower() != "bearer " or not authz[7:].strip():
            raise AuthFailure(401, "missing bearer token", 'Bearer realm="%s"' % realm, code="login")
        info, reason = self.tokens.check(authz[7:].strip())
        if info is None:
            raise AuthFailure(401, reason, 'Bearer realm="%s", error="invalid_token", error_description="%s"'
                              % (realm, reason), code="expired" if "expired" in reason else "security")
        return info
