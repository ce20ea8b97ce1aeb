"""raydo's object model: write a :class:`DurableObject`, reach it through a namespace's stubs.

The machinery (hosts, placement, the wire) lives in the private modules.
"""

from ._app_env import PlatformContext
from ._client_gone import CLIENT_LEFT_EXTENSION
from ._env import Env, env_bindings, public_env
from ._errors import (
    CallRefused,
    HostUnavailable,
    ObjectError,
    ObjectReset,
    Overloaded,
    RaydoError,
    RemoteLimitExceeded,
    RemoteStorageFull,
    StreamBroken,
)
from ._ids import ObjectId
from ._loading import MissingAttribute, forget_app_modules, import_from_app
from ._namespace import Namespace, Stub
from ._object import DurableObject, ObjectContext, PlatformObject
from ._services import ServiceReplica, Services, ServiceSpec
from ._spec import BindingSpec, PlatformSpec, RuntimeSpec
from ._streams import BODY_ALLOWANCE, BodyAllowance
from ._turn import in_event

__all__ = [
    "BODY_ALLOWANCE",
    "CLIENT_LEFT_EXTENSION",
    "BindingSpec",
    "BodyAllowance",
    "CallRefused",
    "DurableObject",
    "Env",
    "HostUnavailable",
    "MissingAttribute",
    "Namespace",
    "ObjectContext",
    "ObjectError",
    "ObjectId",
    "ObjectReset",
    "Overloaded",
    "PlatformContext",
    "PlatformObject",
    "PlatformSpec",
    "RaydoError",
    "RemoteLimitExceeded",
    "RemoteStorageFull",
    "RuntimeSpec",
    "ServiceReplica",
    "ServiceSpec",
    "Services",
    "StreamBroken",
    "Stub",
    "env_bindings",
    "forget_app_modules",
    "import_from_app",
    "in_event",
    "public_env",
]
