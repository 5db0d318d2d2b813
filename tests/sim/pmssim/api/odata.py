"""A small OData query subset for the NextGen Enterprise API simulator.

$filter grammar (case-insensitive keywords):
  expr    := term (("and" | "or") term)*          ("and" binds tighter than "or")
  term    := "not" term | "(" expr ")" | field op literal
  op      := eq | ne | gt | ge | lt | le
  literal := 'string' (quote doubled inside) | number | true | false | null
           | datetime'2016-01-01T00:00:00' | dateTime'2016-01-01' (OData v3)
           | 2016-01-01T00:00:00[.fff][Z|+hh:mm] | 2016-01-01 (OData v4, bare)
$orderby := field [asc|desc] ("," field [asc|desc])*
$top / $skip non-negative integers; $count=true.

Date-time literals without a zone are practice local time (the API's own zone-less format).
"""

import re

_TOKEN = re.compile(r"""\s*(?:
    (?P<lp>\() | (?P<rp>\)) |
    (?P<dt>(?:datetime|datetimeoffset)'[^']*') |
    (?P<str>'(?:[^']|'')*') |
    (?P<iso>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?) |
    (?P<num>-?\d+(?:\.\d+)?) |
    (?P<word>[A-Za-z_][A-Za-z0-9_./]*)
)""", re.X | re.I)

OPS = {"eq", "ne", "gt", "ge", "lt", "le"}


class ODataError(ValueError):
    pass


def tokenize(text):
    pos, out = 0, []
    text = text or ""
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ODataError("unexpected character at offset %d: %r" % (pos, text[pos:pos + 10]))
        kind = m.lastgroup
        val = m.group(kind)
        out.append((kind, val))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens, parse_time):
        self.t = tokens
        self.i = 0
        self.parse_time = parse_time

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def expr(self):
        left = self.conj()
        while self.peek()[0] == "word" and self.peek()[1].lower() == "or":
            self.take()
            right = self.conj()
            left = ("or", left, right)
        return left

    def conj(self):
        left = self.term()
        while self.peek()[0] == "word" and self.peek()[1].lower() == "and":
            self.take()
            right = self.term()
            left = ("and", left, right)
        return left

    def term(self):
        kind, val = self.take()
        if kind == "lp":
            e = self.expr()
            if self.take()[0] != "rp":
                raise ODataError("missing ')'")
            return e
        if kind == "word" and val.lower() == "not":
            return ("not", self.term())
        if kind != "word":
            raise ODataError("expected a field name, got %r" % val)
        field = val
        okind, op = self.take()
        if okind != "word" or op.lower() not in OPS:
            raise ODataError("expected a comparison operator after %s, got %r" % (field, op))
        lkind, lit = self.take()
        return ("cmp", field, op.lower(), self.literal(lkind, lit))

    def literal(self, kind, val):
        if kind == "str":
            return ("str", val[1:-1].replace("''", "'"))
        if kind == "num":
            return ("num", float(val))
        if kind == "dt":
            inner = val[val.index("'") + 1:-1]
            return ("time", self.parse_time(inner))
        if kind == "iso":
            return ("time", self.parse_time(val))
        if kind == "word" and val.lower() in ("true", "false"):
            return ("bool", val.lower() == "true")
        if kind == "word" and val.lower() == "null":
            return ("null", None)
        raise ODataError("expected a literal, got %r" % val)


def parse_filter(text, parse_time):
    """Parse a $filter string into an AST; parse_time(text) -> ms (raises ValueError)."""
    toks = tokenize(text)
    if not toks:
        return None
    p = _Parser(toks, parse_time)
    try:
        e = p.expr()
    except ValueError as exc:
        raise ODataError(str(exc)) from None
    if p.i != len(toks):
        raise ODataError("unexpected %r" % (p.peek()[1],))
    return e


def evaluate(ast, record, field_kind, parse_time):
    """field_kind(name) -> 'time' | 'str' | 'num' | 'bool' | None (unknown field -> ODataError)."""
    if ast is None:
        return True
    op = ast[0]
    if op == "and":
        return evaluate(ast[1], record, field_kind, parse_time) and evaluate(ast[2], record, field_kind, parse_time)
    if op == "or":
        return evaluate(ast[1], record, field_kind, parse_time) or evaluate(ast[2], record, field_kind, parse_time)
    if op == "not":
        return not evaluate(ast[1], record, field_kind, parse_time)
    _, field, cmp, (lkind, lval) = ast
    kind = field_kind(field)
    if kind is None:
        raise ODataError("Could not find a property named '%s'" % field)
    have = record.get(field)
    if lkind == "null":
        res = have in (None, "")
        return res if cmp == "eq" else (not res if cmp == "ne" else False)
    if have in (None, ""):
        return cmp == "ne"
    if kind == "time":
        if lkind == "str":
            lval = parse_time(lval)
        elif lkind != "time":
            raise ODataError("cannot compare %s with a %s literal" % (field, lkind))
        have = parse_time(have)
    elif kind == "num":
        have = float(have)
        if lkind != "num":
            raise ODataError("cannot compare %s with a %s literal" % (field, lkind))
    elif kind == "bool":
        if lkind != "bool":
            raise ODataError("cannot compare %s with a %s literal" % (field, lkind))
    else:
        have = str(have)
        lval = str(lval) if lkind != "time" else lval
        if lkind == "time":
            raise ODataError("cannot compare %s with a date-time literal" % field)
    if cmp == "eq":
        return have == lval
    if cmp == "ne":
        return have != lval
    if cmp == "gt":
        return have > lval
    if cmp == "ge":
        return have >= lval
    if cmp == "lt":
        return have < lval
    return have <= lval


def parse_orderby(text, field_kind):
    out = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        bits = part.split()
        if len(bits) > 2 or (len(bits) == 2 and bits[1].lower() not in ("asc", "desc")):
            raise ODataError("invalid $orderby clause %r" % part)
        if field_kind(bits[0]) is None:
            raise ODataError("Could not find a property named '%s'" % bits[0])
        out.append((bits[0], len(bits) == 2 and bits[1].lower() == "desc"))
    return out
