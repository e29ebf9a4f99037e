"""`pmg serve`: the sticker workers as a Ray Serve application on the cluster at PMG_RAY_ADDRESS; with
--status, what its replicas are doing; with --down, the application removed."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from bot.cli_support import err, fail, load_settings, out
from bot.settings import Profile


def serve(
    profile: Annotated[Profile | None, typer.Option("--profile", help="offline, tiny or sd15.")] = None,
    status: Annotated[bool, typer.Option("--status", help="Print replicas, their state and queue.")] = False,
    down: Annotated[bool, typer.Option("--down", help="Remove the application from the cluster.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="--status as one JSON object.")] = False,
) -> None:
    """Deploy the sticker workers on the Ray cluster (PMG_RAY_ADDRESS); fronts reach them with
    PMG_BACKEND=ray."""
    settings = load_settings(profile)
    from bot.ray_backend import BackendUnavailable, join_cluster

    try:
        join_cluster(settings)
    except BackendUnavailable as error:
        fail(str(error))
    from ray import serve as ray_serve

    from bot.ray_deployment import cluster_status, deploy, deployment_options

    if down:
        ray_serve.delete(settings.ray_app)
        out.print(f"removed the application {settings.ray_app}", highlight=False)
        return
    if status:
        report = cluster_status(settings.ray_app)
        if as_json:
            out.print_json(json.dumps(report))
            return
        out.print(f"application {settings.ray_app}: {report['application']}", highlight=False)
        if "replicas" in report:
            out.print(f"replicas: {report['replicas']}", highlight=False)
        for replica, queue in dict(report.get("replica_queues", {})).items():  # type: ignore[call-overload]
            out.print(f"  {replica}: {queue}", highlight=False)
        return
    options = deployment_options(settings)
    err.print(
        f"deploying {settings.ray_app} (profile {settings.profile}, {options['ray_actor_options']}); "
        "each replica loads the models once, which takes a while",
        highlight=False,
    )
    try:
        deploy(settings)
    except Exception as error:  # Serve's DEPLOY_FAILED carries the replica's own error text
        fail(f"the deployment failed: {error}")
    out.print(
        f"{settings.ray_app} is running; start the fronts with PMG_BACKEND=ray "
        f"(status: pmg serve --status, remove: pmg serve --down)",
        highlight=False,
    )
