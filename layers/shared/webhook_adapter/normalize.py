"""From merged contact fields to the body of Sphere's ``PATCH /v2/customer/{id}``.

Pure: each field is normalized on its own (email syntax and look-alikes, E.164 phone, ISO 3166-1
alpha-3 country, subdivision code), then grouped into the request fields Sphere knows (``email``,
``phone``, ``address``). A group is sent only when it is valid and complete; otherwise
``plan_request`` says why.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

from webhook_adapter.errors import InvalidValue
from webhook_adapter.merge import FieldState, digest
from webhook_adapter.model import ContactField

__all__ = [
    "ADDRESS_FIELDS",
    "CUSTOMER_ID_PATTERN",
    "Group",
    "InvalidValue",
    "Plan",
    "Problem",
    "group_of",
    "normalize_country",
    "normalize_email",
    "normalize_phone",
    "normalize_state",
    "plan_request",
]

CUSTOMER_ID_PATTERN = re.compile(r"^customer_[a-z0-9]+$")


class Group(StrEnum):
    """A top-level field of Sphere's request body."""

    EMAIL = "email"
    PHONE = "phone"
    ADDRESS = "address"


ADDRESS_FIELDS: dict[ContactField, str] = {
    ContactField.LINE1: "line1",
    ContactField.LINE2: "line2",
    ContactField.CITY: "city",
    ContactField.STATE: "state",
    ContactField.POSTAL_CODE: "postalCode",
    ContactField.COUNTRY: "country",
}
"""Contact field to the name of the same part in Sphere's ``address`` object."""

_REQUIRED_ADDRESS = ("line1", "city", "postalCode", "country")
_PHONE_PREFERENCE = (ContactField.MOBILE_PHONE, ContactField.PHONE)
"""A mobile number is preferred for Sphere's ``phone``; the main number is the fallback."""


def group_of(name: ContactField) -> Group | None:
    """The request field a contact field feeds (``None`` for the customer id)."""
    if name is ContactField.EMAIL:
        return Group.EMAIL
    if name in _PHONE_PREFERENCE:
        return Group.PHONE
    if name in ADDRESS_FIELDS:
        return Group.ADDRESS
    return None


_COMBINABLE_SCRIPTS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
"""Scripts one domain label may combine: Japanese, Chinese and Korean writing (Unicode TS #39, "highly restrictive")."""

_SCRIPT_OF_NAME = {"CJK": "HAN", "IDEOGRAPHIC": "HAN", "KATAKANA-HIRAGANA": "KATAKANA"}
"""First words of Unicode character names that are not the script's own name (``CJK UNIFIED IDEOGRAPH-4F8B``)."""


def _scripts(text: str) -> frozenset[str]:
    """The scripts of the letters in ``text``, read from their Unicode names (``CYRILLIC SMALL LETTER A``).

    Digits, hyphens and combining marks belong to every script, so they are left out.
    """
    letters = (char for char in text if unicodedata.category(char).startswith("L"))
    words = (unicodedata.name(char, "UNNAMED").split(" ", 1)[0] for char in letters)
    return frozenset(_SCRIPT_OF_NAME.get(word, word) for word in words)


def _one_writing_system(text: str) -> bool:
    scripts = _scripts(text)
    return len(scripts) <= 1 or any(scripts <= allowed for allowed in _COMBINABLE_SCRIPTS)


