"""YAML from files that may come from someone else: bounded before anything is built.

PyYAML's safe loader runs no code, but it expands aliases (a few hundred bytes of "billion
laughs" become gigabytes) and recurses on nesting. Here the document is composed into its
node graph first (aliases stay shared nodes, nothing expanded), the graph's expanded size
and depth are counted with memoisation, and only a document within the bounds is built.
Pure Python (no torch, no Qt).
"""
from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 4 * 1024 * 1024      # a configuration or sweep file is a few kilobytes
MAX_NODES = 200_000              # scalars, lists and mappings after alias expansion
MAX_DEPTH = 64                   # nesting levels


class YamlLimitError(yaml.YAMLError):
    """The document is over a size, alias-expansion or depth bound (the message says which)."""


def load(text: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """The document in ``text``, built only when it fits the bounds. Raises yaml.YAMLError
    (YamlLimitError for a bound), never RecursionError or MemoryError from the reader."""
    if len(text) > MAX_BYTES:
        raise YamlLimitError(f"the file is {len(text):,} characters; at most {MAX_BYTES:,} are read")
    ld = loader(text)
    try:
        try:
            node = ld.get_single_node()
        except RecursionError:
            raise YamlLimitError(f"nested too deeply (more than {MAX_DEPTH} levels)") from None
        if node is None:
            return None
        _check(node)
        try:
            return ld.construct_document(node)
        except TypeError as exc:         # e.g. a list or mapping used as a key
            raise yaml.constructor.ConstructorError(None, None, f"unusable key: {exc}") from None
        except ValueError as exc:        # e.g. an integer over Python's 4,300-digit limit
            raise YamlLimitError(str(exc)) from None
    finally:
        ld.dispose()


def _check(root: yaml.Node) -> None:
    sizes: dict[int, int] = {}
    expanded = _size(root, 0, sizes)
    if expanded > MAX_NODES:
        raise YamlLimitError(f"the document expands to {expanded:,} values through aliases; at most "
                             f"{MAX_NODES:,} are allowed (an alias bomb?)")


def _size(node: yaml.Node, depth: int, sizes: dict[int, int]) -> int:
    """Values ``node`` stands for with every alias expanded (memoised per shared node)."""
    if depth > MAX_DEPTH:
        raise YamlLimitError(f"nested too deeply (more than {MAX_DEPTH} levels)")
    key = id(node)
    if key in sizes:
        return sizes[key]
    sizes[key] = MAX_NODES + 1          # a node reached again while counting it: a cycle
    if isinstance(node, yaml.MappingNode):
        n = 1 + sum(_size(k, depth + 1, sizes) + _size(v, depth + 1, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_size(v, depth + 1, sizes) for v in node.value)
    else:
        n = 1
    n = min(n, MAX_NODES + 1)           # the count itself stays small
    sizes[key] = n
    return n
