"""Write the JSON Schema of KServe's ServingRuntime and InferenceService, derived from the kserve
Python SDK's generated models (and the Kubernetes client models they use), for the offline
manifest test (tests/deploy/test_kserve.py).

The SDK's models are generated from KServe's OpenAPI spec: each class lists its fields
(``openapi_types``: type strings such as ``list[V1Container]``), their JSON names
(``attribute_map``) and, in the setters, the required ones. kserve 0.21.0 cannot be a dev
dependency (it pins python-dateutil < 3, we pin 4.0.0), so the schema is generated once in a
throwaway virtualenv and committed:

    python3 -m venv /tmp/kserve && /tmp/kserve/bin/pip install kserve==0.21.0
    /tmp/kserve/bin/python deploy/kserve/schema_from_sdk.py > deploy/kserve/kserve-0.21.0.schema.json

(`python -m bench.v2_vs_peers` leaves such a virtualenv in .bench/venvs/kserve-0.21.0.)
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from importlib.metadata import version
from typing import Any

import kubernetes.client.models as k8s
from kserve import models as kserve_models

ROOTS = {"ServingRuntime": "V1alpha1ServingRuntime", "InferenceService": "V1beta1InferenceService"}
PRIMITIVES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string"},
    "date": {"type": "string"},
    "bytes": {"type": "string"},
    "object": {},  # IntOrString, RawExtension: anything
    # Not model classes in the SDK: a Kubernetes quantity ("500m", "1Gi", 2) and a URL.
    "ResourceQuantity": {"type": ["string", "integer", "number"]},
    "KnativeURL": {"type": "string"},
}
K8S_FULL_NAME = re.compile(r"^K8sIoApi[A-Z][a-z]+(V\d+(?:alpha\d+|beta\d+)?[A-Z]\w*)$")
UNRESOLVED: list[str] = []
REQUIRED = re.compile(r"Invalid value for `(\w+)`, must not be `None`")


def model_class(name: str) -> type | None:
    found = getattr(kserve_models, name, None) or getattr(k8s, name, None)
    if found is None and name.startswith("V1alpha1"):
        # The 0.21.0 SDK names a type it does not ship (ServingRuntimeSpec.worker_spec:
        # V1alpha1WorkerSpec); the class it has is the v1beta1 one, the same Go type.
        found = getattr(kserve_models, name.replace("V1alpha1", "V1beta1", 1), None)
        print(f"note: {name} taken from {name.replace('V1alpha1', 'V1beta1', 1)}", file=sys.stderr)
    if found is None and (full := K8S_FULL_NAME.match(name)):
        # kserve names some Kubernetes types by their Go package (K8sIoApiAutoscalingV2...);
        # the client calls them by version and kind (V2HorizontalPodAutoscalerBehavior).
        found = getattr(k8s, full[1], None)
    return found  # type: ignore[no-any-return]


def type_schema(spec: str, definitions: dict[str, Any]) -> dict[str, Any]:
    if spec in PRIMITIVES:
        return PRIMITIVES[spec]
    # kserve's models spell containers list[X] and dict(str, X); the Kubernetes client's
    # (pydantic since client 35) List[X] and Dict[str, X].
    if spec.lower().startswith("list[") and spec.endswith("]"):
        return {"type": "array", "items": type_schema(spec[5:-1], definitions)}
    if spec.lower().startswith(("dict(", "dict[")) and spec.endswith((")", "]")):
        value = spec[5:-1].split(",", 1)[1].strip()
        return {"type": "object", "additionalProperties": type_schema(value, definitions)}
    add_definition(spec, definitions)
    return {"$ref": f"#/$defs/{spec}"}


def required_attributes(cls: type) -> list[str]:
    """Pydantic models (Kubernetes client) know their required fields; kserve's generated
    classes say it in each setter ("must not be `None`")."""
    fields = getattr(cls, "model_fields", None)
    if isinstance(fields, dict):
        return [name for name, field in fields.items() if field.is_required()]
    source = inspect.getsource(cls)
    return [attr for attr in REQUIRED.findall(source) if attr in cls.attribute_map]  # type: ignore[attr-defined]


def add_definition(name: str, definitions: dict[str, Any]) -> None:
    if name in definitions:
        return
    cls = model_class(name)
    if cls is None:
        # The SDK refers to a few types it does not ship (e.g. V1beta1MetricQuantity): left
        # open (any value) and listed in the schema's "unresolved".
        print(f"note: no class {name} in the SDK: any value accepted there", file=sys.stderr)
        definitions[name] = {"$comment": "not in the SDK: unchecked"}
        UNRESOLVED.append(name)
        return
    definitions[name] = {}  # reserved before recursing: the models refer to each other
    required = sorted(cls.attribute_map[attr] for attr in required_attributes(cls))
    properties = {
        cls.attribute_map[attr]: type_schema(spec, definitions)
        for attr, spec in cls.openapi_types.items()
    }
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    definitions[name] = schema


def main() -> int:
    definitions: dict[str, Any] = {}
    kinds = {}
    for kind, root in ROOTS.items():
        kinds[kind] = {"$ref": f"#/$defs/{root}"}
        add_definition(root, definitions)
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "Generated by deploy/kserve/schema_from_sdk.py from the models of kserve "
        f"{version('kserve')} and kubernetes {version('kubernetes')} (Python SDKs)",
        "kinds": kinds,
        "unresolved": sorted(UNRESOLVED),
        "$defs": dict(sorted(definitions.items())),
    }
    json.dump(document, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
