"""The inventory (``accounts.yaml``): hosts and the customer accounts on them.

Loaded once on the controller and validated with pydantic; every error names the file,
the account id (or host name) and the field, e.g.
``accounts.yaml: account p10001: field php: not a PHP version: '8.x'``.

NOTE: strings from the inventory end up in file paths, SSH commands and email headers, so
ids, paths and customer strings are checked here, once, rather than at every use.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import io
import ipaddress
import os
import posixpath
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass

from patchd.errors import InventoryError

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PHP_RE = re.compile(r"^\d+\.\d+$")
_EMAIL_RE = re.compile(
    r"^[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$"
)
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.:-]{0,252})$")
_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Most errors listed in one InventoryError (a broken generator can produce thousands).
_MAX_LISTED_ERRORS = 20

_STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _check_id(value: str, what: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(
            f"not a valid {what}: {value!r} (letters, digits, '.', '_', '-'; at most 64)"
        )
    return value


def _check_ip(value: str | None) -> str | None:
    """An IP address to connect to instead of the URL's host (``resolve``), normalised."""
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"not an IP address: {value!r}") from None


def _relative_path(value: str, what: str) -> str:
    """A path relative to the account root, normalised (``""`` for the root itself)."""
    _no_control(value, what)
    if value.startswith("/"):
        raise ValueError(f"{what} must be relative to the root: {value!r}")
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"'..' in {what}: {value!r}")
    return "/".join(parts)


def _no_control(value: str, what: str) -> str:
    if _CONTROL_RE.search(value):
        raise ValueError(f"{what} contains a control character (CR/LF/tab/NUL): {value!r}")
    return value


class Host(BaseModel):
    """A server holding accounts, reached on this machine (``local``) or over ``ssh``."""

    model_config = _STRICT

    transport: Literal["local", "ssh"]
    hostname: str | None = None
    port: int = Field(22, ge=1, le=65535)
    user: str = "root"
    key_file: Path | None = None
    known_hosts: Path | None = None
    python: str = "python3"
    max_sessions: int = Field(4, ge=1, le=256)
    backup_dir: str | None = None  # backup store on the host (default: tied to the ledger)
    resolve: str | None = None  # the health check connects here (like curl --resolve)

    @field_validator("resolve")
    @classmethod
    def _resolve(cls, value: str | None) -> str | None:
        return _check_ip(value)

    @field_validator("backup_dir")
    @classmethod
    def _backup_dir(cls, value: str | None) -> str | None:
        if value is not None:
            _no_control(value, "path")
            if not value.startswith("/"):
                raise ValueError(f"must be an absolute path: {value!r}")
        return value

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None and not _HOSTNAME_RE.match(value):
            raise ValueError(f"not a host name: {value!r}")
        return value

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not _USER_RE.match(value):
            raise ValueError(f"not a user name: {value!r}")
        return value

    @field_validator("key_file", "known_hosts", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        if isinstance(value, str):
            _no_control(value, "path")
            # NOTE: a str (pydantic makes the Path): in JSON mode a Path is no valid input
            return os.path.expanduser(value)
        return value

    @field_validator("python")
    @classmethod
    def _python(cls, value: str) -> str:
        # NOTE: the interpreter name is put on a remote command line: no shell syntax.
        if not re.match(r"^[A-Za-z0-9_./+-]{1,200}$", value):
            raise ValueError(f"not an interpreter name or path: {value!r}")
        return value

    @model_validator(mode="after")
    def _ssh_needs_hostname(self) -> Host:
        if self.transport == "ssh" and not self.hostname:
            raise ValueError("field hostname: required for transport ssh")
        return self


class Customer(BaseModel):
    """The customer owning an account: who gets the emails, in which language."""

    model_config = _STRICT

    id: str
    name: str = Field(min_length=1, max_length=200)
    email: str
    language: Literal["de", "en"]

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value, "customer id")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # NOTE: the name goes into email headers; CR/LF would inject headers.
        return _no_control(value, "name")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        _no_control(value, "email")
        if len(value) > 254 or not _EMAIL_RE.match(value):
            raise ValueError(f"not an email address: {value!r}")
        return value


