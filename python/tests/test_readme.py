"""The README's first example runs as written (it once needed an items.npy
that nothing made)."""
import pathlib
import re


def test_readme_example_runs_as_written(capsys):
    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    block = re.search(r"```python\n(.*?)```", readme.read_text(), re.S).group(1)
    exec(compile(block, str(readme), "exec"), {})
    out = capsys.readouterr().out.split()
    assert len(out) >= 2, out

