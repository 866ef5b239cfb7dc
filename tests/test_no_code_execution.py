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


def test_no_eval_exec_or_deserializers_in_the_package() -> None:
    problems = []
    for path in _sources():
        problems += _problems(ast.parse(path.read_text(), filename=str(path)), str(path.relative_to(PACKAGE)))
    assert problems == []


def test_the_audit_catches_what_it_looks_for() -> None:
    bad = ("import pickle\nfrom yaml import load\nimport os\neval('1')\nexec('1')\nos.system('x')\n"
           "import subprocess\nsubprocess.run('x', shell=True)\n")
    found = _problems(ast.parse(bad), "bad.py")
    assert len(found) == 6, found