_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)
#: A slotted frozen dataclass validated by pydantic (see :class:`Account` for why).
_lean = pydantic_dataclass(
    config=ConfigDict(extra="forbid", str_strip_whitespace=True),
    frozen=True,
    slots=True,
    kw_only=True,
)


@_lean
class Site:
    """A URL an installation answers at, for the health check after applying a patch.

    ``path`` is the installation's folder relative to the account root (as ``patchd scan``
    reports it, ``""`` for the root itself); ``resolve`` is the IP address the check
    connects to instead of looking the URL's host up in DNS (like ``curl --resolve``).
    """

    path: str
    url: str
    resolve: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _relative_path(value, "path")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        _no_control(value, "url")
        try:
            parsed = _HTTP_URL.validate_python(value)
        except ValidationError:
            raise ValueError(f"not an http(s) URL: {value!r}") from None
        if parsed.username or parsed.password:
            # NOTE: URLs end up in reports and emails; no credentials in them.
            raise ValueError(f"no user or password in the URL, please: {value!r}")
        return value

    @field_validator("resolve")
    @classmethod
    def _resolve(cls, value: str | None) -> str | None:
        return _check_ip(value)


@_lean
class Account:
    """One customer account: a root folder on a host, optional docroots and PHP facts.

    NOTE: a slotted frozen dataclass validated by pydantic, not a ``BaseModel``: a rollout
    holds every account of the inventory, and a model's ``__dict__`` and fields-set cost
    ~1 KB per account (50 MB at 50,000 accounts). Validate with :data:`ACCOUNT`.
    """

    id: str
    host: str
    root: str
    docroots: list[str] = Field(default_factory=list)
    php: str | None = None
    php_binary: str | None = None
    uid: int | None = Field(None, ge=0, le=2**32 - 2)
    gid: int | None = Field(None, ge=0, le=2**32 - 2)
    policy: Literal["auto", "notify-only", "skip"] = "auto"
    customer: Customer
    sites: list[Site] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value, "account id")

    @field_validator("root")
    @classmethod
    def _root(cls, value: str) -> str:
        _no_control(value, "root")
        if not value.startswith("/"):
            raise ValueError(f"not an absolute path: {value!r}")
        if ".." in value.split("/"):
            raise ValueError(f"'..' in path: {value!r}")
        norm = posixpath.normpath(value)
        if norm in ("/", "//"):
            # NOTE: every write stays inside the root; "/" would allow the whole machine.
            raise ValueError("the file system root cannot be an account root")
        return norm

    @field_validator("gid")
    @classmethod
    def _gid(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError("gid 0 is root's group: an account's work never runs with it")
        return value

    @field_validator("docroots")
    @classmethod
    def _docroots(cls, value: list[str]) -> list[str]:
        return [_relative_path(docroot, "docroot") for docroot in value]

    @field_validator("php")
    @classmethod
    def _php(cls, value: str | None) -> str | None:
        if value is not None and not _PHP_RE.match(value):
            raise ValueError(f"not a PHP version: {value!r} (expected like '8.2')")
        return value

    @field_validator("php", mode="before")
    @classmethod
    def _php_number(cls, value: Any) -> Any:
        # NOTE: YAML reads an unquoted `php: 8.2` as a float; accept it as its text.
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f"not a PHP version: {value!r} (expected like '8.2')")
        return value

    @field_validator("php_binary")
    @classmethod
    def _php_binary(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _no_control(value, "php_binary")
        if not value.startswith("/") or ".." in value.split("/"):
            raise ValueError(f"not an absolute path: {value!r}")
        return value


#: Validates one account (an :class:`Account` is no ``BaseModel``: no ``model_validate``).
ACCOUNT: TypeAdapter[Account] = TypeAdapter(Account)


class Inventory(BaseModel):
    """All hosts (by name) and all accounts."""

    model_config = _STRICT

    hosts: dict[str, Host]
    accounts: list[Account] = Field(default_factory=list)

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, value: dict[str, Host]) -> dict[str, Host]:
        for name in value:
            _check_id(name, "host name")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Inventory:
        problems: list[str] = []
        seen: dict[str, int] = {}
        customers: dict[str, tuple[str, Customer]] = {}
        for account in self.accounts:
            if account.id in seen:
                problems.append(f"account {account.id}: field id: duplicate account id")
            seen[account.id] = 1
            if account.host not in self.hosts:
                problems.append(f"account {account.id}: field host: unknown host {account.host!r}")
            known = customers.get(account.customer.id)
            if known is None:
                customers[account.customer.id] = (account.id, account.customer)
            elif known[1] != account.customer:
                # NOTE: emails are grouped by customer id; two different addresses under one
                # id would send one customer's account list to another.
                problems.append(
                    f"account {account.id}: field customer: customer {account.customer.id} "
                    f"differs from the one given for account {known[0]}"
                )
            if len(problems) >= _MAX_LISTED_ERRORS:
                break
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def account(self, account_id: str) -> Account:
        """The account with ``account_id``; ``KeyError`` if there is none."""
        for account in self.accounts:
            if account.id == account_id:
                return account
        raise KeyError(account_id)

    def accounts_on(self, host: str) -> Iterator[Account]:
        """The accounts on host ``host``, in file order."""
        return (a for a in self.accounts if a.host == host)


