"""clients.yaml: a billing company's clients, one entry each, validated with pydantic.

```yaml
portfolio:                      # optional
  out: portfolio                # where `bhi portfolio` / the `portfolio` asset writes the page
  stale_after_hours: 36         # a client whose last publication is older stands out
defaults:                       # optional: any client setting but id, name, extracts, output
  timezone: America/New_York
clients:
  - id: northside               # lowercase letters, digits, - and _; the Dagster partition key
    name: Northside Clinics
    extracts: drops/northside   # folder or file:// URI of the client's extract drop
    output: out/northside       # folder, file:// or s3:// URI: Parquet marts and run status
    work: state/northside       # local folder for the warehouse, run lock and pages (default: output)
    profile: registry           # source profile (profiles/<name>.yaml or a path); default: none
    timezone: America/Chicago   # its schedules' and as-of date's time zone (default UTC)
    nightly_time: "01:30"       # HH:MM in that time zone (default 02:00)
    close_day: 2                # day of the month its month-end close runs (1-28, default 1)
    reference_overrides: overrides/northside   # CSVs layered on data/reference (payers, fee_schedule, ...)
    site_url: https://bhi.example.com/northside/   # link on the portfolio page (default: the local pages)
```

Relative paths are relative to the folder of clients.yaml. Adding a client is adding an entry. A bad
file fails in one line naming the client and the setting (ClientsConfigError)."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.safety import OperationalError

CLIENTS_ENV = "BHI_CLIENTS"  # the clients.yaml a code location (dg dev, the daemon) loads
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
REMOTE_SCHEMES = ("s3", "gs", "gcs", "r2", "az", "abfss")  # object storage DuckDB's extensions write


class ClientsConfigError(OperationalError, ValueError):
    """clients.yaml is missing, unreadable or invalid; the message is one line (`bhi` prints it as is)."""


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme in REMOTE_SCHEMES


def local_path(uri: str, base: Path) -> Path:
    """A plain path or a file:// URI as an absolute local path (relative to `base`)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(parsed.path)
    return (base / Path(uri).expanduser()).resolve()


class _Settings(BaseModel):
    """The settings a client may take from `defaults`."""

    model_config = ConfigDict(extra="forbid")

    profile: str | None = None
    timezone: str = "UTC"
    nightly_time: str = "02:00"
    close_day: Annotated[int, Field(ge=1, le=28)] = 1
    first_month: str = "2024-01"
    reference_overrides: str | None = None
    duckdb_threads: Annotated[int, Field(ge=1)] | None = None
    duckdb_memory_limit: str | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/Chicago)") from None
        return value

    @field_validator("nightly_time", mode="before")
    @classmethod
    def _hhmm(cls, value: object) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            value = f"{value // 60:02d}:{value % 60:02d}"  # YAML 1.1 reads an unquoted 02:00 as 120 (minutes)
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(value)):
            raise ValueError(f"not a time HH:MM (24 h): {value!r}")
        return value

    @field_validator("first_month")
    @classmethod
    def _month(cls, value: str) -> str:
        try:
            dt.date.fromisoformat(f"{value}-01")
        except ValueError:
            raise ValueError(f"not a month YYYY-MM: {value!r}") from None
        return value


class Client(_Settings):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    name: Annotated[str, Field(min_length=1)]
    extracts: Annotated[str, Field(min_length=1)]
    output: Annotated[str, Field(min_length=1)]
    work: str | None = None
    site_url: str | None = None

    @field_validator("extracts")
    @classmethod
    def _extracts_local(cls, value: str) -> str:
        if is_remote(value):
            raise ValueError(
                f"extracts must be a folder or file:// URI, got {value!r}: mount or sync the bucket to a folder"
            )
        return value

    @model_validator(mode="after")
    def _work_for_remote(self) -> Client:
        if is_remote(self.output) and not self.work:
            raise ValueError("output is object storage: set work, the local folder for its warehouse and pages")
        return self


class Portfolio(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out: str = "portfolio"
    stale_after_hours: Annotated[float, Field(gt=0)] = 36.0


class ClientsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    portfolio: Portfolio = Portfolio()
    defaults: _Settings | None = None
    clients: Annotated[list[Client], Field(min_length=1)]
    base: Path = Path(".")  # the folder of clients.yaml: relative paths start there (not in the file)

    @model_validator(mode="after")
    def _unique_ids(self) -> ClientsFile:
        seen: set[str] = set()
        for client in self.clients:
            if client.id in seen:
                raise ValueError(f"client id {client.id!r} is used twice")
            seen.add(client.id)
        return self

    def client(self, client_id: str) -> Client:
        for client in self.clients:
            if client.id == client_id:
                return client
        raise ClientsConfigError(f"no client {client_id!r} in the clients file (ids: {', '.join(self.ids)})")

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.clients]

    # ---- where a client's things are ------------------------------------------------------------
    def extracts_dir(self, client: Client) -> Path:
        return local_path(client.extracts, self.base)

    def output_uri(self, client: Client) -> str:
        """Where its Parquet marts and run status go: an absolute local path or an object-storage URI."""
        return client.output.rstrip("/") if is_remote(client.output) else str(local_path(client.output, self.base))

    def work_dir(self, client: Client) -> Path:
        """Its local folder: warehouse, run lock, copies and the published pages (<work>/dashboards)."""
        return local_path(client.work or client.output, self.base)

    def warehouse(self, client: Client) -> Path:
        return self.work_dir(client) / "warehouse.duckdb"

    def overrides_dir(self, client: Client) -> Path | None:
        return local_path(client.reference_overrides, self.base) if client.reference_overrides else None

    def profile(self, client: Client) -> str | None:
        """A profile name (profiles/<name>.yaml) as it is; a path relative to clients.yaml made absolute."""
        p = client.profile
        if p and ("/" in p or p.endswith((".yaml", ".yml"))):
            return str(local_path(p, self.base))
        return p

    def portfolio_dir(self) -> Path:
        return local_path(self.portfolio.out, self.base)


def _where(loc: tuple, data: dict) -> str:
    """`clients[1] (id northside).timezone` from a pydantic error location."""
    parts = []
    for i, part in enumerate(loc):
        if isinstance(part, int) and i > 0 and loc[i - 1] == "clients":
            client_id = ""
            with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
                client_id = data["clients"][part].get("id", "")
            parts[-1] += f"[{part}]" + (f" (id {client_id})" if client_id else "")
        else:
            parts.append(str(part))
    return ".".join(parts)


def parse_clients(data: object, base: Path, source: str = "clients file") -> ClientsFile:
    if not isinstance(data, dict):
        raise ClientsConfigError(f"{source}: expected a mapping with a `clients:` list, got {type(data).__name__}")
    merged = dict(data)
    defaults = merged.get("defaults") or {}
    if isinstance(defaults, dict) and isinstance(merged.get("clients"), list):
        merged["clients"] = [{**defaults, **c} if isinstance(c, dict) else c for c in merged["clients"]]
    try:
        return ClientsFile(**merged, base=base)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _where(err["loc"], merged)
        message = err["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ClientsConfigError(f"{source}: {where}: {message}{more}" if where else f"{source}: {message}{more}") from None


def load_clients(path: str | Path) -> ClientsFile:
    """Read and validate clients.yaml; ClientsConfigError (one line) when it cannot be used."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClientsConfigError(f"clients file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientsConfigError(f"clients file {path} cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ClientsConfigError(f"clients file {path} is not valid YAML{at}") from None
    return parse_clients(data, path.resolve().parent, f"clients file {path}")
