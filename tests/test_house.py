"""The house rules that a reader can check by counting: small files, short
functions, and imports of the package that name its modules.

Limits: a Python file under mfrec/ has at most 500 lines, a C file under
csrc/core/ or csrc/python/ at most 800; a function (Python in mfrec/, C in
those folders) at most 80 lines, from its first line to its last, a Python
docstring not counted (it is documentation, not code to read through).
"""
import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PY_FILES = sorted((ROOT / "mfrec").rglob("*.py"))
C_FILES = sorted(p for folder in ("csrc/core", "csrc/python")
                 for p in (ROOT / folder).glob("*.[ch]"))
MAX_PY_FILE, MAX_C_FILE, MAX_FUNCTION = 500, 800, 80


def lines(path: pathlib.Path) -> int:
    return len(path.read_text().splitlines())


def python_functions(source: str):
    """(name, first line, lines without the docstring) of every function."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                n -= first.end_lineno - first.lineno + 1
            yield node.name, node.lineno, n


def _blank(match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def c_functions(source: str):
    """(name, first line, lines) of every function definition in C source:
    comments, strings and preprocessor lines blanked out, a brace at depth 0
    after a closing parenthesis opens a function body; the function starts
    where its declaration does (after the previous ';' or '}' at depth 0)."""
    text = re.sub(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'",
                  _blank, source, flags=re.S)
    text = re.sub(r"(?m)^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", _blank, text)
    depth, start, current = 0, 0, None
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                head = text[start:i]
                names = re.findall(r"(\w+)\s*\(", head)
                current = ((names[0] if names else "?", start + len(head) - len(head.lstrip()))
                           if head.rstrip().endswith(")") else None)
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                if current is not None:
                    first = text.count("\n", 0, current[1]) + 1
                    yield current[0], first, text.count("\n", 0, i) + 2 - first
                start = i + 1
        elif ch == ";" and depth == 0:
            start = i + 1


def test_the_scanners_measure():
    """The scanners find functions and count their lines as a reader would."""
    py = 'def f(x):\n    """Doc\n    string."""\n    y = x\n    return y\n\n\ndef g():\n    pass\n'
    assert list(python_functions(py)) == [("f", 1, 3), ("g", 8, 2)]
    c = ('#include <a.h>\n/* { not code } */\nstatic const int t[] = {1, 2};\n'
         'struct s { int a; };\n'
         'static int\nadd(int a,\n    int b)\n{\n    const char *s = "}";\n'
         '    if (a) {\n        return \'{\';\n    }\n    return a + b;\n}\n')
    assert list(c_functions(c)) == [("add", 5, 10)]


@pytest.mark.parametrize("path", PY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_file_size(path):
    assert lines(path) <= MAX_PY_FILE, f"{path.relative_to(ROOT)}: split it into modules"


@pytest.mark.parametrize("path", C_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_c_file_size(path):
    assert lines(path) <= MAX_C_FILE, f"{path.relative_to(ROOT)}: split it by capability"


def test_python_function_length():
    long = [f"{p.relative_to(ROOT)}:{line} {name} ({n} lines)"
            for p in PY_FILES for name, line, n in python_functions(p.read_text())
            if n > MAX_FUNCTION]
    assert not long, long


def test_c_function_length():
    found = [(p, f) for p in C_FILES for f in c_functions(p.read_text())]
    assert len(found) > 100  # the scanner sees the core's functions
    long = [f"{p.relative_to(ROOT)}:{line} {name} ({n} lines)"
            for p, (name, line, n) in found if n > MAX_FUNCTION]
    assert not long, long


def test_package_imports_name_modules():
    """`from . import X` inside mfrec imports a module, never a name that
    mfrec/__init__.py re-exports: such an import would point up, and the
    import-linter contract (pyproject.toml), which reads an import of the
    compiled mfrec._core as one of the package, cannot tell them apart."""
    modules = {p.stem for p in (ROOT / "mfrec").iterdir()
               if p.suffix in (".py", ".pyi") or (p / "__init__.py").exists()}
    bad = []
    for path in PY_FILES:
        package_depth = len(path.relative_to(ROOT / "mfrec").parts)  # 1: mfrec/x.py
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module is None \
                    and node.level == package_depth:
                bad += [f"{path.relative_to(ROOT)}:{node.lineno} {a.name}"
                        for a in node.names if a.name not in modules]
    assert not bad, bad
