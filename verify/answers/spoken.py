"""What people write around an answer, read before the grammar sees it: plain text rewrites, never evaluation.

- code spellings: ``A.T`` (transpose), ``A @ B`` (matrix product), ``np.linalg.inv(A)`` (inverse), ``np.array(...)``
  (a nested list), ``A.sum(dim=1)`` / ``axis=1`` (row sums, ``A 1``) and ``dim=0`` (column sums, ``1ᵀ A``);
- ``\\operatorname{mod}(a, S)`` and ``\\mathbin{\\%}`` as ``a mod S``;
- a transposed vector literal ``(-8, -4)^T`` as the vector; ``\\nabla L(w) = …`` as its right side;
- MATLAB-style matrices ``1 2; 3 4``;
- ``… with B = 100`` / ``… where B = 100``: the value substituted for the name;
- a trailing remark in brackets or after a dash that is prose (``17 (max over positions; min 13)``).

:func:`alternatives` splits a hedged answer (``9600 or 9728``); :func:`balanced` tells whether brackets pair up.
"""

from __future__ import annotations

import re

from verify.answers.normalize import MAX_CHARS

OPEN, CLOSE = "([{", ")]}"
NUMBER = r"-?\d+(?:\.\d+)?"


def balanced(text: str) -> bool:
    """Every bracket closes, in order ((), [], {}; ``\\{`` counts as ``{``; a half-open interval ``[0, 1)`` too)."""
    depth = 0
    for ch in text.replace(r"\left.", "").replace(r"\right.", ""):
        if ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _close(text: str, i: int) -> int:
    """Index of the bracket closing the one at ``i`` (or -1)."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] in OPEN:
            depth += 1
        elif text[j] in CLOSE:
            depth -= 1
            if depth == 0:
                return j
    return -1


def _split_commas(body: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def _calls(text: str, pattern: str, rewrite: object) -> str:
    """Each ``pattern(`` … ``)`` (balanced) replaced by ``rewrite(args)``."""
    for _ in range(20):
        m = re.search(pattern + r"\s*\(", text)
        if not m:
            return text
        end = _close(text, m.end() - 1)
        if end < 0:
            return text
        args = [a.strip() for a in _split_commas(text[m.end() : end])]
        text = text[: m.start()] + rewrite(args) + text[end + 1 :]  # type: ignore[operator]
    return text


def _operand_start(text: str, end: int) -> int:
    """Start of the operand ending at ``end`` (exclusive): a bracketed group or a name."""
    j = end - 1
    if j >= 0 and text[j] in CLOSE:
        depth = 0
        while j >= 0:
            if text[j] in CLOSE:
                depth += 1
            elif text[j] in OPEN:
                depth -= 1
                if depth == 0:
                    return j
            j -= 1
        return 0
    while j >= 0 and (text[j].isalnum() or text[j] in "_'"):
        j -= 1
    return j + 1


def _sums(text: str) -> str:
    """``A.sum(dim=1)`` / ``A.sum(axis=1)`` / ``A.sum(1)``: row sums ``(A 1)``; axis 0: column sums ``(1ᵀ A)``."""
    for _ in range(10):
        m = re.search(r"\.sum\s*\(\s*(?:(?:dim|axis)\s*=\s*)?(-?\d)\s*\)", text)
        if not m:
            return text
        start = _operand_start(text, m.start())
        operand = text[start : m.start()]
        if not operand:
            return text
        summed = rf"({operand} \mathbf{{1}})" if m.group(1) in ("1", "-1") else rf"(\mathbf{{1}}^T {operand})"
        text = text[:start] + summed + text[m.end() :]
    return text


def _matlab(text: str) -> str:
    """``1 2 3; 4 5 6`` (optionally in brackets) as a matrix, when every row has the same number of entries (≥ 2)."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    rows = [r.strip() for r in body.split(";") if r.strip()]
    if len(rows) < 2:
        return text
    cells = [re.split(r"\s*,\s*|\s+", r) for r in rows]
    if not all(all(re.fullmatch(NUMBER, c) for c in r) for r in cells) or len({len(r) for r in cells}) != 1:
        return text
    if len(cells[0]) < 2:
        return text
    return "[" + ", ".join("[" + ", ".join(r) + "]" for r in cells) + "]"


