"""The house rules of ARCHITECTURE.md, read from the source with `ast`.

Rooms of one job: no module over 400 lines, no function over 60 lines of code,
no public function with over 10 parameters, no import cycle, and Keras'
functional-graph internals read only in `keras_vs/graph`. Each rule is one
test over every module of the three packages users import.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("keras_vs", "zoo", "tuner")
MAX_MODULE_LINES = 400
MAX_FUNCTION_CODE_LINES = 60
MAX_PUBLIC_PARAMETERS = 10
GRAPH_PACKAGE = "keras_vs/graph/"
# Attributes of Keras' Node/KerasTensor/Functional internals: only the graph core reads them.
GRAPH_INTERNALS = frozenset({
    "_inbound_nodes", "_outbound_nodes", "_keras_history", "_nodes_by_depth", "parent_nodes",
    "_flatten_layers", "_functional", "_inputs_struct", "_outputs_struct", "keras_tensors",
    "operation", "arguments",  # Node.operation, Node.arguments
})


def _modules():
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _name(path):
    return path.relative_to(ROOT).as_posix()


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _functions(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _code_lines(lines, fn):
    """Lines of a function that are neither blank, comments nor its docstring."""
    skip = set()
    first = fn.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        skip = set(range(first.lineno, first.end_lineno + 1))
    return sum(
        1 for i in range(fn.lineno, fn.end_lineno + 1)
        if i not in skip and lines[i - 1].strip() and not lines[i - 1].strip().startswith("#")
    )


def _parameters(fn):
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
    return names + [v.arg for v in (a.vararg, a.kwarg) if v is not None]


def _imports(path, tree):
    """Every keras_vs/zoo/tuner module this module imports, at any depth (lazy ones too)."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def test_the_rules_see_every_module():
    assert len(_modules()) > 50  # a moved package root would make every rule pass vacuously


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_module_has_at_most_400_lines(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE_LINES, f"{_name(path)} has {n} lines"


def test_functions_have_at_most_60_lines_of_code():
    long = []
    for path in _modules():
        lines = path.read_text().splitlines()
        for fn in _functions(ast.parse("\n".join(lines))):
            n = _code_lines(lines, fn)
            if n > MAX_FUNCTION_CODE_LINES:
                long.append(f"{_name(path)}:{fn.lineno} {fn.name} ({n} lines of code)")
    assert not long, long


def test_public_functions_take_at_most_10_parameters():
    many = []
    for path in _modules():
        for fn in _functions(ast.parse(path.read_text())):
            public = not fn.name.startswith("_") or fn.name == "__init__"
            n = len(_parameters(fn))
            if public and n > MAX_PUBLIC_PARAMETERS:
                many.append(f"{_name(path)}:{fn.lineno} {fn.name} ({n} parameters)")
    assert not many, many


def test_keras_internals_are_read_only_in_the_graph_package():
    reads = []
    for path in _modules():
        if _name(path).startswith(GRAPH_PACKAGE):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in GRAPH_INTERNALS:
                reads.append(f"{_name(path)}:{node.lineno} .{node.attr}")
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(m == "keras.src" or m.startswith("keras.src.") for m in modules):
                reads.append(f"{_name(path)}:{node.lineno} import keras.src")
    assert not reads, reads


def test_no_import_cycle():
    paths = {_module_name(p): p for p in _modules()}
    graph = {}
    for name, path in paths.items():
        # `import a.b.c` also runs a/__init__ and a/b/__init__, which are not edges of a cycle
        # made by this module's own code: keep only the deepest module each import names.
        graph[name] = {m for m in _imports(path, ast.parse(path.read_text())) if m in paths} - {name}
    graph = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in graph.items()}
    # Tarjan's strongly connected components: a component of more than one module is a cycle.
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles
