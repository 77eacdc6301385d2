"""Which libraries Python code imports, read from its syntax tree (nothing is run).

Used to check statically that pyproject.toml declares every library the package imports
and that each rule's conda environment provides what its script imports.
"""

import ast
import sys
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def module_file(name):
    """The source file of the mimicry module or package `name` (None if there is none)."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_level(tree):
    """The nodes that run when the module is imported: not those inside a function
    or class body (a library imported there is needed only when that code runs)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        yield node
        pending.extend(ast.iter_child_nodes(node))


def imported_names(path, package="", module_level=False):
    """Dotted names of the modules the file at path imports. `package`: the package
    relative imports start from; module_level: only imports run at import time.

    `from a import b` gives a, and a.b too when a.b is a mimicry module. An I/O
    library named as a string (xarray's and pandas' engine="h5netcdf") counts as
    imported, since the call imports it.
    """
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    nodes = _module_level(tree) if module_level else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(
                f"{base}.{alias.name}"
                for alias in node.names
                if module_file(f"{base}.{alias.name}")
            )
        elif isinstance(node, ast.keyword) and node.arg == "engine":
            if isinstance(node.value, ast.Constant) and node.value.value in (
                distributions()
            ):
                names.add(node.value.value)
    return names


def _package_of(name, path):
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def third_party(names):
    """The top-level names among names that are neither the standard library nor
    mimicry."""
    tops = {name.split(".")[0] for name in names}
    return {top for top in tops if top not in sys.stdlib_module_names} - {"mimicry"}


def package_imports():
    """Every module any file of the package imports, wherever in the file."""
    names = set()
    for path in (SRC / "mimicry").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        names |= imported_names(path, _package_of(name.removesuffix(".__init__"), path))
    return names


def script_imports(script):
    """The modules running script imports: its own imports and, transitively, the
    module-level imports of every mimicry module (and parent package) they load."""
    names = set()
    pending = [(Path(script), "")]
    seen = set()
    while pending:
        path, package = pending.pop()
        for name in imported_names(path, package, module_level=True):
            names.add(name)
            if name.split(".")[0] != "mimicry":
                continue
            parts = name.split(".")
            for end in range(1, len(parts) + 1):
                module = ".".join(parts[:end])
                source = module_file(module)
                if source is not None and module not in seen:
                    seen.add(module)
                    pending.append((source, _package_of(module, source)))
    return names


@cache
def distributions():
    """Import name -> names of the installed distributions that provide it."""
    return packages_distributions()
