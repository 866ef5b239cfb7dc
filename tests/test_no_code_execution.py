"""No code execution from input: nothing netsift reads reaches eval, exec or a deserializer.

An audit of the package's own source (its abstract syntax trees), so a later
change that adds ``eval`` on a filter expression, ``pickle`` for a cache or a
shell command built from a capture fails here.  Craft specs, configuration
files, display filters and captures are parsed by hand-written parsers and
``tomllib``/``json``; see docs/robustness.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import netsift

PACKAGE = Path(netsift.__file__).resolve().parent
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "execfile", "input"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "yaml", "jsonpickle"}
FORBIDDEN_ATTRS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"), ("subprocess", "getstatusoutput")}


def _sources() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 30  # the whole package, not an empty glob
    return files


def _problems(tree: ast.AST, name: str) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in FORBIDDEN_CALLS:
                problems.append(f"{where}: call to {f.id}()")
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                    and (f.value.id, f.attr) in FORBIDDEN_ATTRS:
                problems.append(f"{where}: {f.value.id}.{f.attr}()")
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    problems.append(f"{where}: subprocess with shell=")
        if isinstance(node, ast.Import):
            problems += [f"{where}: import {a.name}" for a in node.names
                         if a.name.split(".")[0] in FORBIDDEN_MODULES]
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in FORBIDDEN_MODULES:
            problems.append(f"{where}: from {node.module} import ...")
    return problems


#: Split runs (docs/scale.md) move their own state between their own processes with pickle:
#: workers pickle what they computed, and the parent unpickles it only in these functions,
#: from a worker's return value or from the spill files the run's workers wrote in a
#: directory the run created (mode 0700).  Nothing read from a capture or a file the user
#: names reaches them.
PICKLE_ALLOWED = {"parallel.py": {"_spilled", "_loads"}, "pipeline.py": set()}


def _pickle_loads_outside(tree: ast.AST, allowed: set[str]) -> list[str]:
    """Calls to pickle.load/loads in functions other than ``allowed``."""
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("load", "loads") and isinstance(node.func.value, ast.Name) \
                    and node.func.value.id == "pickle" and fn.name not in allowed:  # fmt: skip
                out.append(f"{fn.name}:{node.lineno}: pickle.{node.func.attr}")
    return out


def test_no_eval_exec_or_deserializers_in_the_package() -> None:
    problems = []
    for path in _sources():
        name = str(path.relative_to(PACKAGE))
        tree = ast.parse(path.read_text(), filename=str(path))
        found = _problems(tree, name)
        if name in PICKLE_ALLOWED:
            found = [p for p in found if not p.endswith(("import pickle", "from pickle import ..."))]
            found += [f"{name}: {p}" for p in _pickle_loads_outside(tree, PICKLE_ALLOWED[name])]
        problems += found
    assert problems == []


def test_split_runs_unpickle_only_their_own_state() -> None:
    """The allowance above is as narrow as it says: pickle is loaded where it is listed, and
    the audit of where it may be loaded catches a load elsewhere."""
    src = (PACKAGE / "parallel.py").read_text()
    assert "pickle.loads(" in src and "pickle.load(" in src
    bad = "import pickle\ndef read_capture(path):\n    return pickle.load(open(path, 'rb'))\n"
    assert _pickle_loads_outside(ast.parse(bad), PICKLE_ALLOWED["parallel.py"]) == ["read_capture:3: pickle.load"]


def test_the_audit_catches_what_it_looks_for() -> None:
    bad = ("import pickle\nfrom yaml import load\nimport os\neval('1')\nexec('1')\nos.system('x')\n"
           "import subprocess\nsubprocess.run('x', shell=True)\n")
    found = _problems(ast.parse(bad), "bad.py")
    assert len(found) == 6, found
