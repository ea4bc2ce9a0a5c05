"""Ray for `datakit mix build --executor ray`: connect the build to a Ray cluster for datatrove's RayPipelineExecutor.

Where: RAY_ADDRESS (`<head-ip>:6379`, or `local` for a private single-machine cluster that lives as long as the
build), else a cluster started on this machine with `ray start --head`. The build never starts a cluster by
surprise: with none reachable it stops with the fix. Ray's tasks run the pipeline steps on the cluster's nodes;
the output folder must be on a filesystem every node sees at the same path (docs/scale-out.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket

from datakit.errors import UserError

FIX = ("start one on this machine (`ray start --head`), or point RAY_ADDRESS at a running head (`<head-ip>:6379`); "
       "RAY_ADDRESS=local runs a private cluster on this machine for the build")


def _reachable(address: str, timeout_s: float = 5.0) -> bool:
    if address == "auto":
        return True
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def _head_address(address: str) -> str | None:
    """host:port of the head `address` names ("auto": the last cluster `ray start` recorded on this machine),
    None when there is none."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # Ray moved it: let ray.init find out
        return address if address != "auto" else "auto"
    try:
        return canonicalize_bootstrap_address_or_die(address)
    except (ConnectionError, ValueError):
        return None


@contextlib.contextmanager
def ray_cluster(verbose: bool = False):
    """Connected to the cluster for the duration of the block (a `local` one is shut down afterwards)."""
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray, which is not installed", field="--executor",
                        fix="pip install 'datakit[ray]' (or use --executor local|slurm)") from None
    if ray.is_initialized():  # a caller (a notebook, a test) connected already: use that cluster
        yield
        return
    address = os.environ.get("RAY_ADDRESS") or "auto"
    where = f"at RAY_ADDRESS={address}" if address != "auto" else "on this machine (no RAY_ADDRESS set)"
    if address != "local" and "://" not in address:
        head = _head_address(address)  # what ray.init would dial; it retries a dead one for minutes
        if head is None or not _reachable(head):
            raise UserError(f"no Ray cluster answers {where}" + (f" (tried {head})" if head and head != address else ""),
                            field="--executor", fix=FIX)
    try:
        ray.init(address=address, log_to_driver=verbose, logging_level=logging.INFO if verbose else logging.WARNING,
                 runtime_env={"env_vars": {WORKDIR_ENV: os.getcwd()}, "worker_process_setup_hook": f"{__name__}.enter_workdir"})
    except Exception as e:  # ConnectionError (none found), AuthenticationError (token), RuntimeError (GCS)
        chain, cause = [], e
        while cause is not None:
            chain.append(f"{type(cause).__name__}: {cause}")
            cause = cause.__cause__ or cause.__context__
        text = "\n".join(chain)
        if "Authentication" in text or "auth_token" in text.lower():
            raise UserError(f"the Ray cluster {where} wants an authentication token", field="--executor",
                            fix="export RAY_AUTH_MODE=token, with the head's token in ~/.ray/auth_token or RAY_AUTH_TOKEN") from None
        if isinstance(e, ConnectionError) or "connect" in text.lower():
            raise UserError(f"no Ray cluster reachable {where} ({str(e).splitlines()[0][:160]})", field="--executor", fix=FIX) from None
        raise
    try:
        yield
    finally:
        ray.shutdown()


WORKDIR_ENV = "DATAKIT_RAY_WORKDIR"


def enter_workdir() -> None:
    """Ray's worker_process_setup_hook: every worker of the build starts in the driver's folder, before it
    unpickles anything (datatrove's folders resolve a relative path when they are rebuilt there), so relative
    paths in the spec mean the same on every node. A `ray start` worker otherwise starts wherever `ray start` ran."""
    os.chdir(os.environ[WORKDIR_ENV])