def _yaml_loader() -> type[yaml.SafeLoader]:
    # NOTE: the C parser; the event loop below replaces PyYAML's (slow) Python constructor.
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_NULL = object()
# Plain scalars YAML 1.1 reads as null or booleans (PyYAML's safe schema).
_SPECIAL: dict[str, Any] = {
    **dict.fromkeys(("~", "null", "Null", "NULL", ""), _NULL),
    **dict.fromkeys(("true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"), False),
}
_INT_RE = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_FLOAT_RE = re.compile(r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$")


def _scalar(event: yaml.ScalarEvent) -> Any:
    """Resolve a scalar the way YAML 1.1's safe schema does, for the types we use."""
    value = event.value
    if event.implicit[0]:  # a plain scalar without a tag
        first = value[:1]
        if first.isdigit() or (first and first in "+-."):
            if _INT_RE.match(value):
                return int(value.replace("_", ""))
            if _FLOAT_RE.match(value):
                return float(value.replace("_", ""))
            return value
        special = _SPECIAL.get(value, value)
        return None if special is _NULL else special
    tag = event.tag
    if tag in (None, "!", "tag:yaml.org,2002:str"):
        return value
    if tag == "tag:yaml.org,2002:int" and _INT_RE.match(value):
        return int(value.replace("_", ""))
    if tag == "tag:yaml.org,2002:null":
        return None
    raise _YamlShapeError(event.start_mark, f"unsupported tag {tag!r}")


class _YamlShapeError(Exception):
    """A YAML construct the inventory loader refuses (names the line)."""

    def __init__(self, mark: Any, problem: str) -> None:
        super().__init__(problem)
        self.line = mark.line + 1 if mark is not None else None
        self.problem = problem


def _load_yaml(fh: Any, on_account: Callable[[dict[Any, Any]], Any] | None = None) -> Any:
    """Build plain dicts/lists/scalars from the C parser's event stream.

    NOTE: PyYAML's constructor and resolver run in Python and take ~20 s for 50,000
    accounts; this loop takes a few. It also refuses duplicate keys (PyYAML silently keeps
    the last one, which would hide a copy-paste error in a 50,000-line file), and supports
    anchors, aliases and ``<<`` merge keys like the safe loader.

    ``on_account`` is given each complete mapping of the top-level ``accounts`` list (its
    merge keys applied) and returns what the list holds in its place: the account is
    validated while the file is read, and the whole document never exists as dicts.
    """
    stack: list[Any] = []  # open containers
    keys: list[Any] = []  # per open container: the pending mapping key, or _NO_KEY
    anchors: dict[str, Any] = {}
    root: Any = None
    accounts: list[Any] | None = None  # the top-level accounts list, while it is read
    documents = 0
    loader = _yaml_loader()(fh)
    try:
        while True:
            event = loader.get_event()
            cls = type(event)
            if cls is yaml.ScalarEvent:
                value: Any = _scalar(event)
            elif cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
                value = {} if cls is yaml.MappingStartEvent else []
            elif cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
                done = stack.pop()
                keys.pop()
                if cls is yaml.MappingEndEvent:
                    if "<<" in done:
                        _merge(done)
                    in_accounts = len(stack) == 2 and stack[1] is accounts
                    if on_account is not None and accounts is not None and in_accounts:
                        accounts[-1] = on_account(done)
                continue
            elif cls is yaml.AliasEvent:
                if event.anchor not in anchors:
                    raise _YamlShapeError(event.start_mark, f"unknown alias *{event.anchor}")
                value = anchors[event.anchor]
            elif cls is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _YamlShapeError(event.start_mark, "more than one YAML document")
                continue
            elif cls is yaml.StreamEndEvent:
                return root
            else:
                continue
            if cls is not yaml.AliasEvent and event.anchor:
                anchors[event.anchor] = value
            if not stack:
                root = value
            elif type(stack[-1]) is list:
                stack[-1].append(value)
            elif keys[-1] is _NO_KEY:
                if isinstance(value, dict | list):
                    raise _YamlShapeError(event.start_mark, "a mapping or list as a key")
                keys[-1] = value
            else:
                _set_item(stack[-1], keys[-1], value, event.start_mark)
                if len(stack) == 1 and keys[-1] == "accounts" and cls is yaml.SequenceStartEvent:
                    accounts = value
                keys[-1] = _NO_KEY
            if cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
                stack.append(value)
                keys.append(_NO_KEY)
    finally:
        loader.dispose()


def _set_item(mapping: dict[Any, Any], key: Any, value: Any, mark: Any) -> None:
    """``mapping[key] = value``, refusing duplicate keys."""
    if key in mapping:
        raise _YamlShapeError(mark, f"duplicate key {key!r}")
    mapping[key] = value


def _merge(mapping: dict[Any, Any]) -> None:
    """Apply a YAML ``<<`` merge key once the mapping is complete (own keys win)."""
    merged = mapping.pop("<<")
    for source in merged if isinstance(merged, list) else [merged]:
        if isinstance(source, dict):
            for k, v in source.items():
                mapping.setdefault(k, v)


_NO_KEY = object()


class InventoryCache(Protocol):
    """Validated inventories by the sha256 of their file (the ledger keeps one)."""

    def get(self, sha256: str) -> bytes | None:
        """What :meth:`put` stored for the file with this hash, or None."""

    def put(self, sha256: str, data: bytes) -> None:
        """Remember the validated inventory of the file with this hash (opaque bytes)."""


class HeldCache:
    """An :class:`InventoryCache` for a ledger that does not exist yet: finds nothing, keeps
    what is put until :meth:`hand_to` gives it to the ledger's cache once that exists.

    NOTE: a command in a fresh folder checks the inventory before it creates the ledger
    (issue 17); without this, the next command parsed the YAML file again (0.7 s at 10,000
    accounts) although its bytes had not changed.
    """

    def __init__(self) -> None:
        self.held: tuple[str, bytes] | None = None

    def get(self, sha256: str) -> bytes | None:
        """Nothing is cached yet."""
        return None

    def put(self, sha256: str, data: bytes) -> None:
        """Keep it for :meth:`hand_to`."""
        self.held = (sha256, data)

    def hand_to(self, cache: InventoryCache) -> None:
        """Store what was put in ``cache`` (the new ledger's)."""
        if self.held is not None:
            cache.put(*self.held)
            self.held = None


def load_inventory(path: Path, *, cache: InventoryCache | None = None) -> Inventory:
    """Read and validate ``path``; :class:`InventoryError` names file, account and field.

    With ``cache``, a file whose bytes were loaded before is read back from the cache
    (validated again, without the YAML parse; see :func:`_to_cache`); a cache entry that
    no longer validates is ignored.
    """
    # NOTE: loading makes hundreds of thousands of objects and no reference cycles; the
    # cyclic collector ran over all of them again and again (a third of reading 50,000
    # accounts back from the cache).
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load_inventory(path, cache)
    finally:
        if paused:
            gc.enable()


def _load_inventory(path: Path, cache: InventoryCache | None) -> Inventory:
    where = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise InventoryError(f"cannot read: {exc.strerror or exc}", where=where) from None
    if cache is None:
        return _parse_inventory(raw, where)
    digest = hashlib.sha256(raw).hexdigest()
    cached = cache.get(digest)
    if cached is not None:
        inventory = _from_cache(cached)
        if inventory is not None:
            return inventory
        # NOTE: stored by an older patchd (other rules or format): parse the file
    del cached
    inventory = _parse_inventory(raw, where)
    del raw
    cache.put(digest, _to_cache(inventory))
    return inventory


class _CacheHead(BaseModel):
    """The first line of a cached inventory: its hosts and how many account lines follow."""

    model_config = _STRICT

    hosts: dict[str, Host]
    accounts: int


_ACCOUNT_LIST: TypeAdapter[list[Account]] = TypeAdapter(list[Account])
#: Accounts validated per call when an inventory is read back from the cache.
_CACHE_CHUNK = 1000


def _to_cache(inventory: Inventory) -> bytes:
    """``inventory`` as cache bytes: zlib-compressed lines, a :class:`_CacheHead`, then
    one JSON line per account (in order).

    NOTE: one line per account, so that reading it back validates a chunk of accounts at
    a time (one JSON document of 50,000 accounts made pydantic hold a parsed tree of
    ~150 MB); compressed line by line (13 MB of JSON become ~1 MB, and SQLite held ~40 MB
    while storing the plain text).
    """
    head = _CacheHead(hosts=inventory.hosts, accounts=len(inventory.accounts))
    packer = zlib.compressobj(6)
    out = [packer.compress(head.model_dump_json().encode())]
    for account in inventory.accounts:
        out.append(packer.compress(b"\n" + ACCOUNT.dump_json(account)))
    out.append(packer.flush())
    return b"".join(out)


def _cache_lines(data: bytes) -> Iterator[bytes]:
    """The lines of cache bytes, decompressed a piece at a time (never all at once)."""
    unpacker = zlib.decompressobj()
    rest = b""
    for start in range(0, len(data), 1 << 16):
        lines = (rest + unpacker.decompress(data[start : start + (1 << 16)])).split(b"\n")
        rest = lines.pop()
        yield from lines
    rest += unpacker.flush()
    if not unpacker.eof:
        raise zlib.error("cache entry is cut short")
    yield from rest.split(b"\n")


def _from_cache(data: bytes) -> Inventory | None:
    """The inventory of cache bytes written by :func:`_to_cache`, validated again; None
    when they do not validate (written by another patchd, or damaged)."""
    try:
        lines = _cache_lines(data)
        head = _CacheHead.model_validate_json(next(lines))
        accounts: list[Account] = []
        chunk: list[bytes] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) == _CACHE_CHUNK:
                accounts.extend(_ACCOUNT_LIST.validate_json(b"[" + b",".join(chunk) + b"]"))
                chunk = []
        if chunk:
            accounts.extend(_ACCOUNT_LIST.validate_json(b"[" + b",".join(chunk) + b"]"))
        if len(accounts) != head.accounts:
            return None
        return Inventory(hosts=head.hosts, accounts=accounts)
    except (ValidationError, zlib.error, StopIteration):
        return None


