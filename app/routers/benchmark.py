from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from app.benchmarking import MAX_BATCH_SIZE, MAX_ITERATIONS, BenchmarkBusy, measure
from app.dependencies import get_registry, get_settings
from app.errors import documented, invalid, shown
from app.registry import Registry
from app.schemas import BenchmarkResponse, VariantBenchmark
from app.settings import Settings

router = APIRouter(tags=["benchmark"])
RETRY_AFTER_SECONDS = 5


@router.get(
    "/benchmark",
    response_model=BenchmarkResponse,
    responses={
        **documented(403, "the benchmark is disabled (BENCHMARK_ENABLED=false)"),
        **documented(
            429,
            "a benchmark is already running",
            headers={"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
        ),
    },
)
def benchmark(
    registry: Annotated[Registry, Depends(get_registry)],
    settings: Annotated[Settings, Depends(get_settings)],
    variants: Annotated[str | None, Query(description="comma-separated names; default every loaded variant")] = None,
    iterations: Annotated[int, Query(ge=10, le=MAX_ITERATIONS, description="single-window calls per variant")] = 200,
    batch_size: Annotated[int, Query(ge=1, le=MAX_BATCH_SIZE, description="windows per batch call")] = 1000,
) -> BenchmarkResponse:
    """Latency of each variant measured now, in this process, beside its sizes and accuracy.

    Single-window and batch latency (p50/p95/p99 in µs) and forecasts per second, with the same
    onnxruntime thread settings as serving. One benchmark at a time: a concurrent call gets 429.
    """
    if not settings.benchmark_enabled:
        raise HTTPException(403, "the benchmark endpoint is disabled (BENCHMARK_ENABLED=false)")
    # exactly the language of the pattern /openapi.json gives for `variants` (app.openapi)
    names = sorted(registry.loaded) if variants is None else [n.strip(" ") for n in variants.split(",")]
    unknown = [n for n in names if n not in registry.loaded]
    if unknown:
        listed = ", ".join(repr(shown(n)) for n in unknown[:3])  # the client's text, bounded
        if len(unknown) > 3:
            listed += f" and {len(unknown) - 3} more"
        raise invalid(
            ("query", "variants"),
            f"unknown or unavailable variant(s) {listed}; expected comma-separated names of loaded variants: "
            f"{', '.join(sorted(registry.loaded))}",
            "value_error",
        )
    names = list(dict.fromkeys(names))  # in the order given, each once
    try:
        measured = measure({n: registry.loaded[n].forecaster for n in names}, iterations, batch_size)
    except BenchmarkBusy:
        raise HTTPException(
            429, "a benchmark is already running; retry later", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        ) from None
    results = []
    for name in names:
        meta = registry.variants[name].metadata
        results.append(
            VariantBenchmark(
                variant=name,
                technique=meta.get("technique"),
                size=meta.get("size", {}),
                mape=meta.get("metrics", {}).get("mape"),
                **measured[name],
            )
        )
    threads = {"intra_op": settings.ort_intra_op_threads, "inter_op": settings.ort_inter_op_threads}
    return BenchmarkResponse(iterations=iterations, batch_size=batch_size, threads=threads, results=results)
