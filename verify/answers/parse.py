"""A parser for the answer language that cannot run code: LaTeX as people write it and plain math, straight to sympy.

The text is parsed by a lark grammar of our own (Earley); a transformer builds sympy objects node by node from a
symbol table the part declares (names are case-sensitive; each is a scalar with assumptions, a matrix with a shape, or
a function). Nothing is ever passed to eval, exec, sympify or parse_expr.

Implicit multiplication follows the table: ``W(K^2+N)`` is a product when W is a symbol, ``\\sigma(2x)`` a call when σ
is a function; a run of letters such as ``KN`` that is not itself a name is read as a product of names when every
letter is one. Anything outside the table is an :class:`AnswerError` with the position and the reason.

Limits are checked before and during building: the text's length and nesting depth, integer sizes, exponents and
factorials, so that a hostile answer costs little; the caller also runs each answer under a hard time limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_CHARS = 2000
MAX_DEPTH = 40
MAX_DIGITS = 30
MAX_EXPONENT = 200
MAX_FACTORIAL = 50

GREEK = {
    "alpha": "alpha",
    "beta": "beta",
    "gamma": "gamma",
    "delta": "delta",
    "epsilon": "epsilon",
    "varepsilon": "epsilon",
    "eta": "eta",
    "theta": "theta",
    "lambda": "lambda",
    "mu": "mu",
    "sigma": "sigma",
    "tau": "tau",
    "phi": "phi",
    "rho": "rho",
    "omega": "omega",
    "pi": "pi",
}
UNICODE = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ε": "epsilon",
    "η": "eta",
    "θ": "theta",
    "λ": "lambda",
    "μ": "mu",
    "σ": "sigma",
    "τ": "tau",
    "φ": "phi",
    "ρ": "rho",
    "ω": "omega",
    "π": "pi",
    "·": "*",
    "×": "*",
    "−": "-",
    "⊤": "T",
    "ᵀ": "^T",
    "²": "^2",
    "³": "^3",
    "√": "\\sqrt",
    "‖": "\\|",
    "⌊": "\\lfloor",
    "⌋": "\\rfloor",
    "⌈": "\\lceil",
    "⌉": "\\rceil",
    "∞": "\\infty",
}
BUILTIN_FUNCS = ("floor", "ceil", "sqrt", "log", "ln", "exp", "tanh", "tan", "sin", "cos", "abs", "mod", "max", "min")


class AnswerError(ValueError):
    """An answer that cannot be read: the message says where and why."""


@dataclass(frozen=True)
class SymbolTable:
    """What names mean in one part: scalars and matrices (sympy objects) and functions (name → sympy callable)."""

    names: dict[str, Any] = field(default_factory=dict)
    functions: dict[str, Any] = field(default_factory=dict)

    def lookup(self, name: str) -> Any:
        return self.names.get(name)


GRAMMAR = r"""
?start: expr

?expr: sum
     | sum "=" sum          -> equation

?sum: term
    | sum "+" term          -> add
    | sum "-" term          -> sub

?term: signed
     | term MULOP signed    -> mul
     | term "/" signed      -> div

?signed: "-" signed         -> neg
       | "+" signed
       | implicit

?implicit: power
         | implicit power   -> mul

?power: postfix
      | postfix "^" exponent       -> pow
      | postfix "_" subscript "^" exponent -> pow_sub

?postfix: atom
        | postfix "!"       -> factorial

exponent: "{" expr "}" | "(" expr ")" | NUMBER | NAME | TCMD | "-" NUMBER -> neg_exp | "*"
subscript: "{" expr "}" | NUMBER | NAME

