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

BUILTIN_FUNCS = ("floor", "ceil", "sqrt", "log", "ln", "exp", "tanh", "tan", "sin", "cos", "abs", "mod", "max", "min")


class AnswerError(ValueError):
    """An answer that cannot be read: the message says where and why."""


@dataclass(frozen=True)
class SymbolTable:
    """What names mean in one part: scalars and matrices (sympy objects) and functions (name → sympy callable)."""

    names: dict[str, Any] = field(default_factory=dict)
    functions: dict[str, Any] = field(default_factory=dict)
    lenient: bool = False  # unknown one-letter names become fresh symbols (a growth class in another variable)

    def lookup(self, name: str) -> Any:
        return self.names.get(name)


GRAMMAR = r"""
?start: expr
      | expr ("," expr)+             -> tuple

?expr: modexpr
     | modexpr ("=" modexpr)+       -> equation

?modexpr: sum
        | sum MODOP sum             -> mod

?sum: term
    | sum "+" term          -> add
    | sum "-" term          -> sub
    | "-" term              -> neg
    | "+" term

?term: implicit
     | term MULOP signed    -> mul
     | term "/" signed      -> div
     | term "//" signed     -> floordiv

?signed: "-" signed         -> neg
       | "+" signed
       | implicit

?implicit: power
         | implicit power   -> imul

?power: postfix
      | postfix "^" exponent       -> pow
      | postfix "_" subscript "^" exponent -> pow_sub

?postfix: atom
        | postfix "!"       -> factorial

exponent: "{" "+" "}" -> pinv_exp | "{" expr "}" | "(" expr ")" | NUMBER | NAME | "{" TCMD "}" | TCMD | "-" NUMBER -> neg_exp | "*" | "{" "*" "}"
subscript: "{" expr "}" | NUMBER | NAME

?atom: NUMBER               -> number
     | NAME                 -> name
     | NAME "(" arglist ")" -> call
     | FUNCCMD "(" arglist ")" -> cmd_call
     | FUNCCMD "{" expr "}" -> cmd_call
     | FUNCCMD NAME         -> cmd_call
     | FUNCCMD NUMBER       -> cmd_call
     | FUNCCMD "^" exponent "(" arglist ")" -> cmd_pow_call
     | FUNCCMD "^" exponent "{" expr "}" -> cmd_pow_call
     | FUNCCMD "^" exponent NAME -> cmd_pow_call
     | "(" expr ")"                   -> paren
     | "{" expr "}"
     | "[" expr "]"
     | "[" expr ("," expr)+ "]"        -> bracket_list
     | FRAC "{" expr "}" "{" expr "}"  -> frac
     | FRAC NUMBER                     -> frac_digits
     | "\\sqrt" "{" expr "}"           -> sqrt
     | "\\sqrt" "(" expr ")"           -> sqrt
     | "\\sqrt" NAME                   -> sqrt
     | "\\sqrt" NUMBER                 -> sqrt
     | "\\sqrt" "[" expr "]" "{" expr "}" -> nroot
     | "\\lfloor" expr "\\rfloor"      -> floor
     | "\\lceil" expr "\\rceil"        -> ceil
     | "\\|" expr "\\|"                -> norm
     | "\\|" expr "\\|" "_" subscript   -> norm
     | "|" expr "|"                    -> absval
     | "\\mathcal{O}" "(" expr ")"      -> bigo
     | "\\infty"                       -> infinity
     | "\\sum" "_" "{" NAME "=" expr "}" "^" exponent power -> index_sum
     | "\\sum" "_" "{" NAME "}" power  -> index_sum
     | "\\sum" "_" NAME power          -> index_sum
     | "\\ones"                        -> ones
     | "\\ones" "_" subscript          -> ones
     | "\\ddx" "{" NAME "}" power      -> ddx
     | BEGIN rows END                  -> matrix
     | TILDE "{" NAME "}"              -> tilde
     | TILDE "{" NAME "}" "_" subscript -> tilde

arglist: expr ("," expr)*
rows: row ("\\\\" row)*
row: expr ("&" expr)*

MODOP: "\\bmod"
MULOP: "*"
FRAC: "\\frac" | "\\dfrac" | "\\tfrac" | "\\cfrac"
TILDE: "\\tilde" | "\\hat" | "\\bar" | "\\check"
TCMD: "\\top"
FUNCCMD: /\\(sigma|tanh|sech|csch|sinh|cosh|coth|log|ln|exp|sin|cos|tan|sec|csc|cot|arctan|max|min|floor|ceil|abs|sigmoid|softplus|relu|ReLU|sign|sgn)(?![A-Za-z])/
BEGIN: "\\begin{matrix}"
END: "\\end{matrix}"
NAME: /[A-Za-z](?:[A-Za-z0-9']*)(?:_(?:\{(?:[A-Za-z0-9,' _]|\{[A-Za-z0-9,' ]*\})+\}|[A-Za-z0-9]+))?'*/
NUMBER: /\d+(\.\d+)?/

%ignore /\s+/
"""

