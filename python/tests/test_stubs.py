"""The .pyi stubs cover the public API (so IDEs complete every name) and carry docstrings."""

import ast
import pathlib

import homefhe

STUB = pathlib.Path(homefhe.__file__).with_name("_homefhe.pyi")


def test_stub_covers_public_api():
    tree = ast.parse(STUB.read_text())
    assert ast.get_docstring(tree)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assigned = {t.target.id for t in tree.body if isinstance(t, ast.AnnAssign)}
    for name in homefhe.__all__:
        obj = getattr(homefhe, name)
        if isinstance(obj, type):
            assert name in classes, name
            assert ast.get_docstring(classes[name]), name
            stubbed = {n.name for n in classes[name].body if isinstance(n, ast.FunctionDef)}
            public = {m for m in vars(obj) if not m.startswith("_")}
            assert public <= stubbed, (name, sorted(public - stubbed))
        elif callable(obj):
            assert name in functions, name
        else:
            assert name in assigned, name
