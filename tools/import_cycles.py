#!/usr/bin/env python
# Usage: python tools/import_cycles.py src/mixtorch
"""Module-level import graph of src/mixtorch (imports at module top level, including
those under `if TYPE_CHECKING` are skipped) and its cycles."""
import ast, sys
from pathlib import Path

root = Path(sys.argv[1])
modules = {}
for path in root.rglob("*.py"):
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    modules[".".join(parts)] = (path, is_pkg)

def resolve(name, level, current, is_pkg):
    if level == 0:
        return name
    base = current.split(".")
    if not is_pkg:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))

graph = {}
lazy = []
for name, (path, is_pkg) in modules.items():
    deps = set()
    tree = ast.parse(path.read_text())
    for node in tree.body:  # module level only: function-level imports are lazy
        if isinstance(node, ast.If):
            continue  # TYPE_CHECKING blocks
        if isinstance(node, ast.ImportFrom):
            target = resolve(node.module or "", node.level, name, is_pkg)
            for alias in node.names:
                full = f"{target}.{alias.name}"
                deps.add(full if full in modules else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                deps.add(alias.name)
    for node in ast.walk(tree):  # imports of our own modules inside functions
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.level:
                    target = resolve(inner.module or "", inner.level, name, is_pkg)
                    lazy.append(f"{name}.{node.name} -> {target}")
                    deps.add(target)  # count them too: a lazy import can hide a cycle
    graph[name] = {d for d in deps if d in modules and d != name}

# package __init__ edges (importing a.b.c runs a/__init__, a/b/__init__) are not cycles
# of our making unless explicit; report strongly connected components > 1
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
    for w in graph[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in graph:
    if v not in index: strong(v)
print(f"{len(graph)} modules, {sum(map(len, graph.values()))} module-level imports")
print("cycles:", sccs or "none")
print("imports of mixtorch modules inside functions:", lazy or "none")
