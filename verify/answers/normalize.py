"""One spelling for each notation: what people type, rewritten into the small language the answer grammar reads.

Every rule is a plain text rewrite (regular expressions over the whole answer, no evaluation), applied in a fixed order:

1. unicode: superscript and subscript runs (``X⁻¹``, ``w₀``, ``ᵀ``), styled letters (``𝐗``), operators (``×``, ``−``,
   ``√``) and Greek letters;
2. math delimiters and layout: ``$…$``, ``\\(…\\)``, ``\\left``/``\\right``, ``\\displaystyle``, a trailing full stop;
3. numbers: digit groups (``397\\,184``, ``397 184``, ``1{,}024`` and, in numeric parts, ``9,600``), scientific
   notation (``1.6e5``), ``.5`` and ``5.``;
4. fonts and wrappers: ``\\mathbf{G}``, ``\\boldsymbol``, ``\\mathrm{e}``, ``\\text{…}``, ``\\operatorname{sech}``;
   ``\\mathbf{1}``/``\\mathbb{1}`` become the ones vector ``\\ones``;
5. operators people spell many ways: transposes (``^T``, ``^{\\top}``, ``^\\intercal``, ``^{\\mathsf{T}}``) become
   ``^{\\top}``; modulo (``\\bmod``, ``\\mod``, ``\\pmod{S}``, ``mod``, ``%``) becomes ``\\bmod``; derivatives
   (``\\frac{d}{dx}``, ``\\frac{dF}{dx}``, ``\\frac{\\partial}{\\partial x}``) become ``\\ddx{x}``; accents without
   braces (``\\tilde\\lambda``) get them; ``O(1; t\\to\\infty)`` loses its limit; matrices written with ``array`` or
   ``pmatrix`` become ``matrix``;
6. Greek commands become names (``\\lambda\\eta`` → ``lambda eta``).
"""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 2000

SUPERSCRIPTS = {
    "⁰": "0",
    "¹": "1",
    "²": "2",
    "³": "3",
    "⁴": "4",
    "⁵": "5",
    "⁶": "6",
    "⁷": "7",
    "⁸": "8",
    "⁹": "9",
    "⁻": "-",
    "⁺": "+",
    "ⁿ": "n",
    "ᵀ": "T",
    "ᵗ": "T",
}
SUBSCRIPTS = {
    "₀": "0",
    "₁": "1",
    "₂": "2",
    "₃": "3",
    "₄": "4",
    "₅": "5",
    "₆": "6",
    "₇": "7",
    "₈": "8",
    "₉": "9",
    "ₙ": "n",
    "ᵢ": "i",
    "ₖ": "k",
}
GREEK = {
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "εϵ",
    "eta": "η",
    "theta": "θ",
    "lambda": "λ",
    "mu": "μ",
    "sigma": "σ",
    "tau": "τ",
    "phi": "φϕ",
    "rho": "ρ",
    "omega": "ω",
    "pi": "π",
    "xi": "ξ",
    "kappa": "κ",
    "nu": "ν",
    "zeta": "ζ",
    "psi": "ψ",
    "chi": "χ",
}
GREEK_ALIASES = {"varepsilon": "epsilon", "vartheta": "theta", "varphi": "phi", "varrho": "rho", "varsigma": "sigma"}
SYMBOLS = {
    "·": r" \cdot ",
    "⋅": r" \cdot ",
    "∙": r" \cdot ",
    "×": r" \times ",
    "∗": "*",
    "÷": "/",
    "−": "-",
    "–": "-",
    "—": "-",
    "⊤": r"\top ",
    "√": r"\sqrt ",
    "‖": r"\| ",
    "⌊": r"\lfloor ",
    "⌋": r"\rfloor ",
    "⌈": r"\lceil ",
    "⌉": r"\rceil ",
    "∞": r"\infty ",
    "𝟙": r"\ones ",
    "∅": r"\emptyset ",
    "∑": r"\sum ",
    "Σ": r"\sum ",
    "′": "'",
    "″": "''",
    "∂": r"\partial ",
    "≡": "=",
    "≈": "=",
}
# \operatorname{…} and \text{…} contents that are functions the grammar knows as commands
FUNCTION_WORDS = (
    "sech",
    "csch",
    "sinh",
    "cosh",
    "tanh",
    "coth",
    "sin",
    "cos",
    "tan",
    "sec",
    "csc",
    "cot",
    "exp",
    "log",
    "ln",
    "max",
    "min",
    "floor",
    "ceil",
    "sqrt",
    "sigmoid",
    "arctan",
    "softplus",
    "relu",
    "ReLU",
    "abs",
    "sign",
    "sgn",
)
WRAPPERS = (
    "text",
    "textrm",
    "textit",
    "textbf",
    "textsf",
    "texttt",
    "mathrm",
    "mathit",
    "mathbf",
    "mathsf",
    "mathtt",
    "mathbb",
    "mathcal",
    "mathscr",
    "mathfrak",
    "boldsymbol",
    "bm",
    "pmb",
    "vec",
    "operatorname",
    "rm",
    "bf",
    "it",
)
ACCENTS = {"\u0303": "tilde", "\u0302": "hat", "\u0304": "bar"}
_WRAP = "|".join(sorted(WRAPPERS, key=len, reverse=True))
_DIGIT_SEP = r"(?:\\,|\\;|\\:|\\!|\\ |\{,\}|~| |\u2009|\u202f|\u00a0|')"


