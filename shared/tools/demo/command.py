"""``tasklinkr demo`` (``make demo``): find the running platform and its operator key the way ``make run`` left
them, walk the path, print the keys and where to look next."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from shared.runtime import config as settings
from shared.tools.demo.api import Api, ApiError
from shared.tools.demo.walk import DemoError, Report, Walk


class NoPlatform(RuntimeError):
    pass


def gateway_url() -> str:
    host, _, port = settings.get("gateway_address").rpartition(":")
    return f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}"


def operator_key() -> tuple[str, str]:
    """The operator key and where it came from: the setting, else the file `make run` generated."""
    if settings.get("operator_key"):
        return settings.get("operator_key"), "TASKLINKR_OPERATOR_KEY"
    key_file = Path(settings.get("data_dir")) / "operator_key"
    if key_file.is_file():
        return key_file.read_text().strip(), str(key_file)
    raise NoPlatform(f"no operator key: TASKLINKR_OPERATOR_KEY is unset and {key_file} does not exist. "
                     "Start the platform with `make run` first (it writes that file), in this directory.")


def run(url: str | None = None, output_dir: Path | None = None, console: Console | None = None) -> Report:
    console = console or Console()
    key, key_source = operator_key()
    api = Api(url or gateway_url())
    try:
        api.get("/health", key, expect=(200, 503))
    except (ApiError, OSError) as exc:
        raise NoPlatform(f"the platform does not answer at {api.base_url} ({exc}). Start it with `make run`, "
                         "or point TASKLINKR_GATEWAY_ADDRESS (or --url) at it.") from exc
    walk = Walk(api, key, output_dir or Path(settings.get("data_dir")) / "demo", console)
    report = walk.run()
    walk.print_keys()
    walk.print_next(key_source)
    return report


__all__ = ["DemoError", "NoPlatform", "run"]