_PARSER: Any = None
_PLAIN_NUMBER = re.compile(r"\s*-?\s*(\d+(?:\.\d+)?)\s*")


def _parser() -> Any:
    global _PARSER
    if _PARSER is None:
        from lark import Lark

        _PARSER = Lark(GRAMMAR, parser="earley", ambiguity="resolve", propagate_positions=True)
    return _PARSER


def preprocess(text: str, *, commas: bool = False) -> str:
    """The text in the grammar's spelling (:func:`verify.answers.normalize.normalize`), within the size limits."""
    from verify.answers.normalize import normalize

    if len(text) > MAX_CHARS:
        raise AnswerError(f"the answer is {len(text)} characters long (limit {MAX_CHARS})")
    text = normalize(text, commas=commas)
    depth = best = 0
    for ch in text:
        depth += ch in "({["
        depth -= ch in ")}]"
        best = max(best, depth)
    if best > MAX_DEPTH:
        raise AnswerError(f"the answer nests {best} levels deep (limit {MAX_DEPTH})")
    return text


class MeaningError(AnswerError):
    """An answer that was read but does not make sense as written: shapes that do not conform, a matrix divisor."""


class _Ones:
    """The ones vector written without a size (``\\mathbf{1}``): it takes its size from the matrix beside it."""

    def __init__(self, row: bool = False) -> None:
        self.row = row


class _Eye:
    """The identity written without a size (I): it takes its size from the matrix beside it; ``coef`` scales it."""

    def __init__(self, coef: Any = 1) -> None:
        self.coef = coef


def _key(name: str) -> str:
    return name.replace("_", "").replace("{", "").replace("}", "").replace(" ", "")


