"""Job configuration: where to submit (``ClusterProfile``), what to submit (``BatchSpec``).

Construction never raises for bad values, so a half-filled form can hold them; ``validate()``
reports every problem at once, each naming the field and the fix (``ConfigError.problems``).
The Livy request body follows ``CreateBatchRequest`` (PROTOCOL.md §2.2): camelCase names,
absent fields omitted (``None`` means "not given"), ``args`` as strings.

The modules: ``validators`` (the checks), ``profile``, ``spec``, ``job`` (JSON files) and
``trigger`` (the sample's trigger conf); every name is importable from here.
"""

from __future__ import annotations

from hdiaks_widgets.config.job import JobConfig
from hdiaks_widgets.config.profile import DEFAULT_AUTHORITY_HOST as DEFAULT_AUTHORITY_HOST
from hdiaks_widgets.config.profile import DEFAULT_SCOPE, AuthMethod, ClusterProfile, Flavour
from hdiaks_widgets.config.profile import DEFAULT_VARIABLES_PREFIX as DEFAULT_VARIABLES_PREFIX
from hdiaks_widgets.config.profile import SecretSource as SecretSource
from hdiaks_widgets.config.spec import BatchSpec
from hdiaks_widgets.config.trigger import TRIGGER_KEYS
from hdiaks_widgets.config.validators import validate_file_uri

__all__ = [
    "AuthMethod",
    "BatchSpec",
    "ClusterProfile",
    "DEFAULT_SCOPE",
    "Flavour",
    "JobConfig",
    "TRIGGER_KEYS",
    "validate_file_uri",
]
