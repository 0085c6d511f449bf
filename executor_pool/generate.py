"""`executor-pool compose` (or `python generate_compose.py`): the deployment's files for a pool.

It takes the flags of the original deployment's ``generate_compose.py`` (long and short forms)
and writes, by ``--format``, a compose file (the original layout), a swarm stack or Kubernetes
manifests, with ``container_config.json`` for the manager. The documents are built by
``compose.py`` and ``kubernetes.py``; this module parses the flags and writes the files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .compose import (
    MANAGER_PORT,
    OUTPUTS,
    ComposeError,
    Deployment,
    compose_document,
    container_config,
    parse_env,
    parse_types,
    swarm_document,
    yaml_text,
)
from .kubernetes import kubernetes_documents

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="executor-pool compose", description="Write a docker compose file for a pool of executors."
    )
    parser.add_argument("-n", "--num-containers", type=int, required=True)
    parser.add_argument("-t", "--types", required=True, help="NAME:COUNT,... (counts add up to -n)")
    parser.add_argument("-p", "--start-port", type=int, default=60000)
    parser.add_argument("-o", "--output", default=None, help=f"default: {', '.join(OUTPUTS.values())} by --format")
    parser.add_argument("--format", choices=list(OUTPUTS), default="compose", help="what to write (default compose)")
    parser.add_argument("-m", "--mountable-volumes", default=None, help="workspace folder, mounted read-only at /data")
    parser.add_argument("-s", "--mountable-volume-saveto", default=None, help="folder for writable /submission dirs")
    parser.add_argument("-e", "--env", default="", help="KEY=VALUE,... (MEM_LIMIT, CPUS, MEM_RESERVATION: limits)")
    parser.add_argument("-g", "--gpu-ids", default="", help="GPU ids, one per container")
    parser.add_argument("-c", "--config-file", default=None, help="container_config.json (default: beside -o)")
    parser.add_argument("--image", action="append", default=[], metavar="TYPE=IMAGE", help="image of a type")
    parser.add_argument("--manager-image", default=Deployment.manager_image)
    parser.add_argument("--host-ip", default="127.0.0.1", help="interface the ports are published on")
    parser.add_argument(
        "--workspace-claim",
        default=None,
        help="kubernetes: a volume claim holding the workspace, instead of a ConfigMap",
    )
    parser.add_argument("--store", default=None, help="swarm, kubernetes: the managers' shared store (redis://...)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    output = Path(args.output or OUTPUTS[args.format])
    config_path = Path(args.config_file) if args.config_file else output.with_name("container_config.json")
    try:
        if args.num_containers < 1:
            raise ComposeError("--num-containers must be at least 1")
        images = parse_env(",".join(args.image))
        deployment = Deployment(
            types=parse_types(args.types, args.num_containers),
            start_port=args.start_port,
            workspace=str(Path(args.mountable_volumes).resolve()) if args.mountable_volumes else None,
            submission=str(Path(args.mountable_volume_saveto).resolve()) if args.mountable_volume_saveto else None,
            env=parse_env(args.env),
            gpu_ids=[g.strip() for g in args.gpu_ids.split(",") if g.strip()],
            images=images,
            manager_image=args.manager_image,
            host_ip=args.host_ip,
            config_file=config_path.name,
        )
        if args.format == "kubernetes":
            documents = kubernetes_documents(deployment, workspace_claim=args.workspace_claim, store=args.store)
        elif args.format == "swarm":
            documents = [swarm_document(deployment, store=args.store)]
        else:
            documents = [compose_document(deployment)]
    except (ComposeError, OSError) as exc:
        print(f"executor-pool compose: {exc}")
        return 2
    output.write_text(yaml_text(documents), encoding="utf-8")
    if args.format == "kubernetes":
        kinds = ", ".join(sorted({str(d["kind"]) for d in documents}))
        print(f"wrote {output} ({deployment.size} executors; {len(documents)} objects: {kinds}); kubectl apply -f it")
        return 0
    config_path.write_text(json.dumps(container_config(deployment), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output} ({deployment.size} executors, manager on port {MANAGER_PORT}) and {config_path}")
    return 0