?atom: NUMBER               -> number
     | NAME                 -> name
     | NAME "(" arglist ")" -> call
     | FUNCCMD "(" arglist ")" -> cmd_call
     | FUNCCMD "{" expr "}" -> cmd_call
     | FUNCCMD NAME         -> cmd_call
     | FUNCCMD NUMBER       -> cmd_call
     | FUNCCMD "^" exponent "(" arglist ")" -> cmd_pow_call
     | "(" expr ")"
     | "{" expr "}"
     | "[" expr "]"
     | FRAC "{" expr "}" "{" expr "}"  -> frac
     | "\\sqrt" "{" expr "}"           -> sqrt
     | "\\sqrt" "[" expr "]" "{" expr "}" -> nroot
     | "\\lfloor" expr "\\rfloor"      -> floor
     | "\\lceil" expr "\\rceil"        -> ceil
     | "\\|" expr "\\|"                -> norm
     | "|" expr "|"                    -> absval
     | "\\mathcal{O}" "(" expr ")"      -> bigo
     | "\\infty"                       -> infinity
     | BEGIN rows END                  -> matrix
     | TILDE "{" NAME "}"              -> tilde
     | TEXTCMD "{" /[^}]+/ "}"          -> text

arglist: expr ("," expr)*
rows: row ("\\\\" row)*
row: expr ("&" expr)*

MULOP: "*" | "\\cdot" | "\\times"
FRAC: "\\frac" | "\\dfrac" | "\\tfrac"
TILDE: "\\tilde" | "\\hat" | "\\bar"
TEXTCMD: "\\text" | "\\mathrm" | "\\operatorname"
TCMD: "\\top" | "\\intercal"
FUNCCMD: "\\sigma" | "\\tanh" | "\\log" | "\\ln" | "\\exp" | "\\sin" | "\\cos" | "\\tan" | "\\max" | "\\min"
BEGIN: /\\begin\{[bpv]?matrix\}/
END: /\\end\{[bpv]?matrix\}/
NAME: /[A-Za-z](?:[A-Za-z0-9']*)(?:_(?:\{[A-Za-z0-9,' ]+\}|[A-Za-z0-9]))?/
NUMBER: /\d+(\.\d+)?/