PROSE_WORD = re.compile(r"[A-Za-z]{3,}")


def _prose(segment: str) -> bool:
    """Words, not math: at least two words of three letters or more and no LaTeX command."""
    return len(PROSE_WORD.findall(segment)) >= 2 and "\\" not in segment


def _remarks(text: str) -> str:
    """A trailing remark in brackets, or after a dash, that is prose, is not part of the answer."""
    m = re.match(r"^(.*?\S)\s+(?:—|--|–)\s+(.*)$", text)
    if m and _prose(m.group(2)):
        text = m.group(1)
    m = re.match(r"^(.*?\S)\s*\(([^()]*)\)\s*$", text)
    if m and _prose(m.group(2)) and balanced(m.group(1)):
        text = m.group(1)
    return text


def _with(text: str) -> str:
    """``expr with B = 100`` / ``expr, where B = 100 and C = 3``: each value written in for its name."""
    m = re.match(r"^(.*?)\s*,?\s+(?:with|where)\s+(.+)$", text)
    if not m:
        return text
    pairs = re.split(r"\s*(?:,|\band\b)\s*", m.group(2).strip())
    found = [re.fullmatch(r"([A-Za-z](?:_\{?\w+\}?)?)\s*=\s*(" + NUMBER + r")", p) for p in pairs]
    if not all(found):
        return text
    body = m.group(1)
    for f in found:
        assert f is not None
        name = re.escape(f.group(1))
        value = f.group(2) if not f.group(2).startswith("-") else f"({f.group(2)})"
        body = re.sub(rf"(?<![A-Za-z\\_]){name}(?![A-Za-z_])", value, body)
    return body


def preread(text: str) -> str:
    """The answer with code spellings, remarks and ``with …`` substitutions rewritten (see the module text); text
    longer than the reader takes is left as it is (the reader refuses it)."""
    if len(text) > MAX_CHARS:
        return text
    text = text.strip()
    text = _remarks(text)
    text = _with(text)
    text = re.sub(r"^\s*\\nabla[^=]*=\s*", "", text)  # ∇L(w₀) = [-8, -4]^T
    text = text.replace("⊙", r" \odot ").replace("⊘", r" \oslash ")
    text = re.sub(r"\\mathbin\s*\{\s*\\?%\s*\}", " % ", text)
    mod = r"(?:\\operatorname\s*\{\s*mod\s*\}|\\mathrm\s*\{\s*mod\s*\}|(?<![A-Za-z\\])mod)"
    text = _calls(text, mod, lambda a: f"(({a[0]}) \\bmod ({a[1]}))" if len(a) == 2 else "mod(" + ", ".join(a) + ")")
    # code
    text = re.sub(r"(?<![A-Za-z])(?:np|numpy|torch)\.(?:linalg\.)?", "", text)
    text = _calls(text, r"(?<![A-Za-z])(?:array|tensor|matrix)", lambda a: ", ".join(a))
    text = _calls(text, r"(?<![A-Za-z])(?:inv|pinv)", lambda a: f"({a[0]})^{{-1}}" if len(a) == 1 else "")
    text = _sums(text)
    text = re.sub(r"(?<=[\w)\]])\.T(?![A-Za-z])", "^T", text)
    text = text.replace("@", r" \cdot ")
    # a transposed vector literal is the vector
    text = re.sub(r"^\s*([(\[][^()\[\]]*,[^()\[\]]*[)\]])\s*\^\s*(?:T|\{T\}|\\top|\{\\top\})\s*$", r"\1", text)
    return _matlab(text)


def alternatives(text: str) -> tuple[list[str], str]:
    """``9600 or 9728``, ``O(t) and O(1)``: the values an answer offers and the word joining them (one value and ''
    when it offers one)."""
    if len(text) > MAX_CHARS:
        return [text], ""
    for joiner in ("or", "and"):
        if re.search(rf"\s{joiner}\s", text):
            parts = [p.strip() for p in re.split(rf"\s+{joiner}\s+", text.strip())]
            if len(parts) > 1 and all(parts):
                return parts, joiner
    return [text], ""
