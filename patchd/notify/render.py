"""One customer's email: Jinja2 templates -> ``text/plain`` + ``text/html`` EmailMessage.

Templates live in ``patchd/notify/templates/<lang>/`` (``subject.txt.j2``,
``body.txt.j2``, ``body.html.j2``); a folder given as ``templates`` with the same layout
overrides any of them, file by file. The HTML template is autoescaped; in both bodies
control and bidi characters of values are shown as escapes, so a path cannot fake lines.

NOTE: headers are built with :mod:`email.headerregistry` objects from values stripped of
control characters (CR/LF included), and the envelope recipient is passed explicitly when
sending, so a customer string can neither add a header nor add a recipient.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from patchd.bundle.manifest import Manifest
from patchd.cms.names import CMS_NAMES, localised_summary, localised_title
from patchd.errors import UsageError
from patchd.ledger.emails import told_key
from patchd.notify.explain import Language, explain, specifics
from patchd.notify.group import BUCKETS, Item, Notice
from patchd.report.formats import escape_text

_HEADER_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})+$")
_ADDR = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[A-Za-z0-9.-]+$")
DEFAULT_DOMAIN = "patchd.invalid"
#: How the CMSs are spelled in emails.


def clean_header(value: str) -> str:
    """``value`` with control/bidi characters (CR, LF, ...) replaced by spaces, collapsed."""
    return " ".join(_HEADER_CONTROL.sub(" ", value).split())


def parse_address(value: str, what: str = "--from") -> Address:
    """``Name <addr>`` or ``addr`` as an Address; UsageError when malformed."""
    if _HEADER_CONTROL.search(value):
        raise UsageError(f"{what}: control characters are not allowed: {value!r}")
    name, addr = parseaddr(value)
    if not addr or not _ADDR.match(addr):
        raise UsageError(f"{what}: not an email address: {value!r}")
    user, domain = addr.rsplit("@", 1)
    return Address(display_name=clean_header(name), username=user, domain=domain)


def message_id(
    run_id: int, customer_id: str, bundle_id: str, domain: str, told_key: str = ""
) -> str:
    """The deterministic Message-ID of the email of ``run_id`` to ``customer_id`` telling
    the content ``told_key`` (see :func:`patchd.ledger.emails.told_key`)."""
    seed = f"{run_id}\0{customer_id}\0{bundle_id}" + (f"\0{told_key}" if told_key else "")
    digest = hashlib.sha256(seed.encode()).hexdigest()[:12]
    return f"<patchd-run{run_id}-{customer_id}-{digest}@{domain}>"


@dataclass(frozen=True)
class BundleFacts:
    """What an email says about the patch: title, advisories, versions, summary."""

    id: str
    title: str
    cms: str
    advisories: tuple[str, ...]
    severity: str
    fixed_in: str | None
    min_php: str | None
    summary_de: str
    summary_en: str

    @classmethod
    def from_manifest(cls, m: Manifest) -> BundleFacts:
        """The facts of a bundle's manifest."""
        return cls(
            m.id,
            m.title,
            m.cms,
            tuple(m.advisories),
            m.severity,
            m.fixed_in,
            m.min_php,
            m.summary.de,
            m.summary.en,
        )

    def summary(self, lang: Language) -> str:
        """The customer-facing summary in ``lang``."""
        return self.summary_de if lang == "de" else self.summary_en


@dataclass(frozen=True)
class MailSettings:
    """Sender, support contact, Message-ID domain and template override folder."""

    sender: str
    support: str | None = None
    domain: str = DEFAULT_DOMAIN
    templates: Path | None = None

    def __post_init__(self) -> None:
        parse_address(self.sender)
        if not _DOMAIN.match(self.domain):
            raise UsageError(f"--message-id-domain: not a domain name: {self.domain!r}")
        if self.templates is not None and not self.templates.is_dir():
            raise UsageError(f"--templates: not a folder: {self.templates}")


def _finalize(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup):
        return escape_text(value)
    return value