def _parse_inventory(raw: bytes, where: str) -> Inventory:
    """Parse and validate the bytes of an inventory file (see :func:`load_inventory`)."""
    try:
        data = _load_yaml(io.BytesIO(raw), on_account=_validated_account)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        raise InventoryError(f"{pos}YAML syntax error: {problem}", where=where) from None
    except _YamlShapeError as exc:
        pos = f"line {exc.line}: " if exc.line else ""
        raise InventoryError(f"{pos}{exc.problem}", where=where) from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"YAML error: {exc}", where=where) from None
    if not isinstance(data, dict):
        raise InventoryError("expected a mapping with 'hosts' and 'accounts'", where=where)
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        lines = _describe(exc, data)
        message = lines[0]
        if len(lines) > 1:
            # NOTE: str(InventoryError) prefixes only the first line with the file.
            shown = lines[1:_MAX_LISTED_ERRORS]
            message += "".join(f"\n{where}: {line}" for line in shown)
            if len(lines) > _MAX_LISTED_ERRORS:
                message += f"\n{where}: ... and {len(lines) - _MAX_LISTED_ERRORS} more errors"
        error = InventoryError(message, where=where)
        error.errors = lines  # type: ignore[attr-defined]
        raise error from None


def _validated_account(entry: dict[Any, Any]) -> Any:
    """The :class:`Account` of one ``accounts`` entry, or the entry as it was when it is
    not valid (then validating the whole inventory reports it with the others, in order).

    NOTE: validated while the YAML is read: 50,000 accounts as dicts next to their models
    were the largest part of a large rollout's memory.
    """
    try:
        return ACCOUNT.validate_python(entry)
    except ValidationError:
        return entry