class _Builder:
    """Turns the lark tree into sympy, resolving names through the table."""

    def __init__(self, table: SymbolTable) -> None:
        import sympy

        self.sp = sympy
        self.table = table
        self.left_to_right = False  # read a / b c as (a / b) c: the other reading of an unbracketed division
        self.ambiguous = False  # an a / b c was met
        self.unknowns: list[Any] | None = None  # while reading an equation's left side: names it does not know
        self.keys: dict[str, Any] = {}
        for name, obj in table.names.items():
            self.keys.setdefault(_key(name), obj)
        if "e" not in self.keys:
            self.keys["e"] = sympy.E  # e is Euler's number unless the part names a symbol e

    # -- helpers ------------------------------------------------------------------------------------------------
    def fail(self, node: Any, why: str, meaning: bool = False) -> AnswerError:
        pos = getattr(getattr(node, "meta", None), "column", None) or getattr(node, "column", None)
        where = f" at column {pos}" if pos else ""
        return (MeaningError if meaning else AnswerError)(f"{why}{where}")

    def is_matrix(self, v: Any) -> bool:
        return isinstance(v, (self.sp.MatrixExpr, self.sp.MatrixBase))

    def scalarize(self, v: Any) -> Any:
        """A 1×1 matrix expression as a scalar (its only entry), so it can divide and be divided."""
        if self.is_matrix(v) and v.shape == (1, 1):
            return v[0, 0]
        return v

    def split(self, raw: str) -> list[Any] | None:
        """The table's names a run of letters stands for (``Xw_0`` → X, w₀; ``KN`` → K, N), fewest names first."""
        text = _key(raw)
        if not text or len(text) > 40:
            return None
        best: list[list[Any] | None] = [None] * (len(text) + 1)
        best[0] = []
        for i in range(len(text)):
            done = best[i]
            if done is None:
                continue
            for j in range(len(text), i, -1):
                obj = self.keys.get(text[i:j])
                if obj is not None:
                    cand = [*done, obj]
                    prev = best[j]
                    if prev is None or len(cand) < len(prev):
                        best[j] = cand
        return best[len(text)]

    def resolve_name(self, raw: str, node: Any) -> Any:
        name = raw.replace("{", "").replace("}", "").replace(" ", "")
        if name in self.table.names:
            return self.table.names[name]
        primes = len(name) - len(name.rstrip("'"))
        if primes:
            base = self.resolve_name(name.rstrip("'"), node)
            if self.is_matrix(base) and primes == 1:  # X' is Xᵀ
                return base.T
            raise self.fail(node, f"'{name}': a prime on something that is not a matrix or a function")
        if name in ("T",):
            raise self.fail(node, "T is only a transpose here (X^T)")
        if name in self.table.functions or name in BUILTIN_FUNCS:
            raise self.fail(node, f"'{name}' is a function and needs an argument")
        parts = self.split(name)
        if parts:
            return self.product(parts, node)
        return self.fallback(name, node)

    def fallback(self, name: str, node: Any) -> Any:
        """Names the table does not hold as written: the identity I (I_n), entries G_{ij} of a name G, a name in the
        other case when that is unambiguous (g for G), and, in a lenient table, a fresh one-letter symbol."""
        sp = self.sp
        base, _, sub = name.partition("_")
        if base == "I" and "I" not in self.table.names:
            if sub and sub in self.table.names:
                return sp.Identity(self.table.names[sub])
            if not sub:
                return _Eye()
        if sub and set(sub) <= set("ijklmn") and sub not in self.table.names:  # G_{ij}: an entry of G
            try:
                return self.resolve_name(base, node)
            except AnswerError:
                pass
        other = [n for n in self.table.names if n.lower() == name.lower() and n != name]
        if len(other) == 1 and len({n.lower() for n in self.table.names}) == len(self.table.names):
            return self.table.names[other[0]]
        if self.unknowns is not None:  # 2η λ̃ = λ: the left side's own unknown, solved for below
            u = sp.Dummy(name)
            self.unknowns.append(u)
            return u
        if self.table.lenient and re.fullmatch(r"[A-Za-z]", name):
            return sp.Symbol(name, positive=True)
        raise self.fail(
            node, f"unknown symbol '{name}' (this part knows {', '.join(sorted(self.table.names)) or 'no symbols'})"
        )

    def product(self, factors: list[Any], node: Any) -> Any:
        out = factors[0]
        for f in factors[1:]:
            out = self.multiply(out, f, node)
        return out

    def multiply(self, a: Any, b: Any, node: Any) -> Any:
        sp = self.sp
        if isinstance(a, _Eye) or isinstance(b, _Eye):
            eye, other = (a, b) if isinstance(a, _Eye) else (b, a)
            if isinstance(other, _Eye):
                return _Eye(eye.coef * other.coef)
            if isinstance(other, _Ones):
                raise self.fail(node, "the identity times the ones vector, with no size for either", meaning=True)
            return other * eye.coef if self.is_matrix(other) else _Eye(eye.coef * other)
        for x, y, left in ((a, b, True), (b, a, False)):
            if isinstance(x, sp.MatAdd) and any(isinstance(t, sp.Identity) for t in sp.preorder_traversal(x)):
                terms = [self.multiply(t, y, node) if left else self.multiply(y, t, node) for t in x.args]
                return sp.Add(*terms) if not self.is_matrix(terms[0]) else sp.MatAdd(*terms).doit()
        if isinstance(a, _Ones) or isinstance(b, _Ones):
            if isinstance(b, _Ones) and not b.row and self.is_matrix(a):
                return a * sp.OneMatrix(a.shape[1], 1)
            if isinstance(a, _Ones) and a.row and self.is_matrix(b):
                return sp.OneMatrix(1, b.shape[0]) * b
            raise self.fail(node, "the ones vector 1 needs a matrix beside it to take its size", meaning=True)
        if self.is_matrix(a) and self.is_matrix(b) and a.shape[1] != b.shape[0]:
            a2, b2 = self.scalarize(a), self.scalarize(b)
            if not (self.is_matrix(a2) and self.is_matrix(b2)):
                return a2 * b2
            raise self.fail(
                node,
                f"the shapes do not conform: a {a.shape[0]}×{a.shape[1]} times a {b.shape[0]}×{b.shape[1]} matrix",
                meaning=True,
            )
        return a * b

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
        if isinstance(a, _Eye) and not self.is_matrix(b) and not isinstance(b, (_Eye, _Ones)):
            return _Eye(a.coef / b)
        if isinstance(a, _Ones) or isinstance(b, _Ones):
            raise self.fail(node, "the ones vector 1 needs a matrix beside it to take its size", meaning=True)
        if self.is_matrix(b):
            if b.shape != (1, 1):
                raise self.fail(node, "a division by a matrix", meaning=True)
            if isinstance(b, self.sp.MatrixBase):
                return a / b[0, 0]
            return a * b.I  # a 1×1 matrix expression such as ‖v‖²: multiply by its inverse
        if self.is_matrix(a):
            return a * (1 / b)
        return a / b

    def number(self, text: str, node: Any) -> Any:
        sp = self.sp
        if len(text.replace(".", "")) > MAX_DIGITS:
            raise self.fail(node, f"a number with more than {MAX_DIGITS} digits")
        return sp.Rational(text) if "." in text else sp.Integer(text)

    def call(self, fname: str, args: list[Any], node: Any) -> Any:
        sp = self.sp
        fname = fname.lstrip("\\")
        primes = len(fname) - len(fname.rstrip("'"))
        if primes:  # F'(x), σ'(x): the derivative of a function of one argument
            if len(args) != 1:
                raise self.fail(node, f"'{fname}' takes one argument")
            u = sp.Dummy("u")
            inner = self.call(fname.rstrip("'"), [u], node)
            return sp.diff(inner, u, primes).xreplace({u: args[0]})
        if fname in self.table.functions:
            return self.table.functions[fname](*args)
        if len(args) == 1 and fname not in BUILTIN_FUNCS and fname not in FUNCTIONS:
            try:  # W(K^2 + N) with W a symbol: a product
                head = self.resolve_name(fname, node)
            except AnswerError:
                head = None
            if head is not None:
                return self.multiply(head, args[0], node)
        one = self.scalarize(args[0]) if args else None
        if fname in FUNCTIONS and len(args) == 1:
            return FUNCTIONS[fname](sp)(one)
        if fname == "mod" and len(args) == 2:
            return sp.Mod(args[0], args[1])
        if fname in ("max", "min") and args:
            return (sp.Max if fname == "max" else sp.Min)(*args)
        if fname == "sigma":
            raise self.fail(node, "σ is not a function in this part")
        raise self.fail(node, f"unknown function '{fname}'")

    def power(self, base: Any, exp_node: Any) -> Any:
        sp = self.sp
        kind, value = exp_node
        if kind == "T":
            if isinstance(base, _Ones):
                return _Ones(row=not base.row)
            if not self.is_matrix(base):
                if "T" in self.table.names:
                    return base ** self.table.names["T"]
                return base  # the transpose of a scalar is itself
            return base.T
        if kind == "star":
            return base  # a label such as η^*
        if kind == "pinv":  # X⁺: the part says what it is (X^T(XX^T)^{-1} where X has full row rank)
            name = getattr(base, "name", "")
            if f"{name}^+" in self.table.names:
                return self.table.names[f"{name}^+"]
            raise MeaningError(f"a pseudo-inverse of {name or 'this'}: the part does not say its rank")
        if isinstance(base, _Ones):
            raise AnswerError("a power of the ones vector")
        if self.is_matrix(base):
            if value == -1:
                if base.shape[0] != base.shape[1]:
                    raise MeaningError(f"the inverse of a {base.shape[0]}×{base.shape[1]} matrix, which is not square")
                return base.I
            if isinstance(value, sp.Integer) and value > 0 and base.shape[0] == base.shape[1]:
                return base**value
            raise MeaningError("a matrix power other than ^{-1} or a positive integer power of a square matrix")
        if value.is_Number and abs(value) > MAX_EXPONENT:
            raise AnswerError(f"an exponent of {value} (limit {MAX_EXPONENT})")
        if value.is_Number and base.is_Number and abs(base) > 1 and abs(value) * len(str(abs(base))) > MAX_EXPONENT:
            raise AnswerError(f"a power of {value} on {base} (limit {MAX_EXPONENT} digits)")
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
            return self.equation(c)
        if d == "tuple":
            return Tuple_(self.build(x) for x in c)
        if d == "bracket_list":
            return self.rows([self.build(x) for x in c], node)
        if d == "mod":
            left = c[0]
            if getattr(left, "data", None) in ("add", "sub"):  # a + b mod c: the whole sum, or b mod c?
                self.ambiguous = True
                if self.left_to_right:
                    modulus = self.build(c[2])
                    tail = sp.Mod(self.build(left.children[1]), modulus)
                    head = self.build(left.children[0])
                    return head + tail if left.data == "add" else head - tail
            return sp.Mod(self.build(left), self.build(c[2]))
        if d == "add":
            return self.add(self.build(c[0]), self.build(c[1]), node)
        if d == "sub":
            return self.add(self.build(c[0]), self.negate(self.build(c[1]), node), node)
        if d == "neg":
            v = self.build(c[0])
            if isinstance(v, _Eye):
                return _Eye(-v.coef)
            if isinstance(v, _Ones):
                raise self.fail(node, "the ones vector 1 needs a matrix beside it to take its size", meaning=True)
            return -v
        if d == "mul":
            return self.multiply(self.build(c[0]), self.build(c[-1]), node)
        if d == "imul":  # a run of factors; a function's name applies to the factor after it (g F'(x)^2)
            factors = self.factors(node)
            values: list[Any] = []
            i = 0
            while i < len(factors):
                applied = self.apply_function(factors[i], factors[i + 1], node) if i + 1 < len(factors) else None
                values.append(applied if applied is not None else self.build(factors[i]))
                i += 2 if applied is not None else 1
            return self.product(values, node)
        if d == "floordiv":  # a // b, as code writes the floor of a quotient
            return sp.floor(self.scalarize(self.divide(self.build(c[0]), self.build(c[1]), node)))
        if d == "div":
            right = c[1]
            if getattr(right, "data", None) == "imul":
                self.ambiguous = True
                if self.left_to_right:  # (a / b) c …
                    factors = self.factors(right)
                    out = self.divide(self.build(c[0]), self.build(factors[0]), node)
                    for f in factors[1:]:
                        out = self.multiply(out, self.build(f), node)
                    return out
            return self.divide(self.build(c[0]), self.build(right), node)
        if d == "pow":
            sq = self.squared_norm(c[0], c[1])
            if sq is not None:
                return sq
            if getattr(c[0], "data", None) == "call" and not self.is_function(str(c[0].children[0])):
                args = self.build_args(c[0].children[1])  # λ(2η)^{-1}: the exponent binds to the bracket
                if len(args) == 1:
                    head = self.resolve_name(str(c[0].children[0]), node)
                    return self.multiply(head, self.power(args[0], self.exponent(c[1])), node)
            letters = self.letters(c[0])
            if letters:  # CK^2 is C·K² and XX^T is X·Xᵀ: the exponent binds to the last name only
                head = self.product(letters[:-1], node)
                return self.multiply(head, self.power(letters[-1], self.exponent(c[1])), node)
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
        if d == "frac_digits":  # \frac12
            digits = str(c[1])
            if len(digits) != 2:
                raise self.fail(node, "\\frac needs two arguments")
            return sp.Rational(int(digits[0]), int(digits[1])) if digits[1] != "0" else sp.zoo
        if d == "sqrt":
            return sp.sqrt(self.scalarize(self.build(c[0])))
        if d == "nroot":
            return sp.root(self.build(c[1]), self.build(c[0]))
        if d == "floor":
            return sp.floor(self.build(c[0]))
        if d == "ceil":
            return sp.ceiling(self.build(c[0]))
        if d == "absval":
            return sp.Abs(self.scalarize(self.build(c[0])))
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
            arg = c[2]
            args = self.build_args(arg) if getattr(arg, "data", None) == "arglist" else [self.build(arg)]
            return self.power(self.call(str(c[0]), args, node), self.exponent(c[1]))
        if d == "bigo":
            t = sp.Symbol("t", positive=True)
            inner = self.build(c[0])
            return sp.Order(inner.xreplace({s: t for s in inner.free_symbols if s.name == "t"}), (t, sp.oo))
        if d == "infinity":
            return sp.oo
        if d == "index_sum":
            return self.index_sum(str(c[0]), c[-1], node)
        if d == "ones":
            if not c:
                return _Ones()
            n = self.build(c[0])
            return sp.OneMatrix(n, 1)
        if d == "ddx":
            target = c[1]
            named = f"d{self.subscript_text(target)}/d{c[0]}"
            if named in self.table.names:  # ∂L/∂Y where the statement calls it G
                return self.table.names[named]
            var = self.resolve_name(str(c[0]), node)
            while not isinstance(target, Token) and len(target.children) == 1 and target.data != "call":
                target = target.children[0]
            if isinstance(target, Token) and str(target) in self.table.functions:
                inner = self.table.functions[str(target)](var)
            else:
                inner = self.build(target)
            return sp.diff(inner, var)
        if d == "matrix":
            return self.rows([[self.build(e) for e in r.children] for r in c[1].children], node)
        if d == "tilde":
            base = str(c[1])
            accent = str(c[0]).lstrip("\\")
            sub = f"_{self.subscript_text(c[2])}" if len(c) > 2 else ""
            for cand in (f"{base}{sub}_{accent}", f"{base}_{accent}{sub}", f"{base}{accent}{sub}"):
                if cand in self.table.names:
                    return self.table.names[cand]
            if self.unknowns is not None:
                return self.fallback(f"{base}_{accent}", node)
            raise self.fail(node, f"unknown symbol '{base}' with a {accent}")
        if d in ("start", "exponent", "subscript") or len(c) == 1:
            return self.build(c[0])
        raise self.fail(node, f"unsupported construct '{d}'")

    def index_sum(self, index: str, summand: Any, node: Any) -> Any:
        """Σ_j G_{ij}: a sum over one index of a matrix's entries, as the matrix times a ones vector (row sums, a
        column; Σ_i G_{ij} gives the column sums as a column, Gᵀ1)."""
        from lark import Token

        toks = (
            [t for t in summand.scan_values(lambda v: isinstance(v, Token))]
            if not isinstance(summand, Token)
            else [summand]
        )
        raw = "".join(str(t) for t in toks).replace("{", "").replace("}", "").replace(" ", "")
        base, _, sub = raw.partition("_")
        matrix = self.table.names.get(base) if len(sub) == 2 and index in sub and len(toks) == 1 else None
        if matrix is None:
            matrix = self.fallback(base, node) if len(sub) == 2 and index in sub and len(toks) == 1 else None
        if matrix is None or not self.is_matrix(matrix):
            raise self.fail(node, "a sum over an index reads only as row or column sums of a matrix's entries")
        if sub.index(index) == 1:
            return matrix * self.sp.OneMatrix(matrix.shape[1], 1)
        return matrix.T * self.sp.OneMatrix(matrix.shape[0], 1)

    def negate(self, v: Any, node: Any) -> Any:
        if isinstance(v, _Eye):
            return _Eye(-v.coef)
        if isinstance(v, _Ones):
            raise self.fail(node, "the ones vector 1 needs a matrix beside it to take its size", meaning=True)
        return -v

    def is_function(self, name: str) -> bool:
        bare = name.rstrip("'").lstrip("\\")
        return bare in self.table.functions or (bare in FUNCTIONS and bare not in self.table.names) or bare == "mod"

    def apply_function(self, left: Any, right: Any, node: Any) -> Any:
        """f x and F'(x)^2 read as a function applied: a function's name followed by what it applies to."""
        from lark import Token, Tree

        tok = left.children[0] if isinstance(left, Tree) and left.data == "name" else left
        if not (isinstance(tok, Token) and tok.type == "NAME" and self.is_function(str(tok))):
            return None
        if isinstance(right, Tree) and right.data == "pow":
            inner = self.call(str(tok), [self.build(right.children[0])], node)
            return self.power(inner, self.exponent(right.children[1]))
        return self.call(str(tok), [self.build(right)], node)

    def factors(self, node: Any) -> list[Any]:
        if getattr(node, "data", None) == "imul":
            return [*self.factors(node.children[0]), node.children[1]]
        return [node]

    def equation(self, sides: list[Any]) -> Any:
        """'η* = …' and 'p = 1': the right-hand side is the answer. When the left side holds one name the part does
        not know inside more than that name (2η λ̃ = λ), the equation is solved for it."""
        rhs = self.build(sides[-1])
        if len(sides) != 2:
            return rhs
        self.unknowns = []
        try:
            lhs = self.build(sides[0])
            unknowns = self.unknowns
        except (AnswerError, TypeError, ValueError, AttributeError, ArithmeticError):
            return rhs
        finally:
            self.unknowns = None
        if len(unknowns) != 1 or lhs == unknowns[0] or self.is_matrix(lhs) or self.is_matrix(rhs):
            return rhs
        solved = self.sp.solve(self.sp.Eq(lhs, rhs), unknowns[0])
        if len(solved) != 1:
            raise MeaningError("the equation does not give one value for its unknown")
        return solved[0]

    def subscript_text(self, node: Any) -> str:
        from lark import Token

        toks = [str(t) for t in node.scan_values(lambda v: isinstance(v, Token))]
        return "".join(toks)

    def add(self, a: Any, b: Any, node: Any) -> Any:
        if isinstance(a, _Eye) or isinstance(b, _Eye):
            eye, other = (a, b) if isinstance(a, _Eye) else (b, a)
            if not (self.is_matrix(other) and other.shape[0] == other.shape[1]):
                raise self.fail(node, "the identity I added to something that is not a square matrix", meaning=True)
            return self.sp.Identity(other.shape[0]) * eye.coef + other
        if isinstance(a, _Ones) or isinstance(b, _Ones):
            raise self.fail(node, "the ones vector 1 needs a matrix beside it to take its size", meaning=True)
        if self.is_matrix(a) != self.is_matrix(b):
            a, b = self.scalarize(a), self.scalarize(b)
        if self.is_matrix(a) and self.is_matrix(b) and a.shape != b.shape:
            raise self.fail(
                node,
                f"the shapes do not conform: a {a.shape[0]}×{a.shape[1]} plus a {b.shape[0]}×{b.shape[1]} matrix",
                meaning=True,
            )
        if self.is_matrix(a) != self.is_matrix(b):
            raise self.fail(node, "a matrix plus a scalar", meaning=True)
        return a + b

    def rows(self, rows: list[Any], node: Any) -> Any:
        """A matrix from rows; a row may itself be a 1×n matrix (``[[1, 2], [3, 4]]``), a bare list is one row."""
        sp = self.sp
        if rows and not isinstance(rows[0], list):
            if all(isinstance(r, sp.MatrixBase) and r.shape[0] == 1 for r in rows):
                rows = [list(r) for r in rows]
            else:
                rows = [rows]
        if len({len(r) for r in rows}) != 1:
            raise self.fail(node, "matrix rows of different lengths", meaning=True)
        for r in rows:
            for e in r:
                if isinstance(e, _Ones) or self.is_matrix(e):
                    raise self.fail(node, "a matrix inside a matrix entry")
        return sp.Matrix(rows)

    def letters(self, node: Any) -> list[Any] | None:
        """The names a run of letters stands for when it is not itself a name (XX → [X, X]); else None."""
        from lark import Token, Tree

        tok = node.children[0] if isinstance(node, Tree) and node.data == "name" else node
        if not isinstance(tok, Token) or tok.type != "NAME":
            return None
        name = str(tok).replace("{", "").replace("}", "").replace(" ", "")
        if name in self.table.names or "'" in name:
            return None
        parts = self.split(name)
        return parts if parts and len(parts) > 1 else None

    def build_args(self, node: Any) -> list[Any]:
        return [self.build(ch) for ch in node.children]

    def exponent(self, node: Any) -> tuple[str, Any]:
        from lark import Token

        if getattr(node, "data", None) == "pinv_exp":
            return ("pinv", None)
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
        return ("num", self.scalarize(self.build(k)))


