"""Layers run one way and no module takes part in an import cycle; both rules are shown to bite on small trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.paths import ROOT
from tests.layering import ALLOWED, LAYERS, Import, cycles, graph, layer_violations


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# A small tree with every layer and only downward imports: the baseline the two faulty trees differ from.
CLEAN = {
    "common/__init__.py": "",
    "common/paths.py": "ROOT = 1\n",
    "handlers/thumbnailer/__init__.py": "",
    "handlers/thumbnailer/contract.py": "KEY = 'source-key'\n",
    "infra/__init__.py": "",
    "infra/deploy.py": "from common.paths import ROOT\nfrom thumbnailer.contract import KEY\n",
    "harness/__init__.py": "",
    "harness/cli.py": "import infra.deploy\nfrom harness import load\n",
    "harness/load.py": "from common import paths\n",
    "benchmarks/__init__.py": "",
    "benchmarks/run.py": "from harness.cli import main\n",
}


@pytest.fixture(scope="module")
def real_tree() -> tuple[dict[str, Path], list[Import]]:
    return graph(ROOT)


def test_the_real_tree_has_no_upward_import(real_tree: tuple[dict[str, Path], list[Import]]) -> None:
    modules, edges = real_tree
    assert len(modules) > 50 and len(edges) > 100, "the walk found too little of the tree to mean anything"
    assert {"common", "infra", "harness", "thumbnailer"} <= {m.split(".")[0] for m in modules}
    assert layer_violations(edges) == []


def test_the_real_tree_has_no_import_cycle(real_tree: tuple[dict[str, Path], list[Import]]) -> None:
    modules, edges = real_tree
    assert cycles(modules, edges) == []


def test_a_clean_small_tree_passes_both_rules(tmp_path: Path) -> None:
    modules, edges = graph(_write(tmp_path, CLEAN))
    assert set(modules) >= {"common.paths", "thumbnailer.contract", "infra.deploy", "harness.cli", "benchmarks.run"}
    assert {(e.importer, e.imported) for e in edges} >= {
        ("infra.deploy", "common.paths"),
        ("infra.deploy", "thumbnailer.contract"),
        ("harness.cli", "infra.deploy"),
        ("harness.cli", "harness.load"),
    }
    assert layer_violations(edges) == []
    assert cycles(modules, edges) == []


@pytest.mark.parametrize(
    ("rel", "text", "needle"),
    [
        # a back-edge hidden inside a function (the lazy import that static tools miss)
        (
            "infra/lint.py",
            "def f():\n    from harness.cli import main\n    return main\n",
            "infra.lint (infra) imports harness.cli",
        ),
        # a back-edge spelled as an importlib string
        ("infra/lint.py", "import importlib\nM = importlib.import_module('harness.load')\n", "imports harness.load"),
        # a computed importlib name: the module names the file spells count
        (
            "infra/lint.py",
            "import importlib\nNAMES = ('harness.cli',)\nM = [importlib.import_module(n) for n in NAMES]\n",
            "imports harness.cli",
        ),
        # handlers are deployed alone: not even common
        (
            "handlers/thumbnailer/app.py",
            "from common.paths import ROOT\n",
            "thumbnailer.app (handlers) imports common.paths",
        ),
        ("common/waiting.py", "from infra import deploy\n", "common.waiting (common) imports infra.deploy"),
        # a relative import that climbs into a higher layer
        ("infra/sub/__init__.py", "from ...harness import cli\n", "imports harness.cli"),
    ],
)
def test_an_upward_import_is_reported(tmp_path: Path, rel: str, text: str, needle: str) -> None:
    _write(tmp_path, CLEAN | {rel: text})
    modules, edges = graph(tmp_path)
    violations = layer_violations(edges)
    assert len(violations) == 1 and needle in violations[0], violations


@pytest.mark.parametrize(
    ("extra", "cycle"),
    [
        # two modules of one package importing each other, one of them inside a function
        (
            {
                "harness/store.py": "def f():\n    from harness import load\n",
                "harness/load.py": "from harness.store import f\n",
            },
            ["harness.load", "harness.store"],
        ),
        # a longer loop closed by an importlib string
        (
            {
                "harness/a.py": "import harness.b\n",
                "harness/b.py": "from harness import c\n",
                "harness/c.py": "import importlib\nimportlib.import_module('harness.a')\n",
            },
            ["harness.a", "harness.b", "harness.c"],
        ),
    ],
)
def test_an_import_cycle_is_reported(tmp_path: Path, extra: dict[str, str], cycle: list[str]) -> None:
    _write(tmp_path, CLEAN | extra)
    modules, edges = graph(tmp_path)
    assert cycles(modules, edges) == [cycle]


def test_every_layer_may_import_itself_and_the_table_is_closed() -> None:
    assert set(ALLOWED) == set(LAYERS)
    for layer, allowed in ALLOWED.items():
        assert layer in allowed and allowed <= set(LAYERS)
