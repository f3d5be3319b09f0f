"""Liveness and readiness.

``/health/live`` answers while the process runs; ``/health/ready`` only when every
dependency answers (the store and Kafka), so an orchestrator sends traffic to a replica
only when it can serve it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gala.errors import PROBLEM_JSON, problem

Check = Callable[[], Awaitable[bool]]

CHECK_TIMEOUT_SECONDS = 2.0


async def run_checks(checks: Mapping[str, Check]) -> dict[str, str]:
    async def one(check: Check) -> str:
        try:
            return "ok" if await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS) else "failing"
        except Exception:
            return "failing"

    results = await asyncio.gather(*(one(check) for check in checks.values()))
    return dict(zip(checks, results, strict=True))


def health_router() -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready", response_model=None)
    async def ready(request: Request) -> JSONResponse:
        checks: Mapping[str, Check] = request.app.state.readiness_checks
        results = await run_checks(checks)
        if all(result == "ok" for result in results.values()):
            return JSONResponse({"status": "ok", "checks": results})
        failing = ", ".join(name for name, result in results.items() if result != "ok")
        body = problem(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "not-ready",
            "Not ready",
            f"Failing: {failing}",
            checks=results,
        )
        return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON)

    return router
