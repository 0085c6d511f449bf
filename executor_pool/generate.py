"""`executor-pool compose` (or `python generate_compose.py`): the deployment's files for a pool.

It takes the flags of the original deployment's ``generate_compose.py`` (long and short forms)
and writes, by ``--format``, a compose file (the original layout), a swarm stack or Kubernetes
manifests, with ``container_config.json`` for the manager. The documents are built by
``compose.py`` and ``kubernetes.py``; this module parses the flags and writes the files.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from pathlib import Path

from .compose import (
    EXECUTOR_TOKEN_FILE,
    MANAGER_PORT,
    NETWORK_BASE,
    OUTPUTS,
    TOKEN_FILE,
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
    parser.add_argument(
        "-p", "--start-port", type=int, default=None,
        help="ignored: executors publish no port, the manager is their only way in (kept for the original's commands)",
    )  # fmt: skip
    parser.add_argument("-o", "--output", default=None, help=f"default: {', '.join(OUTPUTS.values())} by --format")
    parser.add_argument("--format", choices=list(OUTPUTS), default="compose", help="what to write (default compose)")
    parser.add_argument("-m", "--mountable-volumes", default=None, help="workspace folder, mounted read-only at /data")
    parser.add_argument("-s", "--mountable-volume-saveto", default=None, help="folder for writable /submission dirs")
    parser.add_argument("-e", "--env", default="", help="KEY=VALUE,... (MEM_LIMIT, CPUS, MEM_RESERVATION: limits)")
    parser.add_argument("-g", "--gpu-ids", default="", help="GPU ids, one per container")
    parser.add_argument("-c", "--config-file", default=None, help="container_config.json (default: beside -o)")
    parser.add_argument("--image", action="append", default=[], metavar="TYPE=IMAGE", help="image of a type")
    parser.add_argument("--manager-image", default=Deployment.manager_image)
    parser.add_argument("--host-ip", default="127.0.0.1", help="interface the manager's port is published on")
    parser.add_argument(
        "--allow-outbound",
        default="",
        metavar="TYPE,...",
        help="types whose executors may open connections outside the pool (default: none); the host, and "
        "what it publishes on its other addresses, is outside the pool",
    )
    parser.add_argument(
        "--recycle",
        default="",
        metavar="TYPE,...",
        help="types whose executors are replaced between users, not restarted: a new container (compose, "
        "through the Engine API, whose socket the manager is given) or pod (kubernetes); default: none",
    )
    parser.add_argument(
        "--network-base",
        default=NETWORK_BASE,
        help=f"compose: addresses for the executors' networks, a /28 each (default {NETWORK_BASE})",
    )
    parser.add_argument(
        "--workspace-claim",
        default=None,
        help="kubernetes: a volume claim holding the workspace, instead of a ConfigMap",
    )
    parser.add_argument(
        "--lease",
        type=float,
        default=None,
        metavar="S",
        help="seconds an allocation lasts without a call to its session; then the manager frees it "
        "(default: until /deallocate)",
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
            workspace=str(Path(args.mountable_volumes).resolve()) if args.mountable_volumes else None,
            submission=str(Path(args.mountable_volume_saveto).resolve()) if args.mountable_volume_saveto else None,
            env=parse_env(args.env),
            gpu_ids=[g.strip() for g in args.gpu_ids.split(",") if g.strip()],
            images=images,
            manager_image=args.manager_image,
            host_ip=args.host_ip,
            config_file=config_path.name,
            outbound=_type_set(args.allow_outbound),
            recycle=_type_set(args.recycle),
            network_base=args.network_base,
            lease=args.lease,
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
    if args.start_port is not None:
        print("executor-pool compose: --start-port ignored: executors publish no port, the manager is their way in")
    output.write_text(yaml_text(documents), encoding="utf-8")
    token_path, executor_token_path = output.with_name(TOKEN_FILE), output.with_name(EXECUTOR_TOKEN_FILE)
    token = _new_token(token_path)
    _new_token(executor_token_path)  # the manager's and the executors' alone: never shown
    if args.format == "kubernetes":
        kinds = ", ".join(sorted({str(d["kind"]) for d in documents}))
        print(f"wrote {output} ({deployment.size} executors; {len(documents)} objects: {kinds})")
        print(f"make the manager's Secret, then apply: kubectl create secret generic executor-manager "
              f"--from-file=token={token_path} --from-file=executor-token={executor_token_path} "
              f"&& kubectl apply -f {output}")  # fmt: skip
    else:
        config_path.write_text(json.dumps(container_config(deployment), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {output} ({deployment.size} executors, manager on port {MANAGER_PORT}) and {config_path}")
    _say_token(token_path, token)
    print(f"the executors' token, in {executor_token_path} (mode 0600): for the manager alone, which sends it")
    return 0


def _type_set(text: str) -> frozenset[str]:
    """``TYPE,...`` as a set of type names."""
    return frozenset(filter(None, (kind.strip() for kind in text.split(","))))


def _new_token(path: Path) -> str | None:
    """A new manager token in ``path`` (mode 0600), unless one is there already (None then): the
    pool is never generated without one, and one already in use is never replaced."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    token = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    return token


def _say_token(path: Path, token: str | None) -> None:
    """How to use the manager's token; the token itself, once, when it was just made."""
    if token is None:
        print(f"the manager's token: {path} (kept as it was)")
        return
    print(f"the manager's token, in {path} (mode 0600), shown this once: {token}")
    print(f'every /allocate, /status and /deallocate needs it: -H "Authorization: Bearer $(cat {path})"')
