"""The OpenAPI document also states the limits known only at startup, so clients and fuzzers can see them.

Which variants exist (GET /models/{name}) and which are loaded (GET /benchmark?variants=) depends on the
models folder, and the series a batch may hold on MAX_BATCH_SERIES: all are patched into the generated
document once, when it is first asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI

from app.registry import Registry
from app.settings import Settings


def variant_list_pattern(names: Iterable[str]) -> str:
    """A regex for "name,name,...": loaded names only, spaces allowed around each (what GET /benchmark accepts)."""
    # names are [a-z0-9_.-] (app.registry): only the dot needs escaping, in Python and ECMA regexes alike
    name = " *(?:" + "|".join(n.replace(".", r"\.") for n in sorted(names, key=len, reverse=True)) + ") *"
    return f"^{name}(?:,{name})*$"


def _parameter_schemas(document: dict[str, Any], path: str, name: str) -> list[dict[str, Any]]:
    """The string schemas of one GET parameter (`str | None` is anyOf [string, null])."""
    for parameter in document["paths"].get(path, {}).get("get", {}).get("parameters", []):
        if parameter["name"] == name:
            options = parameter["schema"].get("anyOf", [parameter["schema"]])
            return [option for option in options if option.get("type") == "string"]
    return []


def _patch(document: dict[str, Any], registry: Registry, settings: Settings) -> None:
    components = document.get("components", {}).get("schemas", {})
    batch = components.get("BatchRequest", {}).get("properties", {}).get("series")
    if batch is not None:
        batch["maxItems"] = settings.max_batch_series
    for schema in _parameter_schemas(document, "/models/{name}", "name"):
        schema["enum"] = sorted(registry.variants)
    for schema in _parameter_schemas(document, "/benchmark", "variants"):
        schema["pattern"] = variant_list_pattern(registry.loaded)


def install(app: FastAPI, registry: Registry, settings: Settings) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _patch(generate(), registry, settings)  # FastAPI caches the document it returns
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
