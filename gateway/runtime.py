"""From a loaded config to what the runtime needs: the hosts' spec and the app's ``env``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from raydo.actors import MissingAttribute, RuntimeSpec, import_from_app
from raydo.bindings import Plan

from .config import AppConfig


class AppLoadError(RuntimeError):
    """The app named by ``main`` (or an object class) cannot be imported."""


def runtime_spec(config: AppConfig) -> RuntimeSpec:
    """The :class:`RuntimeSpec` hosts are built from: the app's object bindings, then the
    internal objects and ``env`` bindings of its platform sections."""
    plan = platform_plan(config)
    return RuntimeSpec(
        app_name=config.name,
        app_root=str(config.code_root),
        storage_root=str(config.storage),
        durability=config.durability,
        limits=config.limits,
        bindings=config.durable_objects + tuple(plan.objects),
        platform=tuple(plan.platform),
        replication=config.replication,
        environ=app_environment(),
    )


#: Variables that describe this process or this machine rather than the app: a host on
#: another node keeps its own (its PATH, its locale, what Ray set for it).
_PROCESS_VARIABLES = frozenset(
    {
        "PATH", "HOME", "PWD", "OLDPWD", "SHLVL", "_", "SHELL", "USER", "LOGNAME",
        "HOSTNAME", "TERM", "COLORTERM", "TMPDIR", "TMP", "TEMP", "DISPLAY", "MAIL", "LANG",
        "LANGUAGE", "VIRTUAL_ENV", "PS1", "COLUMNS", "LINES", "CUDA_VISIBLE_DEVICES",
        "OMP_NUM_THREADS", "INVOCATION_ID", "JOURNAL_STREAM", "NOTIFY_SOCKET",
    }
)  # fmt: skip
_PROCESS_PREFIXES = (
    "RAY_", "RAYDO_", "PYTHON", "LD_", "LC_", "SSH_", "XDG_", "CONDA_", "DBUS_", "TERM_",
    "KUBERNETES_", "PYENV",
)  # fmt: skip


def app_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables hosts in other processes take (``RuntimeSpec.environ``):
    every one of this process's (``environ``, ``os.environ`` when None) but those of the
    process and machine (``PATH``, ``HOME``, locale, ``RAY_*``, ``RAYDO_*``, ``PYTHON*``
    ...). Under ``raydo dev`` hosts inherit them anyway; under ``raydo serve`` a host is
    started by its node's raylet, with the environment ``ray start`` had, and this is how
    ``FOO=bar raydo serve`` reaches objects as ``FOO=bar raydo dev`` does."""
    env = os.environ if environ is None else environ
    return {
        name: value
        for name, value in env.items()
        if name not in _PROCESS_VARIABLES and not name.startswith(_PROCESS_PREFIXES)
    }


def platform_plan(config: AppConfig) -> Plan:
    """Each platform section's internal objects and ``env`` bindings, kind by kind."""
    from raydo.bindings import ai, assets, cron, d1, kv, queues, r2, vars, vectorize

    plan = Plan()
    plan += d1.plan(config.d1_databases)
    plan += kv.plan(config.kv_namespaces)
    plan += r2.plan(config.r2_buckets)
    plan += queues.plan(config.queue_producers, config.queue_consumers, config.main)
    plan += vars.plan(config.vars, config.secrets)
    plan += vectorize.plan(config.vectorize)
    plan += cron.plan(config.crons, scheduled_handler(config))
    plan += assets.plan(config.assets)
    plan += ai.plan(config.ai)
    return plan


def scheduled_handler(config: AppConfig) -> str:
    """``module:function`` the cron triggers call: ``[triggers] handler``, or by default
    the ``scheduled`` function of ``main``'s module."""
    return config.cron_handler or config.main.partition(":")[0] + ":scheduled"


def check_replication(config: AppConfig) -> None:
    """With ``[replication]``, prove the store usable now (reachable, our credentials taken,
    conditional writes honoured), so a wrong setting fails before anything is served; raise
    :class:`~raydo.storage.replication.StoreUnusable` saying why."""
    if config.replication is not None:
        from raydo.storage.replication import check_store

        check_store(config.replication)


def import_attribute(config: AppConfig, reference: str, what: str) -> Any:
    """Import ``module:attribute`` with the app's folder first on the import path."""
    module_name, _, attribute = reference.partition(":")
    try:
        return import_from_app(str(config.code_root), reference)
    except MissingAttribute:
        raise AppLoadError(
            f"{config.path}: {what} {reference!r}: module {module_name!r} has no {attribute!r}"
        ) from None
    except Exception as exc:
        raise AppLoadError(f"{config.path}: cannot import {what} {reference!r}: {exc!r}") from exc


def load_app(config: AppConfig) -> Any:
    """Import the app ``main`` names; a factory of one (a ``workers`` Worker class) is called."""
    app = import_attribute(config, config.main, "main (a Worker class, Default, or an ASGI app)")
    # ``main`` may name a factory of the app (a Worker class of the ``workers`` SDK).
    factory = getattr(app, "__raydo_app__", None)
    if factory is not None:
        try:
            app = factory()
        except Exception as exc:
            raise AppLoadError(f"{config.path}: main {config.main!r}: {exc}") from exc
    if not callable(app):
        raise AppLoadError(f"{config.path}: main {config.main!r} is not an ASGI app")
    return app


def check_classes(config: AppConfig) -> None:
    """Import every object class now, so a typo fails at start-up rather than on first use."""
    from raydo.actors import DurableObject

    for binding in config.durable_objects:
        cls = import_attribute(config, binding.class_name, f"class of binding {binding.name}")
        if not (isinstance(cls, type) and issubclass(cls, DurableObject)):
            raise AppLoadError(
                f"{config.path}: durable_objects binding {binding.name}: {binding.class_name}"
                " is not a subclass of actors.DurableObject"
            )
    from raydo.bindings.queues import handler_reference

    for consumer in config.queue_consumers:
        reference = handler_reference(consumer, config.main)
        what = f"handler of queue {consumer['queue']!r}"
        if not callable(import_attribute(config, reference, what)):
            raise AppLoadError(f"{config.path}: {what}: {reference} is not a function")
    if config.crons:
        reference = scheduled_handler(config)
        what = "handler of the cron triggers"
        if not callable(import_attribute(config, reference, what)):
            raise AppLoadError(f"{config.path}: {what}: {reference} is not a function")