%ignore /\s+/
"""

_PARSER: Any = None


def _parser() -> Any:
    global _PARSER
    if _PARSER is None:
        from lark import Lark

        _PARSER = Lark(GRAMMAR, parser="earley", ambiguity="resolve", propagate_positions=True)
    return _PARSER


def preprocess(text: str) -> str:
    """Normalize spellings before parsing: unicode, \\left/\\right, spacing, Greek commands, ^\\top, O(·)."""
    if len(text) > MAX_CHARS:
        raise AnswerError(f"the answer is {len(text)} characters long (limit {MAX_CHARS})")
    for u, r in UNICODE.items():
        text = text.replace(u, f" {r} " if len(r) > 1 and r[0].isalpha() else r)
    text = text.strip().strip("$").strip()
    text = re.sub(r"\\(left|right|big|Big|bigg|Bigg)(?=[\\()\[\]|.{}])", "", text)
    text = re.sub(r"\\(left|right)\.", "", text)
    text = re.sub(r"\\[,;:!]|\\quad|\\qquad|\\displaystyle|~", " ", text)
    text = text.replace("||", "\\|")  # plain ||v|| is a norm
    text = text.replace("\\lVert", "\\|").replace("\\rVert", "\\|").replace("\\Vert", "\\|")
    text = text.replace("\\{", "(").replace("\\}", ")")
    text = re.sub(r"\^\s*\{\s*\\top\s*\}|\^\s*\\top|\^\s*\{\s*T\s*\}|\^\s*\\intercal", "^T", text)
    text = re.sub(r"(?<![A-Za-z\\])O\s*\(", "\\\\mathcal{O}(", text)
    text = re.sub(r"\\mathcal\{O\}", "\\\\mathcal{O}", text)
    for cmd, name in GREEK.items():
        if cmd in ("sigma",):
            continue  # σ stays a command: a function where the part says so
        text = re.sub(rf"\\{cmd}(?![A-Za-z])", name + " ", text)
    text = re.sub(r"\\sigma(?![A-Za-z])\s*(?!\()", "sigma ", text)  # σ not followed by ( is a name
    text = re.sub(r"\*\*", "^", text)
    depth = best = 0
    for ch in text:
        depth += ch in "({["
        depth -= ch in ")}]"
        best = max(best, depth)
    if best > MAX_DEPTH:
        raise AnswerError(f"the answer nests {best} levels deep (limit {MAX_DEPTH})")
    return text


class _Builder:
    """Turns the lark tree into sympy, resolving names through the table."""

    def __init__(self, table: SymbolTable) -> None:
        import sympy

        self.sp = sympy
        self.table = table

    # -- helpers ------------------------------------------------------------------------------------------------
    def fail(self, node: Any, why: str) -> AnswerError:
        pos = getattr(getattr(node, "meta", None), "column", None)
        where = f" at column {pos}" if pos else ""
        return AnswerError(f"{why}{where}")

    def is_matrix(self, v: Any) -> bool:
        return isinstance(v, (self.sp.MatrixExpr, self.sp.MatrixBase))

    def scalarize(self, v: Any) -> Any:
        """A 1×1 matrix expression as a scalar (its only entry), so it can divide and be divided."""
        if self.is_matrix(v) and v.shape == (1, 1):
            return v[0, 0]
        return v

    def resolve_name(self, raw: str, node: Any) -> Any:
        sp = self.sp
        name = raw.replace("{", "").replace("}", "").replace(" ", "")
        if name in self.table.names:
            return self.table.names[name]
        if "_" in name:
            base, sub = name.split("_", 1)
            for cand in (f"{base}_{sub}", f"{base}{sub}"):
                if cand in self.table.names:
                    return self.table.names[cand]
        if name in ("T",):
            raise self.fail(node, "T is only a transpose here (X^T)")
        if name in self.table.functions or name in BUILTIN_FUNCS:
            raise self.fail(node, f"'{name}' is a function and needs an argument")
        # a run of letters that is not a name: a product of names, when every letter is one
        if name.isalpha() and len(name) > 1 and all(c in self.table.names for c in name):
            out = sp.Integer(1)
            for c in name:
                out = out * self.table.names[c]
            return out
        raise self.fail(
            node, f"unknown symbol '{name}' (this part knows {', '.join(sorted(self.table.names)) or 'no symbols'})"
        )

    def squared_norm(self, base: Any, exp_node: Any) -> Any:
        """‖v‖² of a matrix expression as vᵀv (a 1×1 matrix), which keeps matrix answers symbolic."""
        from lark import Tree

        if not (isinstance(base, Tree) and base.data == "norm"):
            return None
        kind, value = self.exponent(exp_node)
        if kind != "num" or value != 2:
            return None
        v = self.build(base.children[0])
        if self.is_matrix(v) and v.shape[1] == 1:
            return v.T * v
        return None

    def divide(self, a: Any, b: Any, node: Any) -> Any:
        if self.is_matrix(b):
            if b.shape != (1, 1):
                raise self.fail(node, "division by a matrix")
            if isinstance(b, self.sp.MatrixBase):
                return a / b[0, 0]
            return a * b.I  # a 1×1 matrix expression such as ‖v‖²: multiply by its inverse
        if self.is_matrix(a):
            return a * (1 / b)
        return a / b

    def split_letters(self, node: Any) -> list[Any] | None:
        """The names a run of letters stands for, when it is not itself a name (KN → [K, N]); else None."""
        from lark import Token, Tree

        tok = node.children[0] if isinstance(node, Tree) and node.data == "name" else node
        if not isinstance(tok, Token) or tok.type != "NAME":
            return None
        name = str(tok)
        if name in self.table.names or not name.isalpha() or len(name) < 2:
            return None
        if all(ch in self.table.names for ch in name):
            return [self.table.names[ch] for ch in name]
        return None

    def number(self, text: str, node: Any) -> Any:
        sp = self.sp
        if len(text.replace(".", "")) > MAX_DIGITS:
            raise self.fail(node, f"a number with more than {MAX_DIGITS} digits")
        return sp.Rational(text) if "." in text else sp.Integer(text)

    def call(self, fname: str, args: list[Any], node: Any) -> Any:
        sp = self.sp
        fname = fname.lstrip("\\")
        if fname in self.table.functions:
            return self.table.functions[fname](*args)
        if fname in self.table.names and len(args) == 1:  # W(K^2 + N) with W a symbol: a product
            return self.table.names[fname] * args[0]
        one = args[0] if args else None
        simple = {
            "floor": sp.floor,
            "ceil": sp.ceiling,
            "sqrt": sp.sqrt,
            "log": sp.log,
            "ln": sp.log,
            "exp": sp.exp,
            "tanh": sp.tanh,
            "tan": sp.tan,
            "sin": sp.sin,
            "cos": sp.cos,
            "abs": sp.Abs,
        }
        if fname in simple and len(args) == 1:
            return simple[fname](one)
        if fname == "mod" and len(args) == 2:
            return sp.Mod(args[0], args[1])
        if fname in ("max", "min") and args:
            return (sp.Max if fname == "max" else sp.Min)(*args)
        if fname == "sigma":
            raise self.fail(node, "σ is not a function in this part")
        if len(fname) > 1 and all(c in self.table.names for c in fname) and len(args) == 1:
            return self.resolve_name(fname, node) * args[0]
        raise self.fail(node, f"unknown function '{fname}'")

    def power(self, base: Any, exp_node: Any) -> Any:
        sp = self.sp
        kind, value = exp_node
        if kind == "T":
            if not self.is_matrix(base):
                raise AnswerError("^T on something that is not a matrix")
            return base.T
        if kind == "star":
            return base  # a label such as η^*
        if self.is_matrix(base):
            if value == -1:
                return base.I
            if isinstance(value, sp.Integer) and value > 0 and base.shape[0] == base.shape[1]:
                return base**value
            raise AnswerError("a matrix power other than ^{-1} or a positive integer of a square matrix")
        if value.is_Number and abs(value) > MAX_EXPONENT:
            raise AnswerError(f"an exponent of {value} (limit {MAX_EXPONENT})")
        return base**value

    # -- the walk -----------------------------------------------------------------------------------------------
    def build(self, node: Any) -> Any:
        from lark import Token

        sp = self.sp
        if isinstance(node, Token):
            if node.type == "NUMBER":
                return self.number(str(node), node)
            if node.type == "NAME":
                return self.resolve_name(str(node), node)
            raise self.fail(node, f"unexpected '{node}'")
        d = node.data
        c = node.children
        if d == "number":
            return self.number(str(c[0]), node)
        if d == "name":
            return self.resolve_name(str(c[0]), node)
        if d == "equation":
            return self.build(c[1])  # "η* = …": the right-hand side is the answer
        if d == "add":
            return self.build(c[0]) + self.build(c[1])
        if d == "sub":
            return self.build(c[0]) - self.build(c[1])
        if d == "neg":
            return -self.build(c[0])
        if d == "mul":
            a, b = self.build(c[0]), self.build(c[-1])
            if self.is_matrix(a) and self.is_matrix(b) and a.shape[1] != b.shape[0]:
                a2, b2 = self.scalarize(a), self.scalarize(b)
                if not (self.is_matrix(a2) and self.is_matrix(b2)):
                    return a2 * b2
                raise self.fail(
                    node, f"cannot multiply a {a.shape[0]}×{a.shape[1]} by a {b.shape[0]}×{b.shape[1]} matrix"
                )
            return a * b
        if d == "div":
            return self.divide(self.build(c[0]), self.build(c[1]), node)
        if d == "pow":
            sq = self.squared_norm(c[0], c[1])
            if sq is not None:
                return sq
            letters = self.split_letters(c[0])
            if letters:  # CK^2 is C·K²: the exponent binds to the last letter only
                head = self.sp.Integer(1)
                for x in letters[:-1]:
                    head = head * x
                return head * self.power(letters[-1], self.exponent(c[1]))
            return self.power(self.build(c[0]), self.exponent(c[1]))
        if d == "pow_sub":  # ‖x‖_2^2 and similar: the subscript names the norm
            return self.squared_norm(c[0], c[2]) or self.power(self.build(c[0]), self.exponent(c[2]))
        if d == "factorial":
            v = self.build(c[0])
            if v.is_Number and v > MAX_FACTORIAL:
                raise self.fail(node, f"a factorial of {v} (limit {MAX_FACTORIAL})")
            return sp.factorial(v)
        if d == "frac":
            return self.divide(self.build(c[1]), self.build(c[2]), node)
        if d == "sqrt":
            return sp.sqrt(self.scalarize(self.build(c[0])))
        if d == "nroot":
            return sp.root(self.build(c[1]), self.build(c[0]))
        if d == "floor":
            return sp.floor(self.build(c[0]))
        if d == "ceil":
            return sp.ceiling(self.build(c[0]))
        if d == "absval":
            return sp.Abs(self.build(c[0]))
        if d == "norm":
            v = self.build(c[0])
            if self.is_matrix(v):
                return sp.sqrt(self.scalarize(v.T * v)) if v.shape[1] == 1 else sp.sqrt(sp.trace(v.T * v))
            return sp.Abs(v)
        if d == "call":
            return self.call(str(c[0]), self.build_args(c[1]), node)
        if d == "cmd_call":
            arg = c[1]
            args = self.build_args(arg) if getattr(arg, "data", None) == "arglist" else [self.build(arg)]
            return self.call(str(c[0]), args, node)
        if d == "cmd_pow_call":  # \tanh^2(x) = (tanh x)²
            return self.power(self.call(str(c[0]), self.build_args(c[2]), node), self.exponent(c[1]))
        if d == "bigo":
            t = sp.Symbol("t", positive=True)
            inner = self.build(c[0])
            return sp.Order(inner.xreplace({s: t for s in inner.free_symbols if s.name == "t"}), (t, sp.oo))
        if d == "infinity":
            return sp.oo
        if d == "matrix":
            rows = [[self.build(e) for e in r.children] for r in c[1].children]
            if len({len(r) for r in rows}) != 1:
                raise self.fail(node, "matrix rows of different lengths")
            return sp.Matrix(rows)
        if d == "tilde":
            base = str(c[1])
            for cand in (f"{base}_tilde", f"{base}tilde", f"{base}_hat"):
                if cand in self.table.names:
                    return self.table.names[cand]
            raise self.fail(node, f"unknown symbol '{base}' with an accent")
        if d == "text":
            raise self.fail(node, "text inside a formula")
        if d in ("start", "exponent", "subscript") or len(c) == 1:
            return self.build(c[0])
        raise self.fail(node, f"unsupported construct '{d}'")

    def build_args(self, node: Any) -> list[Any]:
        return [self.build(ch) for ch in node.children]

    def exponent(self, node: Any) -> tuple[str, Any]:
        from lark import Token

        if getattr(node, "data", None) == "neg_exp":
            return ("num", -self.number(str(node.children[0]), node))
        kids = node.children
        if not kids:
            return ("star", None)
        k = kids[0]
        if isinstance(k, Token) and k.type == "TCMD":
            return ("T", None)
        if isinstance(k, Token) and k.type == "NAME" and str(k) == "T" and "T" not in self.table.names:
            return ("T", None)
        return ("num", self.build(k))


def parse_math(text: str, table: SymbolTable) -> Any:
    """Parse one answer string into a sympy object, or raise AnswerError with the position and the reason."""
    from lark.exceptions import LarkError, UnexpectedInput

    clean = preprocess(text)
    if not clean:
        raise AnswerError("the answer is empty")
    try:
        tree = _parser().parse(clean)
    except UnexpectedInput as exc:
        col = getattr(exc, "column", -1)
        pos = getattr(exc, "pos_in_stream", None)
        if col is None or col < 0 or pos is None or pos < 0:
            raise AnswerError("the answer ends too early (an operator or bracket is not closed)") from None
        near = clean[max(0, pos - 5) : pos + 5]
        raise AnswerError(f"cannot read the answer at column {col} (near '{near}')") from None
    except (LarkError, RecursionError) as exc:
        raise AnswerError(f"cannot read the answer: {type(exc).__name__}") from None
    try:
        return _Builder(table).build(tree)
    except AnswerError:
        raise
    except RecursionError:
        raise AnswerError("the answer nests too deeply") from None
    except (TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise AnswerError(f"cannot build the answer: {str(exc).splitlines()[0][:120]}") from None
