"""One Starlette route per path, whatever methods it serves.

Starlette answers a method a path does not serve from the FIRST route with that path, so two
routes ``GET /api/v1/deploys`` and ``POST /api/v1/deploys`` made ``PUT`` say ``Allow: POST``.
Merged, the ``405`` lists every method served there (RFC 9110, 15.5.6: "The origin server MUST
generate an Allow header field in a 405 response containing a list of the target resource's
currently supported methods").
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route


def _dispatcher(handlers: dict[str, object]):
    async def dispatch(request: Request):
        method = "GET" if request.method == "HEAD" and "HEAD" not in handlers else request.method
        return await handlers[method](request)

    return dispatch


def one_route_per_path(routes: list[Route]) -> list[Route]:
    """``routes`` with those sharing a path merged into one route serving all their methods."""
    by_path: dict[str, dict[str, object]] = {}
    order: list[str] = []
    for route in routes:
        if route.path not in by_path:
            by_path[route.path] = {}
            order.append(route.path)
        for method in route.methods or ("GET",):
            if method == "HEAD" and "HEAD" in by_path[route.path]:
                continue
            by_path[route.path][method] = route.endpoint
    out = []
    for path in order:
        handlers = by_path[path]
        methods = sorted(m for m in handlers if m != "HEAD")
        first = next(r for r in routes if r.path == path)
        out.append(first if len(methods) == 1 else Route(path, _dispatcher(handlers), methods=methods, name=first.name))
    return out