def template_environments(settings: MailSettings) -> tuple[jinja2.Environment, jinja2.Environment]:
    """The (text, HTML) template environments: the shipped templates, overridden file by
    file by ``settings.templates``."""
    loaders: list[jinja2.BaseLoader] = []
    if settings.templates is not None:
        loaders.append(jinja2.FileSystemLoader(str(settings.templates)))
    loaders.append(jinja2.PackageLoader("patchd.notify", "templates"))
    loader = jinja2.ChoiceLoader(loaders)

    def env(autoescape: bool) -> jinja2.Environment:
        # NOTE: a sandbox: override templates come from a folder an operator points at.
        from jinja2.sandbox import SandboxedEnvironment

        return SandboxedEnvironment(
            loader=loader,
            autoescape=autoescape,
            finalize=_finalize,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    return env(False), env(True)


def build_message(
    settings: MailSettings,
    customer_name: str,
    customer_email: str,
    lang: str,
    subject: str,
    text: str,
    html: str,
    headers: dict[str, str],
) -> EmailMessage:
    """A text + HTML email from the sender of ``settings`` to the customer."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = parse_address(settings.sender)
    msg["To"] = Address(
        display_name=clean_header(customer_name), addr_spec=clean_header(customer_email)
    )
    msg["Subject"] = clean_header(subject)
    msg["Date"] = formatdate(usegmt=True)
    for name, value in headers.items():
        msg[name] = value
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    # NOTE: after add_alternative, which moves Content-* headers into the first part.
    msg["Content-Language"] = lang
    return msg


class Renderer:
    """Renders notices to messages with the shipped (or overriding) templates."""

    def __init__(self, bundle: BundleFacts, settings: MailSettings) -> None:
        self.bundle = bundle
        self.settings = settings
        self._text, self._html = template_environments(settings)

    def _item(self, item: Item, lang: Language) -> dict[str, Any]:
        return {
            "account": item.account,
            "path": item.path or "/",
            "cms": item.cms or "",
            "cms_name": CMS_NAMES.get(item.cms or "", item.cms or ""),
            "version": item.version or "",
            "outcome": item.outcome,
            "reason": item.reason or "",
            "explanation": explain(item.outcome, item.reason, item.detail, lang),
            "specifics": specifics(item.reason, item.detail, lang) if item.reason else "",
        }

    def context(self, notice: Notice) -> dict[str, Any]:
        """The template variables for ``notice`` (see docs/support.md)."""
        assert notice.customer is not None
        lang: Language = notice.customer.language
        sender = parse_address(self.settings.sender)
        return {
            "lang": lang,
            "kind": notice.kind,
            "run": notice.run_id,
            "customer": {"id": notice.customer.id, "name": notice.customer.name},
            "bundle": {
                "id": self.bundle.id,
                "title": localised_title(
                    self.bundle.title, self.bundle.cms, self.bundle.fixed_in, lang
                ),
                "cms": self.bundle.cms,
                "cms_name": CMS_NAMES.get(self.bundle.cms, self.bundle.cms),
                "advisories": list(self.bundle.advisories),
                "severity": self.bundle.severity,
                "fixed_in": self.bundle.fixed_in or "",
                "min_php": self.bundle.min_php or "",
                "summary": localised_summary(
                    self.bundle.summary(lang), self.bundle.cms, self.bundle.fixed_in, lang
                ),
            },
            "support": self.settings.support or sender.addr_spec,
            **{name: [self._item(i, lang) for i in getattr(notice, name)] for name in BUCKETS},
            "not_affected": notice.not_affected,
        }

    def render(self, notice: Notice) -> EmailMessage:
        """The email of ``notice`` (which must not be held and must have a customer)."""
        if notice.customer is None or notice.held or notice.kind is None:
            raise ValueError(f"customer {notice.customer_id!r} gets no email")
        lang = notice.customer.language
        ctx = self.context(notice)
        subject = self._text.get_template(f"{lang}/subject.txt.j2").render(ctx)
        text = self._text.get_template(f"{lang}/body.txt.j2").render(ctx)
        html = self._html.get_template(f"{lang}/body.html.j2").render(ctx)
        mid = message_id(
            notice.run_id,
            notice.customer_id,
            self.bundle.id,
            self.settings.domain,
            told_key(notice.told),
        )
        return build_message(
            self.settings,
            notice.customer.name,
            notice.customer.email,
            lang,
            subject,
            text,
            html,
            {"Message-ID": mid, "X-Patchd-Run": str(notice.run_id)},
        )
