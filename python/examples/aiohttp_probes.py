"""Kubernetes probes and the JSON Check on an aiohttp host's own HTTP server.

One catch-all route hands every request to ``dubbo_health.Probes.answer``: ``GET /live``,
``/ready`` (``""`` of the registry), ``/startup``, ``/ready?service=NAME`` and
``POST /grpc.health.v1.Health/Check`` with JSON, all from the same registry a gRPC server
(grpcio, or ``dubbo_health.serve``) answers from.

    python examples/aiohttp_probes.py --port 8080
    curl -f http://127.0.0.1:8080/ready
"""

from __future__ import annotations

import argparse

from aiohttp import web

import dubbo_health


def make_app(probes: dubbo_health.Probes) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        status, headers, answer = probes.answer(
            request.method, request.path, request.query_string, request.headers.items(), body
        )
        response = web.Response(status=status, body=answer)
        for name, value in headers:
            if name != "content-length":  # aiohttp sets it from the body
                response.headers[name] = value
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    registry = dubbo_health.Registry()
    probes = dubbo_health.Probes(registry, started=True)
    web.run_app(make_app(probes), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
