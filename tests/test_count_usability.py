"""`verify count` as a new user meets it: a narrow terminal, a factory importing its neighbours, odd input text,
Ctrl-C inside a model, parameters held by the model itself."""

from __future__ import annotations

import io
import json
import re

import pytest

from verify.cli import main


def _table(result, width: int, training: bool = False) -> str:
    from rich.console import Console

    from verify.count.render import print_table

    out = io.StringIO()
    print_table(result, training, Console(file=out, width=width, highlight=False, soft_wrap=False))
    return out.getvalue()


def test_narrow_table_keeps_every_number_whole():
    """At 80 columns (a pipe, a CI log) no number is cut; names give up the space; no field column without fields."""
    from verify.count.analyze import analyze
    from verify.count.conventions import Convention
    from verify.count.models import resnet18

    result = analyze(resnet18(), [(1, 3, 224, 224)], Convention("macs"), name="resnet18", training=True)
    text = _table(result, 80, training=True)
    cells = {c.strip() for line in text.splitlines() for c in re.split(r"[│┃]", line)}
    for x in result.layers:
        for n in (x.params, int(x.count), int(x.backward_count), x.outputs):
            assert f"{n:,}" in cells, (x.name, n)
    assert "receptive" not in text


def test_factory_imports_its_neighbours(tmp_path, capsys):
    import sys

    (tmp_path / "sib").mkdir()
    (tmp_path / "sib" / "helpers_w15.py").write_text(
        "import torch.nn as nn\ndef block():\n    return nn.Conv2d(3, 4, 3)\n"
    )
    (tmp_path / "sib" / "net.py").write_text("from helpers_w15 import block\ndef make():\n    return block()\n")
    before = list(sys.path)
    assert main(["count", f"{tmp_path}/sib/net.py:make", "--input", "1,3,8,8", "--json", "--no-rf"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["params"] == 4 * 3 * 9 + 4
    assert sys.path == before
    sys.modules.pop("helpers_w15", None)


@pytest.mark.parametrize("text", ["1,3,32,32,", "1,,3,32", ",1,3"])
def test_empty_shape_part_refused(capsys, text):
    assert main(["count", "zoo", "--input", text]) == 2
    err = capsys.readouterr().err
    assert "--input must be" in err and err.count("\n") == 1


def test_interrupt_inside_forward(tmp_path, capsys):
    f = tmp_path / "ki.py"
    f.write_text(
        "import torch.nn as nn\nclass M(nn.Module):\n    def forward(self, x):\n        raise KeyboardInterrupt\n"
        "def make():\n    return M()\n"
    )
    assert main(["count", f"{f}:make", "--input", "1,3,8,8"]) == 130
    assert capsys.readouterr().err == "verify: interrupted\n"


def _support_extents(model, shape):
    """Per axis, the largest extent (last − first + 1) of the input rows/columns any output unit depends on, from
    real gradients (weights made positive so that no dependence cancels)."""
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.abs() + 0.01)
    x = torch.rand(shape, dtype=torch.float64, requires_grad=True)
    y = model.double()(x)
    best = [0, 0]
    for idx in range(y[0, 0].numel()):
        (g,) = torch.autograd.grad(y[0, 0].flatten()[idx], x, retain_graph=True)
        nz = g[0].abs().sum(0).nonzero()
        for ax in (0, 1):
            best[ax] = max(best[ax], int(nz[:, ax].max() - nz[:, ax].min() + 1))
    return best


def test_adaptive_pooling_field_matches_real_units():
    """Adaptive pooling to (7,5) on 40×36 between two 3×3 convolutions: no field is wider than any real unit's."""
    import torch.nn as nn
    import torch.nn.functional as F

    from verify.count.receptive import field_json, fields_of
    from verify.count.support import example_inputs

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.d = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            return self.d(F.adaptive_avg_pool2d(self.c(x), (7, 5)))

    import copy

    net = Net().float().eval()
    rf = field_json(dict(fields_of(net, example_inputs([(1, 1, 40, 36)], ["float32"])).outputs())[""])
    assert rf["max"] == _support_extents(copy.deepcopy(net), (1, 1, 40, 36)) == [20, 24]


class _RowSplit:
    """y.view(B, C, H//4, 4, W).sum(3) between two 3×3 convolutions: a 4-row pooling written as a view."""

    @staticmethod
    def make():
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.c, self.d = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)

            def forward(self, x):
                y = self.c(x)
                b, c, h, w = y.shape
                return self.d(y.view(b, c, h // 4, 4, w).sum(3))

        return Net().eval()


def test_view_splitting_a_spatial_axis_is_never_silent():
    """The split is not mapped exactly: it is listed with the approximations, and --confirm-rf (which now checks
    whole-input fields too) shows that real units see less than the whole input."""
    from verify.count.receptive import fields_of
    from verify.count.support import confirm_fields, example_inputs

    net = _RowSplit.make().float()
    inputs = example_inputs([(1, 1, 32, 12)], ["float32"])
    g = fields_of(net, inputs)
    assert any("splitting or merging a spatial axis" in k for k in g.approximated)
    lines = confirm_fields(net, inputs, g)
    assert any("d: axis 0" in line and "propagated the whole input" in line for line in lines), lines
    assert "1 of 2 layers agree" in lines[-1]


def test_model_parameters_rows_and_unrun_modules(tmp_path, capsys):
    """A parameter the model holds itself is in the (model) row, so the top-level rows add up to the total; a module
    that did not run is marked; --confirm-rf's findings are in --json."""
    f = tmp_path / "net.py"
    f.write_text(
        "import torch, torch.nn as nn\n"
        "class M(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.pos = nn.Parameter(torch.zeros(1, 3, 6, 6))\n"
        "        self.c = nn.Conv2d(3, 2, 3)\n"
        "        self.aux = nn.Linear(5, 7)\n"
        "    def forward(self, x):\n"
        "        return self.c(x + self.pos)\n"
        "def make():\n    return M()\n"
    )
    assert main(["count", f"{f}:make", "--input", "1,3,6,6", "--json", "--confirm-rf"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {x["name"]: x for x in doc["layers"]}
    assert rows[""]["params"] == 108
    assert sum(x["params"] for x in doc["layers"] if "." not in x["name"]) == doc["total"]["params"] == 108 + 56 + 42
    assert rows["aux"].get("ran") is False and "ran" not in rows["c"]
    assert doc["confirm_rf"] and "layers agree" in doc["confirm_rf"][-1]


def test_fields_only_for_the_inputs_a_layer_reads(tmp_path, capsys):
    """Two inputs, two branches: each branch's field names only its own input (as autograd finds: the other input's
    gradient is absent); the sum of both names both."""
    import torch

    f = tmp_path / "two.py"
    f.write_text(
        "import torch.nn as nn\n"
        "class M(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.a, self.b = nn.Conv1d(2, 3, 3), nn.Conv1d(4, 3, 5)\n"
        "    def forward(self, x, y):\n"
        "        return self.a(x)[..., :8] + self.b(y)[..., :8]\n"
        "def make():\n    return M()\n"
    )
    assert main(["count", f"{f}:make", "--input", "1,2,10", "--input", "1,4,12", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {x["name"]: x["receptive_field"] for x in doc["layers"]}
    import importlib.util

    spec = importlib.util.spec_from_file_location("two_w15", f)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = mod.make()
    x, y = torch.rand(1, 2, 10, requires_grad=True), torch.rand(1, 4, 12, requires_grad=True)
    for name, sub, arg in (("a", m.a, x), ("b", m.b, y)):
        grads = torch.autograd.grad(sub(arg).sum(), [x, y], allow_unused=True)
        read = [i for i, g in enumerate(grads) if g is not None]
        assert rows[name]["inputs"] == read
    assert rows["a"]["max"][0] == 3 and rows["b"]["max"][1] == 5
    assert doc["total"]["receptive_field"]["inputs"] == [0, 1]