def normalize_email(value: str) -> str:
    """The address Sphere's KYC record gets: ASCII, with an internationalized domain in its IDNA form.

    Compatibility characters are folded first (NFKC: a fullwidth ``a`` is ``a``), the domain is
    lower-cased and written as IDNA A-labels (``bücher.example`` is ``xn--bcher-kva.example``).
    Look-alikes are refused rather than guessed at: a local part or a domain label mixing scripts
    (Latin with a Cyrillic "a" or a Greek omicron), and any local part that is not ASCII (SMTPUTF8),
    which Sphere does not document accepting and in which an all-Cyrillic look-alike cannot be told apart.

    Raises:
        InvalidValue: not a syntactically valid email address, a look-alike, or a local part that is not ASCII.
    """
    try:
        address = validate_email(unicodedata.normalize("NFKC", value), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue("email is not a valid email address") from exc
    if not _one_writing_system(address.local_part):
        raise InvalidValue("email local part mixes scripts (a look-alike of another address)")
    if not address.local_part.isascii():
        raise InvalidValue("email local part is not ASCII (SMTPUTF8 addresses are not sent to Sphere)")
    if not all(_one_writing_system(label) for label in address.domain.split(".")):
        raise InvalidValue("email domain mixes scripts in one label (a look-alike of another domain)")
    return f"{address.local_part}@{address.ascii_domain}"


def normalize_phone(value: str, default_region: str) -> str:
    """The number in E.164, reading numbers without a country code as ``default_region``'s.

    Raises:
        InvalidValue: not a valid phone number.
    """
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue("phone is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("phone is not a valid number for its country")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_country(value: str) -> str:
    """ISO 3166-1 alpha-3 code from a name, an alpha-2 or an alpha-3 code.

    Raises:
        InvalidValue: no such country.
    """
    try:
        country = pycountry.countries.lookup(value.strip())
    except LookupError as exc:
        raise InvalidValue("country is not an ISO 3166 country name or code") from exc
    return str(country.alpha_3)


def _folded(text: str) -> str:
    """Upper case without accents, so "Sao Paulo" finds "São Paulo"."""
    decomposed = unicodedata.normalize("NFKD", text.strip())
    return "".join(char for char in decomposed if not unicodedata.combining(char)).upper()


def normalize_state(value: str, country_alpha3: str) -> str:
    """The subdivision code within the country (``IL`` from ``Illinois``, ``IL`` or ``US-IL``).

    Raises:
        InvalidValue: not a subdivision of that country, or ``country_alpha3`` is no country's alpha-3 code.
    """
    country: Any = pycountry.countries.get(alpha_3=country_alpha3)
    if country is None:
        raise InvalidValue("state cannot be checked: the country is not an ISO 3166 alpha-3 code")
    alpha2 = str(country.alpha_2)
    wanted = _folded(value).removeprefix(f"{alpha2}-")
    subdivisions: Any = pycountry.subdivisions.get(country_code=alpha2)  # type: ignore[no-untyped-call]
    for subdivision in subdivisions or []:
        code = str(subdivision.code).removeprefix(f"{alpha2}-")
        if wanted in (code.upper(), _folded(str(subdivision.name))):
            return code
    raise InvalidValue(f"state is not a subdivision of {country_alpha3}")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a request field cannot be sent: ``invalid`` values are rejected, ``missing`` parts are incomplete."""

    reason: str
    invalid: bool = False
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """What could be sent for a contact now, and what could not be, by request field."""

    customer_id: str | None
    desired: dict[Group, Any] = field(default_factory=dict)
    problems: dict[Group, Problem] = field(default_factory=dict)
    invalid_fields: dict[ContactField, str] = field(default_factory=dict)
    customer_id_problem: str | None = None

    def _snapshot(self, snapshot: Mapping[str, str]) -> Mapping[str, str]:
        return snapshot if snapshot.get("customerId") == self.customer_id else {}

    def changes_since(self, applied: Mapping[str, str], refused: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The request body: desired values that differ from what Sphere last accepted for this customer.

        ``applied`` and ``refused`` hold value digests by request field (``merge.digest``). A value
        Sphere refused for good is left out until it changes in the CRM, so it neither repeats the
        refusal nor drags the contact's other changes into it.
        """
        accepted, refusals = self._snapshot(applied), self._snapshot(refused or {})
        return {
            str(group): value
            for group, value in self.desired.items()
            if digest(value) not in (accepted.get(str(group)), refusals.get(str(group)))
        }

    def refused_before(self, refused: Mapping[str, str]) -> frozenset[Group]:
        """Request fields whose value Sphere already refused for this customer (left out of the body)."""
        refusals = self._snapshot(refused)
        return frozenset(group for group, value in self.desired.items() if refusals.get(str(group)) == digest(value))


def _value(fields: Mapping[ContactField, FieldState], name: ContactField) -> str | None:
    state = fields.get(name)
    return state.value if state is not None else None


def plan_request(
    fields: Mapping[ContactField, FieldState], *, default_region: str, countries_requiring_state: frozenset[str]
) -> Plan:
    """Normalize every known field and decide, per request field, the value to send or why not."""
    desired: dict[Group, Any] = {}
    problems: dict[Group, Problem] = {}
    invalid: dict[ContactField, str] = {}

    def attempt(name: ContactField, normalizer: Any, *args: Any) -> str | None:
        raw = _value(fields, name)
        if raw is None:
            return None
        try:
            return str(normalizer(raw, *args))
        except InvalidValue as exc:
            invalid[name] = str(exc)
            return None

    if (email := attempt(ContactField.EMAIL, normalize_email)) is not None:
        desired[Group.EMAIL] = email
    elif ContactField.EMAIL in fields:
        problems[Group.EMAIL] = _missing_or_invalid(invalid.get(ContactField.EMAIL), "email")

    phones = [(name, attempt(name, normalize_phone, default_region)) for name in _PHONE_PREFERENCE]
    if chosen := next((phone for _, phone in phones if phone is not None), None):
        desired[Group.PHONE] = chosen
    elif any(name in fields for name in _PHONE_PREFERENCE):
        reason = next((invalid[name] for name in _PHONE_PREFERENCE if name in invalid), None)
        problems[Group.PHONE] = _missing_or_invalid(reason, "phone")

    if any(name in fields for name in ADDRESS_FIELDS):
        address, problem = _address(fields, invalid, countries_requiring_state)
        if address is not None:
            desired[Group.ADDRESS] = address
        elif problem is not None:
            problems[Group.ADDRESS] = problem

    customer_id = _value(fields, ContactField.CUSTOMER_ID)
    customer_problem = None
    if customer_id is not None and not CUSTOMER_ID_PATTERN.fullmatch(customer_id):
        customer_id, customer_problem = None, "the Sphere customer id does not match customer_[a-z0-9]+"
    return Plan(
        customer_id=customer_id,
        desired=desired,
        problems=problems,
        invalid_fields=invalid,
        customer_id_problem=customer_problem,
    )


def _missing_or_invalid(reason: str | None, name: str) -> Problem:
    if reason is not None:
        return Problem(reason=reason, invalid=True)
    return Problem(reason=f"{name} was cleared in the CRM; Sphere keeps its current value", missing=(name,))


def _address(
    fields: Mapping[ContactField, FieldState],
    invalid: dict[ContactField, str],
    countries_requiring_state: frozenset[str],
) -> tuple[dict[str, str] | None, Problem | None]:
    parts = {part: value for name, part in ADDRESS_FIELDS.items() if (value := _value(fields, name)) is not None}
    if "country" in parts:
        try:
            parts["country"] = normalize_country(parts["country"])
        except InvalidValue as exc:
            invalid[ContactField.COUNTRY] = str(exc)
            return None, Problem(reason=str(exc), invalid=True)
        needs_state = parts["country"] in countries_requiring_state
        if "state" in parts:
            try:
                parts["state"] = normalize_state(parts["state"], parts["country"])
            except InvalidValue as exc:
                if needs_state:
                    invalid[ContactField.STATE] = str(exc)
                    return None, Problem(reason=str(exc), invalid=True)
                del parts["state"]
    else:
        needs_state = False
    required = (*_REQUIRED_ADDRESS, "state") if needs_state else _REQUIRED_ADDRESS
    missing = tuple(part for part in required if part not in parts)
    if missing:
        return None, Problem(reason="address is incomplete: missing " + ", ".join(missing), missing=missing)
    ordered = ("line1", "line2", "city", "state", "postalCode", "country")
    return {part: parts[part] for part in ordered if part in parts}, None
