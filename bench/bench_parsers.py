"""The answer parser measured on a corpus of answers as people write them, against latex2sympy2_extended.

Usage: python bench/bench_parsers.py [--write]      (pip install latex2sympy2_extended to include it)

Each corpus entry is a text and the meaning it must be read as (built here in code); a reading is right when it equals
that meaning (simplify, then random points). Reported: right readings, wrong readings (parsed to something else),
refusals, and the median time per answer. Case matters (N and n are different symbols), σ is the logistic function,
X and a are matrices.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Any

import sympy
from _record import record  # bench/ is on sys.path when a script runs from it

H, K, S, P, D, C, M, N, B, W = sympy.symbols("H K S P D C M N B W", integer=True, positive=True)
lam, eta, beta, eps = sympy.symbols("lambda eta beta epsilon", positive=True)
x, y = sympy.symbols("x y", real=True)
n_, d_ = sympy.symbols("n d", integer=True, positive=True)
Xm, tm, am = sympy.MatrixSymbol("X", n_, d_), sympy.MatrixSymbol("t", n_, 1), sympy.MatrixSymbol("a", n_, 1)
NAMES = {s.name: s for s in (H, K, S, P, D, C, M, N, B, W, lam, eta, beta, eps, x, y, n_, d_)}
MATS = {"X": Xm, "t": tm, "a": am}


def sig(v: Any) -> Any:
    return 1 / (1 + sympy.exp(-v))


CORPUS: list[tuple[Any, list[str]]] = [
    (
        lam / (2 * eta),
        [
            r"\frac{\lambda}{2\eta}",
            r"0.5\lambda/\eta",
            r"\lambda\cdot(2\eta)^{-1}",
            r"\lambda / (2 \eta)",
            "λ/(2η)",
            r"\tilde{\lambda} = \frac{\lambda}{2\eta}",
            r"\dfrac{\lambda}{2\eta}",
            r"\frac{1}{2}\frac{\lambda}{\eta}",
        ],
    ),
    (
        sympy.floor((H + 2 * P - K) / S) + 1,
        [
            r"\left\lfloor \frac{H + 2P - K}{S} + 1 \right\rfloor",
            "floor((H+2P-K)/S)+1",
            r"\lfloor \frac{H+2P-K}{S} \rfloor + 1",
            r"\left\lfloor\frac{H-K+2P}{S}\right\rfloor+1",
            r"H' = \left\lfloor \frac{H + 2P - K}{S} \right\rfloor + 1",
            "floor((H + 2*P - K)/S) + 1",
            r"\lfloor (H+2P-K)/S \rfloor + 1",
            r"1 + \left\lfloor \frac{H + 2 P - K}{S} \right\rfloor",
        ],
    ),
    (
        sympy.floor((H + 2 * P - D * (K - 1) - 1) / S) + 1,
        [
            r"\left\lfloor \frac{H + 2P - D(K - 1) - 1}{S} + 1 \right\rfloor",
            "floor((H + 2P - D*(K-1) - 1)/S) + 1",
            r"\lfloor \frac{H + 2P - D(K-1) - 1}{S} \rfloor + 1",
            r"\left\lfloor \frac{H+2P-(1+D(K-1))}{S}\right\rfloor+1",
            r"\left\lfloor \frac{H + 2 P - D \cdot (K - 1) - 1}{S} \right\rfloor + 1",
        ],
    ),
    (
        C * K**2 * N / M,
        [
            r"\frac{CK^2N}{M}",
            "C*K^2*N/M",
            r"K \times K \times \frac{C}{M} \times N",
            "CK^2N/M",
            r"\frac{C K^{2} N}{M}",
            r"C\cdot K^2\cdot N / M",
            r"\frac{C \cdot K^2 \cdot N}{M}",
            "K^2*C*N/M",
        ],
    ),
    (C * (K**2 + N), [r"C(K^2 + N)", "C*(K^2+N)", r"CK^2 + CN", r"C \cdot K^2 + C \cdot N", r"C\left(K^{2}+N\right)"]),
    (
        1 - sympy.tanh(x) ** 2,
        [
            r"1 - \tanh^2(x)",
            r"1-\tanh(x)^2",
            r"4(\sigma(2x) - \sigma(2x)^2)",
            r"4\sigma(2x)(1-\sigma(2x))",
            r"4\left(\sigma(2x)-\sigma(2x)^{2}\right)",
        ],
    ),
    (y * (1 - y), ["y(1-y)", "y - y^2", r"y\cdot(1 - y)", "-y^2+y", r"y\left(1-y\right)"]),
    (N / sympy.Symbol("n", integer=True, positive=True), [r"\frac{N}{n}", "N/n"]),
    (
        8 * eta / (8 * sympy.sqrt(1 - beta) + eps),
        [
            r"\frac{8\eta}{8\sqrt{1-\beta}+\epsilon}",
            r"\frac{\eta}{\sqrt{1-\beta}+\epsilon/8}",
            r"8\eta/(8\sqrt{1-\beta}+\epsilon)",
        ],
    ),
    (Xm.T * (Xm * Xm.T).I * tm, [r"X^T (X X^T)^{-1} t", r"X^\top(XX^\top)^{-1}t", r"X^{T}\left(X X^{T}\right)^{-1} t"]),
    (
        n_ * (am.T * Xm * Xm.T * am) * (2 * (am.T * Xm * Xm.T * Xm * Xm.T * am)).I,
        [
            r"\frac{n}{2}\frac{\|X^T a\|_2^2}{\|X X^T a\|_2^2}",
            r"\eta^* = \frac{n}{2} \frac{||X^T a||_2^2}{||X X^T a||_2^2}",
            r"\frac{n \, a^T X X^T a}{2 \|X X^T a\|^2}",
        ],
    ),
    (sympy.Integer(397184), ["397184", "397184.0"]),
    (2 * sympy.floor(H / 2), [r"2\left\lfloor \frac{H}{2} \right\rfloor", "2*floor(H/2)"]),
    (
        H * W * (C * (2 * K**2 - 1) + N * (2 * C - 1)),
        [r"HW(C(2K^2 - 1) + N(2C - 1))", r"H W \left(C (2 K^{2} - 1) + N (2 C - 1)\right)"],
    ),
]


def _ours(text: str) -> Any:
    from verify.answers.parse import SymbolTable, parse_math

    table = SymbolTable({**NAMES, **MATS}, {"sigma": sig})
    return parse_math(text, table)


def _latex2sympy(text: str) -> Any:
    from latex2sympy2_extended import latex2sympy

    expr = latex2sympy(text)
    if isinstance(expr, list):
        expr = expr[-1]
    if isinstance(expr, sympy.Eq):
        expr = expr.rhs
    # bind its symbols to ours by name (case-sensitive), σ to the logistic function
    rep = {s: NAMES.get(s.name, s) for s in getattr(expr, "free_symbols", set())}
    expr = expr.xreplace(rep)
    return expr.replace(sympy.Function("sigma"), sympy.Lambda(sympy.Symbol("u"), sig(sympy.Symbol("u"))))


def _right(got: Any, want: Any) -> bool:
    from verify.matrices import Instance, evaluate, is_zero, random_matrix

    if isinstance(want, sympy.MatrixExpr) or (isinstance(want, sympy.Basic) and want.atoms(sympy.MatrixSymbol)):
        if not isinstance(got, sympy.Basic) or not got.atoms(sympy.MatrixSymbol):
            return False
        import random

        rng = random.Random(0)
        mats = {"X": random_matrix(rng, 2, 3), "t": random_matrix(rng, 2, 1)}
        mats["a"] = random_matrix(rng, 2, 1)
        inst = Instance({"n": 2, "d": 3}, {}, mats)
        try:
            return bool(
                is_zero(sympy.Matrix([[evaluate(got, inst)]]) - sympy.Matrix([[evaluate(want, inst)]]))
                if not isinstance(evaluate(want, inst), sympy.MatrixBase)
                else is_zero(sympy.Matrix(evaluate(got, inst)) - sympy.Matrix(evaluate(want, inst)))
            )
        except Exception:
            return False
    from verify.symbolic import equal

    try:
        return equal(got, want).equal
    except Exception:
        return False


def measure(parse: Any) -> dict[str, Any]:
    right = wrong = refused = 0
    times = []
    misses = []
    for want, texts in CORPUS:
        for text in texts:
            start = time.perf_counter()
            try:
                got = parse(text)
            except Exception:
                refused += 1
                misses.append(f"refused `{text}`")
                continue
            finally:
                times.append(time.perf_counter() - start)
            if _right(got, want):
                right += 1
            else:
                wrong += 1
                misses.append(f"misread `{text}` as `{got}`")
    return {
        "right": right,
        "wrong": wrong,
        "refused": refused,
        "median_ms": 1000 * statistics.median(times),
        "misses": misses,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    total = sum(len(t) for _, t in CORPUS)
    rows = [
        f"Corpus: {total} answers.",
        "",
        "| parser | right | misread | refused | median ms per answer |",
        "|---|---:|---:|---:|---:|",
    ]
    details = []
    for name, fn in (("verify (lark grammar)", _ours), ("latex2sympy2_extended", _latex2sympy)):
        try:
            res = measure(fn)
        except ImportError:
            rows.append(f"| {name} | not installed | | | |")
            continue
        rows.append(f"| {name} | {res['right']} | {res['wrong']} | {res['refused']} | {res['median_ms']:.2f} |")
        details.append(f"- {name}: " + ("; ".join(res["misses"][:8]) or "no misses"))
    table = "\n".join([*rows, "", *details])
    where = f"{platform.python_version()}, {platform.machine()}"
    print(table)
    if args.write:
        record("bench_parsers", table, where)


if __name__ == "__main__":
    main()
