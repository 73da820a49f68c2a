"""YAML as `yaml.safe_load` reads it, except that a key given twice in one mapping is an error.

A leaf (it imports nothing of retrainer): the spec loader and the data contract both read YAML that a
person wrote, where a repeated key is a mistake rather than an override.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one YAML mapping."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping.

    PyYAML keeps the last of two equal keys without a word, so a second `evaluation:` block silently
    replaces the first (and its thresholds): a gate lost. Raising names both lines instead. Keys that a
    merge (`<<: *base`) brings in may be overridden: that is what a merge is for.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base loader reports it
                continue
            if first is not None:
                raise DuplicateKeyError(
                    None,
                    None,
                    f"duplicate key '{key}' on lines {first.start_mark.line + 1} and {key_node.start_mark.line + 1}"
                    " (the second would silently replace the first)",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """YAML as `yaml.safe_load` reads it, except that a key given twice in one mapping is an error."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