def Tuple_(items: Any) -> Any:
    import sympy

    return sympy.Tuple(*items)


def _fn(name: str) -> Any:
    return lambda sp: getattr(sp, name)


FUNCTIONS: dict[str, Any] = {
    "floor": _fn("floor"),
    "ceil": _fn("ceiling"),
    "sqrt": _fn("sqrt"),
    "log": _fn("log"),
    "ln": _fn("log"),
    "exp": _fn("exp"),
    "tanh": _fn("tanh"),
    "sinh": _fn("sinh"),
    "cosh": _fn("cosh"),
    "coth": _fn("coth"),
    "sech": _fn("sech"),
    "csch": _fn("csch"),
    "tan": _fn("tan"),
    "sin": _fn("sin"),
    "cos": _fn("cos"),
    "sec": _fn("sec"),
    "csc": _fn("csc"),
    "cot": _fn("cot"),
    "arctan": _fn("atan"),
    "abs": _fn("Abs"),
    "sign": _fn("sign"),
    "sgn": _fn("sign"),
    "sigmoid": lambda sp: lambda v: 1 / (1 + sp.exp(-v)),
    "softplus": lambda sp: lambda v: sp.log(1 + sp.exp(v)),
    "relu": lambda sp: lambda v: sp.Max(v, 0),
    "ReLU": lambda sp: lambda v: sp.Max(v, 0),
}


