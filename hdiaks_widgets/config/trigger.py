"""The Microsoft sample's trigger conf (PROTOCOL.md §1): ``spark_cluster_fqdn``,
``app_jar_path``, ``job_name`` and the optional ``class_name`` and ``args``.

``JobConfig.to_trigger_conf`` / ``with_trigger_conf`` call these. The merge itself is
``wire.merge_trigger_conf``, the one copy the exported DAG's runtime uses too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hdiaks_widgets import wire
from hdiaks_widgets.config.profile import ClusterProfile
from hdiaks_widgets.config.spec import BatchSpec
from hdiaks_widgets.errors import ConfigError, ConfigProblem

__all__ = ["TRIGGER_KEYS", "apply_trigger_conf", "trigger_conf_of"]

TRIGGER_KEYS = wire.TRIGGER_KEYS


def trigger_conf_of(profile: ClusterProfile, spec: BatchSpec) -> dict[str, Any]:
    """The trigger conf that reproduces ``profile`` + ``spec``'s sample fields; the cluster FQDN
    only for the flavours addressed by one (Fabric, Synapse, Livy and the sandbox have none)."""
    conf: dict[str, Any] = {}
    if profile.flavour in ("hdinsight-aks", "hdinsight"):
        conf["spark_cluster_fqdn"] = profile.fqdn or ""
    conf.update({"app_jar_path": spec.file, "job_name": spec.name or ""})
    if spec.class_name:
        conf["class_name"] = spec.class_name
    if spec.args:
        conf["args"] = list(spec.args)
    return conf


def apply_trigger_conf(
    profile: ClusterProfile, spec: BatchSpec, conf: Mapping[str, Any]
) -> tuple[ClusterProfile, BatchSpec]:
    """``conf`` applied on top of ``profile`` + ``spec``; empty values keep the defaults."""
    if not isinstance(conf, Mapping):
        raise ConfigError(f"must be a JSON object, got {type(conf).__name__}", field="trigger_conf")
    problems = [
        ConfigProblem(str(k), f"is not a trigger-conf key; known: {', '.join(TRIGGER_KEYS)}")
        for k in sorted(set(conf) - set(TRIGGER_KEYS), key=str)
    ]
    for key in ("spark_cluster_fqdn", "app_jar_path", "job_name", "class_name"):
        value = conf.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(ConfigProblem(key, f"must be text, got {value!r}"))
    args = conf.get("args")
    if args is not None and isinstance(args, Mapping):
        problems.append(ConfigProblem("args", 'must be a list of arguments, e.g. ["10"]'))
    if problems:
        raise ConfigError(problems)
    merged_profile, merged_spec = wire.merge_trigger_conf(profile.to_dict(), spec.to_dict(), conf)
    return ClusterProfile.from_dict(merged_profile), BatchSpec.from_dict(merged_spec)
