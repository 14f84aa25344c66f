"""Read a CloudFormation/SAM template written in YAML, short intrinsic tags included.

``yaml.safe_load`` refuses ``!Ref``, ``!GetAtt``, ``!Sub`` and the other short forms. This loader turns each one
into the long form CloudFormation itself reads (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``), so the template tests
and the local stack see the same plain dicts and lists whichever form the template uses.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import yaml

__all__ = ["CloudFormationLoader", "load_template", "parse_template"]

_LONG_FORMS = {
    "!Ref": "Ref",
    "!Condition": "Condition",
    "!GetAtt": "Fn::GetAtt",
    "!Sub": "Fn::Sub",
    "!If": "Fn::If",
    "!Join": "Fn::Join",
    "!Equals": "Fn::Equals",
    "!Not": "Fn::Not",
    "!And": "Fn::And",
    "!Or": "Fn::Or",
    "!Select": "Fn::Select",
    "!Split": "Fn::Split",
    "!FindInMap": "Fn::FindInMap",
    "!Base64": "Fn::Base64",
    "!Cidr": "Fn::Cidr",
    "!GetAZs": "Fn::GetAZs",
    "!ImportValue": "Fn::ImportValue",
    "!Transform": "Fn::Transform",
    "!ToJsonString": "Fn::ToJsonString",
    "!Length": "Fn::Length",
}
"""Short tag to the key of its long form."""


class CloudFormationLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads CloudFormation's short intrinsic-function tags."""


def _construct_intrinsic(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    key = _LONG_FORMS[str(node.tag)]
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if key == "Fn::GetAtt":
            # ``!GetAtt Resource.Attribute``: the long form is a list; attributes may hold dots themselves.
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # the three node kinds above are all YAML has
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for {node.tag}", node.start_mark)
    return {key: value}


for _tag in _LONG_FORMS:
    CloudFormationLoader.add_constructor(_tag, _construct_intrinsic)


def parse_template(text: str) -> dict[str, Any]:
    """Parse a template's YAML text into plain dicts and lists (intrinsics in their long form).

    Raises:
        yaml.YAMLError: the text is not YAML, or uses a tag that is not a CloudFormation intrinsic.
        TypeError: the document is not a mapping.
    """
    document = yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict):
        raise TypeError(f"a template is a mapping, not {type(document).__name__}")
    return document


def load_template(path: str | PathLike[str]) -> dict[str, Any]:
    """Read and parse the template at ``path`` (see ``parse_template``).

    Raises:
        OSError: the file cannot be read.
        yaml.YAMLError: the file is not YAML, or uses a tag that is not a CloudFormation intrinsic.
        TypeError: the document is not a mapping.
    """
    return parse_template(Path(path).read_text(encoding="utf-8"))
