"""Listener accounts in PostgreSQL: the minimum the playback-event API needs.

The ``accounts`` table (``encore.db.schema``, made by the migrations): a generated ``user_id``
(what events and JWTs carry), a unique ``username``, an scrypt password hash, and the
profile (e-mail, country, subscription plan, explicit-content choice).

A login with an unknown username is checked against a dummy hash of the same cost, so it
takes as long as a wrong password: the answer's timing does not reveal which usernames exist.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from encore.countries import ASSIGNED_COUNTRY_CODES
from encore.db.schema import accounts
from encore.errors import ContractError, NotFoundError
from streaming_api.auth import hash_password, verify_password
from streaming_api.database import unavailable
from streaming_api.errors import AuthenticationError, ConflictError

log = logging.getLogger(__name__)

# matched with fullmatch: "$" would also match before a final newline ("ada\n")
USERNAME_PATTERN = r"[A-Za-z0-9_.\-]{3,64}"
USERNAME = re.compile(USERNAME_PATTERN)
# C0 and C1 controls and DEL: PostgreSQL refuses NUL, and none belongs in a password
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
PASSWORD_PATTERN = r"[^\x00-\x1f\x7f-\x9f]*"
"""What a password may hold (any length here; ``MIN_PASSWORD_LENGTH`` and the API bound it)."""
MIN_PASSWORD_LENGTH = 8


@functools.cache
def dummy_password_hash() -> str:
    """A hash of a random password with the same scrypt parameters as real ones (made once)."""
    return hash_password(secrets.token_urlsafe(24))


def check_no_control_characters(password: str) -> None:
    """Refuse a password holding control characters (the message never quotes it).

    Raises:
        ContractError: it holds one.
    """
    if CONTROL.search(password):
        raise ContractError("password must not contain control characters (NUL, newline, ...)")


# A pragmatic shape check (one @, a dotted domain, no spaces): whether the mailbox exists is
# for a confirmation e-mail to find out, not a regex.
_DOMAIN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
EMAIL_PATTERN = rf"[^@\s\x00-\x1f\x7f]{{1,64}}@{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})+"
EMAIL = re.compile(EMAIL_PATTERN)


@dataclass(frozen=True)
class Account:
    user_id: str
    username: str


@dataclass(frozen=True)
class Profile:
    """The account as its listener sees it (never the password hash)."""

    user_id: str
    username: str
    email: str | None
    country: str | None
    subscription_plan: str
    allow_explicit: bool
    created_at: datetime


EMAIL_CONSTRAINT = "accounts_email_key"  # the unique index on lower(email), migration 0002


def _violated(error: IntegrityError) -> str | None:
    """The name of the constraint an insert or update broke."""
    return getattr(getattr(error.orig, "diag", None), "constraint_name", None)


def check_country(country: str | None) -> None:
    if country is not None and country not in ASSIGNED_COUNTRY_CODES:
        raise ContractError(f"country {country!r} is not an assigned ISO 3166-1 alpha-2 code")


def check_email(email: str | None) -> None:
    if email is not None and (len(email) > 254 or not EMAIL.fullmatch(email)):
        raise ContractError("email must look like name@example.org (at most 254 characters)")


class AccountStore:
    """Registers listeners and checks their passwords."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dummy_password_hash()  # at start-up, not in the first unknown user's login

    def register(
        self, username: str, password: str, email: str | None = None, country: str | None = None
    ) -> Account:
        """Create an account (plan ``free``, explicit content allowed).

        Raises:
            ContractError: the username, password, e-mail or country does not meet the rules.
            ConflictError: the username or e-mail is taken.
        """
        if not USERNAME.fullmatch(username):
            raise ContractError(
                f"username {username!r} must be 3-64 letters, digits, '_', '.' or '-'"
            )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ContractError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
        check_no_control_characters(password)
        check_email(email)
        check_country(country)
        account = Account(user_id=f"u-{uuid.uuid4().hex[:16]}", username=username)
        password_hash = hash_password(password)  # tens of ms of CPU: not while holding a connection
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(accounts).values(
                        user_id=account.user_id,
                        username=username,
                        password_hash=password_hash,
                        created_at=datetime.now(UTC),
                        email=email,
                        country=country,
                    )
                )
        except IntegrityError as error:
            if _violated(error) == EMAIL_CONSTRAINT:
                raise ConflictError("that e-mail address is already registered") from error
            raise ConflictError(f"username {username!r} is already registered") from error
        except OperationalError as error:
            raise unavailable(error) from error
        return account

    def authenticate(self, username: str, password: str) -> Account:
        """The account whose username and password these are.

        Raises:
            AuthenticationError: unknown username or wrong password (one message for both,
                so the API does not reveal which usernames exist).
        """
        if CONTROL.search(username):
            # no such account can exist (register refuses them); PostgreSQL refuses NUL
            raise ContractError("username must not contain control characters (NUL, newline, ...)")
        check_no_control_characters(password)
        try:
            with self._engine.connect() as connection:
                row = connection.execute(
                    select(accounts.c.user_id, accounts.c.password_hash).where(
                        accounts.c.username == username
                    )
                ).first()
        except OperationalError as error:
            raise unavailable(error) from error
        # one scrypt whether or not the username exists: the same time for both answers
        stored = row.password_hash if row is not None else dummy_password_hash()
        if not verify_password(password, stored) or row is None:
            raise AuthenticationError("unknown username or wrong password")
        return Account(user_id=row.user_id, username=username)

    def profile(self, user_id: str) -> Profile:
        """The listener's profile.

        Raises:
            NotFoundError: no such account (a token outliving its account).
        """
        try:
            with self._engine.connect() as connection:
                row = connection.execute(
                    select(*(accounts.c[name] for name in PROFILE_COLUMNS)).where(
                        accounts.c.user_id == user_id
                    )
                ).first()
        except OperationalError as error:
            raise unavailable(error) from error
        if row is None:
            raise NotFoundError(f"no account {user_id!r}")
        return Profile(**row._asdict())

    def update_profile(self, user_id: str, changes: dict[str, object]) -> Profile:
        """Change the e-mail, country or explicit-content choice (the plan is billing's).

        Raises:
            ContractError: a value breaks the rules, or a field may not be changed here.
            ConflictError: the e-mail belongs to another account.
            NotFoundError: no such account.
        """
        unknown = set(changes) - EDITABLE_PROFILE_FIELDS
        if unknown:
            raise ContractError(f"these fields cannot be changed here: {sorted(unknown)}")
        check_email(changes.get("email"))  # type: ignore[arg-type]
        check_country(changes.get("country"))  # type: ignore[arg-type]
        if changes:
            try:
                with self._engine.begin() as connection:
                    updated = connection.execute(
                        update(accounts).where(accounts.c.user_id == user_id).values(**changes)
                    ).rowcount
            except IntegrityError as error:
                if _violated(error) != EMAIL_CONSTRAINT:
                    raise
                raise ConflictError("that e-mail address is already registered") from error
            except OperationalError as error:
                raise unavailable(error) from error
            if not updated:
                raise NotFoundError(f"no account {user_id!r}")
        return self.profile(user_id)


PROFILE_COLUMNS = (
    "user_id",
    "username",
    "email",
    "country",
    "subscription_plan",
    "allow_explicit",
    "created_at",
)
EDITABLE_PROFILE_FIELDS = {"email", "country", "allow_explicit"}
