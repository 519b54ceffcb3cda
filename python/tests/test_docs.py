"""The examples in the package docstring and python/README.md run and print what they say."""

import contextlib
import io
import pathlib
import re

import homefhe

HERE = pathlib.Path(__file__).resolve().parents[1]


def run(code):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "example", "exec"), {})
    return out.getvalue()


def test_package_docstring_tour():
    doc = homefhe.__doc__
    block = doc[doc.index("Quick tour::") + len("Quick tour::"):doc.index("Models:")]
    code = "\n".join(l[4:] for l in block.splitlines())
    out = run(code)
    nums = [float(v) for v in re.findall(r"-?\d+\.\d*", out)]
    assert [round(v, 3) for v in nums] == [3.5, 5.5, 7.5, 9.5, 10.0], out


def test_package_readme_example():
    text = (HERE / "README.md").read_text()
    code = text[text.index("```python\n") + 10:text.index("```", text.index("```python\n") + 10)]
    out = run(code)
    nums = [float(v) for v in re.findall(r"-?\d+\.\d*", out)]
    assert [round(v, 3) for v in nums] == [5.5, 10.5, 1.5], out