def _bare_tuple(text: str) -> str:
    """(1, 0) as 1, 0: parentheses around the whole answer that hold a comma at their own level make a tuple."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth, comma = 0, False
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and i < len(text) - 1:
            return text  # the first parenthesis closes before the end: not one group
        comma = comma or (ch == "," and depth == 1)
    return text[1:-1] if comma else text


@dataclass(frozen=True)
class Reading:
    """An answer as read; ``alternate`` is its value under the other reading of an unbracketed ``a / b c`` (as
    ``(a / b) c``), when the text has one."""

    value: Any
    alternate: Any = None


def parse_math(text: str, table: SymbolTable, *, commas: bool = False) -> Any:
    """Parse one answer string into a sympy object, or raise AnswerError with the position and the reason (a
    :class:`MeaningError` when the text was read but does not make sense as written)."""
    return read(text, table, commas=commas).value


def read(text: str, table: SymbolTable, *, commas: bool = False) -> Reading:
    """Parse one answer string (see :func:`parse_math`), with the other reading of any unbracketed division."""
    from lark.exceptions import LarkError, UnexpectedInput

    clean = _bare_tuple(preprocess(text, commas=commas))
    if not clean:
        raise AnswerError("the answer is empty")
    plain = _PLAIN_NUMBER.fullmatch(clean)
    if plain and len(plain[1]) - ("." in plain[1]) <= MAX_DIGITS:  # what the grammar reads it as, without the parser
        import sympy

        value = sympy.Rational(plain[1]) if "." in plain[1] else sympy.Integer(plain[1])
        return Reading(-value if "-" in plain[0] else value, None)
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
    builder = _Builder(table)
    value = _build(builder, tree)
    alternate = None
    if builder.ambiguous:
        other = _Builder(table)
        other.left_to_right = True
        alternate = _build(other, tree)
    return Reading(value, alternate)


def _build(builder: _Builder, tree: Any) -> Any:
    import sympy

    try:
        return builder.build(tree)
    except AnswerError:
        raise
    except RecursionError:
        raise AnswerError("the answer nests too deeply") from None
    except sympy.ShapeError as exc:
        raise MeaningError(f"the shapes do not conform: {str(exc).splitlines()[0][:120]}") from None
    except (TypeError, ValueError, AttributeError, ArithmeticError, NotImplementedError) as exc:
        raise AnswerError(f"cannot build the answer: {str(exc).splitlines()[0][:120]}") from None
