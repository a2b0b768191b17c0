"""hypothesis strategies for layer configurations."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def conv_configs(draw, valid: bool = True):
    """A convolution (n, k, s, p, d, groups, channels); with valid=True the kernel span fits the padded input."""
    k = draw(st.integers(1, 7))
    s = draw(st.integers(1, 5))
    d = draw(st.integers(1, 4))
    p = draw(st.integers(0, 4))
    lo = max(1, d * (k - 1) + 1 - 2 * p) if valid else 1
    n = draw(st.integers(lo, max(lo, 48)))
    g = draw(st.sampled_from([1, 2, 3]))
    return {
        "n": n,
        "k": k,
        "s": s,
        "p": p,
        "d": d,
        "g": g,
        "c_in": g * draw(st.integers(1, 3)),
        "c_out": g * draw(st.integers(1, 3)),
    }


@st.composite
def tconv_configs(draw):
    """A transposed convolution with output_padding in its valid range 0 ≤ op < max(s, d)."""
    cfg = draw(conv_configs())
    cfg["op"] = draw(st.integers(0, max(cfg["s"], cfg["d"]) - 1))
    cfg["n"] = draw(st.integers(1, 24))
    return cfg


@st.composite
def pool_configs(draw):
    k = draw(st.integers(1, 6))
    s = draw(st.integers(1, 4))
    p = draw(st.integers(0, k // 2))
    n = draw(st.integers(max(1, k - 2 * p), 40))
    return {"n": n, "k": k, "s": s, "p": p, "ceil": draw(st.booleans()), "max": draw(st.booleans())}


@st.composite
def any_configs(draw):
    """Possibly invalid configurations, to compare what torch and the formulas reject."""
    return {
        "n": draw(st.integers(1, 12)),
        "k": draw(st.integers(0, 6)),
        "s": draw(st.integers(1, 3)),
        "p": draw(st.integers(-1, 4)),
        "d": draw(st.integers(1, 3)),
        "op": draw(st.integers(0, 4)),
    }
