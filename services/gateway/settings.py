"""The gateway's settings, found by name by the config reader: the RPC deadline, the largest request, rate limits,
API key rotation and the tenant sweep. Each reaches the nameko config as ``<NAME>``."""
from shared.runtime.config import Setting

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "tenant_sweep_interval_seconds",
        "30",
        "How often the gateway sweeps away what tenants' and providers' broker users declared beyond their rights "
        "(bindings into the platform's exchanges, exchanges of their own, queues that dead-letter into the "
        "platform, queues beyond `tenant_max_queues`), through the management API; `off` disables it.",
    ),
    Setting("rpc_timeout_seconds", 30.0, "Gateway's wait for a service answer before replying 504; a request its "
            "service has not started by then is dropped unrun (it expires in its queue, or the service refuses it "
            "on arrival), so a retry after the 504 does not do the work twice.", cast=float),
    Setting("max_request_bytes", 1_048_576, "Largest HTTP request body the gateway accepts (413 above).", cast=int),
    Setting(
        "rate_limit",
        "120/minute",
        "Requests each client organisation, provider and the operator may make (all its keys together) in a moving "
        "window (`limits` notation: `120/minute`, `10/second`); beyond it the gateway answers 429 with "
        "`Retry-After`. `off` disables it.",
    ),
    Setting(
        "rate_limit_storage",
        "memory://",
        "Where the gateway counts each caller's requests: `memory://` counts per gateway process, so N gateway "
        "replicas let a caller make N times its budget; a storage URI the replicas share (any the `limits` "
        "library knows, e.g. `redis://host:6379`, with its client installed) makes it one budget.",
    ),
    Setting(
        "key_rotation_grace_seconds",
        86_400,
        "How long a rotated API key keeps working when the rotation request does not say (at most 30 days; "
        "0 refuses it at once). Revoked keys are refused at once.",
        cast=int,
    ),
)