def _describe(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    """One ``account X: field Y: message`` line per pydantic error."""
    lines: list[str] = []
    for err in _in_field_order(exc.errors(include_url=False)):
        loc = list(err["loc"])
        message = _message(err)
        if not loc:
            lines.extend(message.splitlines())
            continue
        prefix = ""
        if loc[0] == "accounts" and len(loc) >= 2 and isinstance(loc[1], int):
            prefix = f"account {_account_label(data, loc[1])}: "
            loc = loc[2:]
        elif loc[0] == "hosts" and len(loc) >= 2 and isinstance(loc[1], str):
            prefix = f"host {loc[1]}: "
            loc = loc[2:]
            if message.startswith("field "):  # from a model validator
                lines.append(prefix + message)
                continue
        field = ".".join(str(part) for part in loc)
        lines.append(f"{prefix}field {field}: {message}" if field else prefix + message)
    return lines


_ACCOUNT_FIELDS = {f.name: rank for rank, f in enumerate(dataclasses.fields(Account))}


def _in_field_order(errors: list[Any]) -> list[Any]:
    """``errors`` with each account's errors in the order of :class:`Account`'s fields,
    unknown fields last (the order a ``BaseModel`` reports them in; a dataclass reports
    them in the order of the file's keys). Everything else keeps its place."""

    def rank(err: Any) -> tuple[int, int]:
        loc = err["loc"]
        field = str(loc[2]) if len(loc) > 2 else ""
        return loc[1], _ACCOUNT_FIELDS.get(field, len(_ACCOUNT_FIELDS))

    def is_account(err: Any) -> bool:
        loc = err["loc"]
        return len(loc) > 1 and loc[0] == "accounts" and isinstance(loc[1], int)

    ordered: list[Any] = []
    run: list[Any] = []  # consecutive errors about accounts
    for err in [*errors, None]:
        if err is not None and is_account(err):
            run.append(err)
            continue
        ordered.extend(sorted(run, key=rank))
        run = []
        if err is not None:
            ordered.append(err)
    return ordered


def _account_label(data: dict[str, Any], index: int) -> str:
    accounts = data.get("accounts")
    if isinstance(accounts, list) and index < len(accounts):
        entry = accounts[index]
        if isinstance(entry, dict) and isinstance(entry.get("id"), str | int):
            return str(entry["id"])
    return f"#{index + 1} (no id)"


def _message(err: Any) -> str:
    kind = err["type"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):  # model, dataclass
        return "unknown field"
    if kind == "dataclass_type":  # the wording of a model's "model_type"
        cls = (err.get("ctx") or {}).get("class_name", "Account")
        return f"Input should be a valid dictionary or instance of {cls}, got {err.get('input')!r}"
    if kind == "missing":
        return "required field missing"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if err["type"] != "value_error":
        msg = f"{msg}, got {err.get('input')!r}"
    return msg