def _scripts(text: str) -> str:
    """Runs of unicode superscripts and subscripts as ^{…} and _{…}; ᵀ as a transpose."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        table = SUPERSCRIPTS if ch in SUPERSCRIPTS else SUBSCRIPTS if ch in SUBSCRIPTS else None
        if table is None:
            out.append(ch)
            i += 1
            continue
        j = i
        while j < len(text) and text[j] in table:
            j += 1
        run = "".join(table[c] for c in text[i:j])
        out.append(("^{" if table is SUPERSCRIPTS else "_{") + run + "} ")
        i = j
    return "".join(out)


def _greek(text: str) -> str:
    for name, letters in GREEK.items():
        for letter in letters:
            text = text.replace(letter, f"\\{name} ")
    for alias, name in GREEK_ALIASES.items():
        text = re.sub(rf"\\{alias}(?![A-Za-z])", rf"\\{name}", text)
    return text


def _unwrap(match: re.Match[str]) -> str:
    cmd, body = match.group(1), match.group(2).strip()
    if body in ("1",) and cmd in ("mathbf", "mathbb", "boldsymbol", "bm", "pmb", "vec", "textbf"):
        return r"\ones "
    if cmd == "mathcal" and body == "O":
        return r"\mathcal{O}"
    if body in FUNCTION_WORDS and cmd in ("operatorname", "mathrm", "text", "textrm", "rm"):
        return f"\\{body} "
    if re.fullmatch(r"\s*mod\s*", body):
        return r" \bmod "
    return body if len(body) != 1 or cmd not in ("mathrm", "text", "textrm", "rm") else f" {body} "


def _prose(match: re.Match[str]) -> str:
    body = match.group(1).strip()
    words = re.findall(r"[A-Za-z]+", body)
    prose = re.fullmatch(r"\(?[A-Za-z][A-Za-z ,.;:'-]*\)?", body) and (len(words) > 1 or body.startswith("("))
    return " " if prose and body.strip("() ") != "mod" else match.group(0)


def _groups(text: str, commas: bool) -> str:
    """Digit groups joined: 397\\,184, 397 184, 1{,}024 (and 9,600 where commas are allowed) are single numbers."""
    seps = _DIGIT_SEP if not commas else _DIGIT_SEP[:-1] + "|,)"
    pattern = re.compile(rf"(?<![\d.,^_{{])(\d{{1,3}})((?:{seps}\d{{3}})+)(?![\d])")

    def join(m: re.Match[str]) -> str:
        return m.group(1) + re.sub(r"\D", "", m.group(2))

    return pattern.sub(join, text)


def _scientific(text: str) -> str:
    """1.6385e5, 4E-3, 2.5e+07 as (m \\cdot 10^{e})."""
    return re.sub(
        r"(?<![A-Za-z_\d.])(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d+)(?![\d.A-Za-z])",
        lambda m: f"({m.group(1)} \\cdot 10^{{{m.group(2).lstrip('+')}}})",
        text,
    )


def _derivatives(text: str) -> str:
    d = r"(?:d|\\partial|\\mathrm\{d\}|\\text\{d\}|\\operatorname\{d\})"
    frac = r"\\[dt]?frac"
    # \frac{d}{dx} and \frac{\partial}{\partial x}: an operator on what follows
    text = re.sub(rf"{frac}\s*\{{\s*{d}\s*\}}\s*\{{\s*{d}\s*([A-Za-z])\s*\}}", r" \\ddx{\1} ", text)
    # \frac{dF}{dx}, \frac{d F(x)}{dx}, \frac{\partial F}{\partial x}
    text = re.sub(
        rf"{frac}\s*\{{\s*{d}\s*([A-Za-z](?:\s*\([^(){{}}]*\))?)\s*\}}\s*\{{\s*{d}\s*([A-Za-z])\s*\}}",
        r" \\ddx{\2}{\1} ",
        text,
    )
    # d/dx F(x)
    return re.sub(rf"(?<![A-Za-z\\]){d}\s*/\s*{d}\s*([A-Za-z])(?![A-Za-z])", r" \\ddx{\1} ", text)


def normalize(text: str, *, commas: bool = False) -> str:
    """The answer in the grammar's spelling. ``commas``: digit groups may be separated by commas (numeric parts)."""
    text = re.sub(r"(\\[A-Za-z]+|.)([\u0303\u0302\u0304])", lambda m: f"\\{ACCENTS[m.group(2)]}{{{m.group(1)}}}", text)
    text = _scripts(text)
    for u, r in SYMBOLS.items():
        text = text.replace(u, r)
    text = _greek(text)
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u00a0", " ")
    # delimiters and layout
    text = text.strip()
    text = re.sub(r"^\$+|\$+$", "", text).strip()
    text = re.sub(r"^\\[(\[]|\\[)\]]$", "", text).strip()
    text = re.sub(r"\\(displaystyle|textstyle|limits|nolimits)(?![A-Za-z])", " ", text)
    text = re.sub(
        r"\\(left|right|middle|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)(?![A-Za-z])\s*\.?", "", text
    )
    text = re.sub(r"[.;,]\s*$", "", text).strip()
    text = re.sub(r"\\(?:approx|simeq|sim)(?![A-Za-z])", "=", text)  # ≈ 3.97e5: read, and graded as rounded
    text = re.sub(r"^=+\s*", "", text)
    text = re.sub(r"(?<![A-Za-z])(?:math|np|numpy|torch|sympy|sp|F)\.(?=[A-Za-z])", "", text)  # code: math.floor(…)
    # numbers
    text = _groups(text, commas)
    if commas:  # numeric parts: 5x5 is 5 times 5 (a size, read as a product)
        text = re.sub(r"(?<=\d)\s*[xX]\s*(?=\d)", r" \\times ", text)
    text = _scientific(text)
    text = re.sub(r"(?<![\d\w])\.(\d)", r"0.\1", text)
    text = re.sub(r"(\d)\.(?!\d)", r"\1", text)
    # prose annotations in \text{…} (several words, or words in brackets) are not part of the answer
    text = re.sub(r"\\(?:text|mbox|textrm|textit)\s*\{([^{}]*)\}", _prose, text)
    # fonts, text and named operators (nested wrappers unwrap from the inside out)
    text = re.sub(r"\\(mathbf|mathbb|boldsymbol|bm)\s+1(?!\d)", r"\\ones ", text)
    text = _derivatives(text)
    for _ in range(6):
        new = re.sub(rf"\\({_WRAP})\s*\{{([^{{}}]*)\}}", _unwrap, text)
        new = re.sub(r"\\(mathbf|boldsymbol|bm|mathrm|mathit|rm|bf)\s+([A-Za-z])", r"\2", new)
        if new == text:
            break
        text = new
    text = _derivatives(text)
    text = re.sub(r"([A-Za-z])\{\s*\(([^(){}]*)\)\s*\}", r"\1(\2)", text)  # F{(x)}, as sympy prints F(x)
    text = re.sub(r"\\ddx\{(\w)\}\s*([A-Za-z]'*(?:_\{?\w+\}?)?\s*\([^()]*\))", r"\\ddx{\1}{\2}", text)
    # transposes, primes
    text = re.sub(r"\^\s*\\prime|\^\s*\{\s*\\prime\s*\}", "'", text)
    text = re.sub(r"\^\s*\{\s*(?:\\top|\\intercal|\\mathsf\{T\}|T|\\mathrm\{T\}|\\rm\s*T)\s*\}", "^{\\\\top} ", text)
    text = re.sub(r"\^\s*(?:\\top|\\intercal|\\mathsf\{T\})(?![A-Za-z])", "^{\\\\top} ", text)
    text = re.sub(r"\^\s*T(?![\d_{(])", "^{\\\\top} ", text)
    text = re.sub(r"\^\s*(?:\\dagger|\{\s*\\dagger\s*\}|\{\s*\+\s*\})", "^{+} ", text)  # pseudo-inverse
    # modulo
    text = re.sub(r"\\pmod\s*\{", r" \\bmod {", text)
    text = re.sub(r"\\pmod\s*", r" \\bmod ", text)
    text = re.sub(r"\\(?:mod|bmod)(?![A-Za-z])", r" \\bmod ", text)
    text = re.sub(r"(?<![A-Za-z\\])mod(?![A-Za-z])(?!\s*\()", r" \\bmod ", text)
    text = text.replace("%", r" \bmod ")
    # accents without braces, wide accents
    text = re.sub(r"\\wide(tilde|hat)", r"\\\1", text)
    text = re.sub(r"\\(tilde|hat|bar|check)\s*(\\[A-Za-z]+|[A-Za-z])", r"\\\1{\2}", text)
    # big-O with its limit, sets, matrices
    text = re.sub(r"[;,]\s*[A-Za-z]\s*\\(?:rightarrow|to)\s*\\infty", "", text)
    text = re.sub(r"\\begin\{array\}\s*\{[^{}]*\}", r"\\begin{matrix}", text).replace(r"\end{array}", r"\end{matrix}")
    text = re.sub(r"\\(begin|end)\{[bpvBV]?matrix\*?\}", r"\\\1{matrix}", text)
    text = re.sub(r"\\\\\s*\\end\{matrix\}", r"\\end{matrix}", text)
    text = re.sub(r"\\(?:lVert|rVert|Vert)(?![A-Za-z])", r"\\|", text).replace("||", r"\|")
    text = re.sub(r"(?<!\\)\\[,;:!> ]|\\quad|\\qquad|~", " ", text)
    text = re.sub(r"\\(?:cdot|times|ast)(?![A-Za-z])", " * ", text)
    text = text.replace("**", "^").replace(r"\div", "/")
    text = re.sub(r"\\(?:odot|circ|otimes)(?![A-Za-z])", " * ", text)  # element-wise products of scalars' arrays
    text = re.sub(r"\\oslash(?![A-Za-z])", " / ", text)
    text = re.sub(r"\\(?:Theta|Omega)\s*\(", r"\\mathcal{O}(", text)  # a tight bound names the same class
    text = re.sub(r"\\(?:varnothing|emptyset)(?![A-Za-z])", r"\\emptyset", text)
    text = re.sub(r"(?<![\w.^])1_\{?(\d+|[A-Za-z])\}?", r"\\ones_{\1}", text)
    text = re.sub(r"(?<![A-Za-z\\])O\s*\(", r"\\mathcal{O}(", text)
    # Greek: a name, spaced off from a following letter (\lambda\eta is λ·η); \sigma( stays a call
    text = re.sub(r"\\sigma(?![A-Za-z])(?=\s*(?:\(|\^\s*(?:\d|\{\s*\d+\s*\})\s*\())", r"\\sigmacall", text)

    def greek(m: re.Match[str]) -> str:
        nxt = text[m.end() : m.end() + 1]
        return " " + m.group(1) + (" " if nxt.isalnum() or nxt == "\\" else "")

    names = "|".join(sorted(GREEK, key=len, reverse=True))
    text = re.sub(rf"\\({names})(?![A-Za-z])", greek, text)
    text = text.replace(r"\sigmacall", r"\sigma")
    return re.sub(r"\s+", " ", text).strip()
