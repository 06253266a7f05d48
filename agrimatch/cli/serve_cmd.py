"""``agrimatch serve``: the HTTP API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from agrimatch.cli.common import settings_or_exit, setup_logging


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default AGRIMATCH_API_HOST)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to bind (default AGRIMATCH_API_PORT)")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve the HTTP API (/v1, /healthz, /readyz, /metrics) until SIGINT/SIGTERM.

    The store is InfluxDB when AGRIMATCH_INFLUX_URL is set, else the embedded
    store in AGRIMATCH_DATA_DIR; device configs are published to
    AGRIMATCH_MQTT_URL when it is set. Keys: `agrimatch keys create`.
    """
    # Imported here: the other commands never load the web stack.
    import uvicorn

    from api import create_app

    setup_logging(verbose, plain=True)
    settings = settings_or_exit()
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        # Our logging (rich, on stderr) instead of uvicorn's own config; its
        # access log names method, path and status, never a header or key.
        log_config=None,
        log_level="debug" if verbose else "info",
        server_header=False,
    )
