"""The stubs and the module agree, and docstrings are present."""

import ast
import pathlib

import semid
import semid._semid as ext

STUB = pathlib.Path(semid.__file__).with_name("_semid.pyi")


def stub_names():
    tree = ast.parse(STUB.read_text())
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("__")
            } | {
                n.target.id for n in node.body if isinstance(n, ast.AnnAssign)
            }
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = set()
    return names


def test_stubs_match_the_module():
    stubs = stub_names()
    public = {n for n in dir(ext) if not n.startswith("_")}
    assert set(stubs) == public
    for cls, members in stubs.items():
        obj = getattr(ext, cls)
        for m in members:
            assert hasattr(obj, m), f"{cls}.{m} is in the stubs, not in the module"
        if isinstance(obj, type) and obj is not ext.FormatError:
            real = {n for n in vars(obj) if not n.startswith("_")}
            assert real <= members, f"{cls}: {real - members} missing from the stubs"
    assert set(semid.__all__) == public | {"__version__"}


def test_docstrings():
    for name in dir(ext):
        if name.startswith("_"):
            continue
        obj = getattr(ext, name)
        assert obj.__doc__, name
        if isinstance(obj, type):
            for m, v in vars(obj).items():
                if not m.startswith("_") and callable(v):
                    assert v.__doc__, f"{name}.{m}"
