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

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from encore.db.schema import accounts
from encore.errors import ContractError
from streaming_api.auth import hash_password, verify_password
from streaming_api.errors import AuthenticationError, ConflictError, UnavailableError

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


def _unreachable(dsn: str, error: Exception) -> UnavailableError:
    # the DSN (host, user, maybe a password) goes to the log, never to the client
    log.warning("PostgreSQL at %s is unreachable: %s", dsn, getattr(error, "orig", error))
    return UnavailableError("PostgreSQL is unreachable; retry later")


@dataclass(frozen=True)
class Account:
    user_id: str
    username: str


class AccountStore:
    """Registers listeners and checks their passwords."""

    def __init__(self, engine: Engine) -> None:
        self.dsn = engine.url.render_as_string(hide_password=True)
        self._engine = engine
        dummy_password_hash()  # at start-up, not in the first unknown user's login

    def register(self, username: str, password: str) -> Account:
        """Create an account.

        Raises:
            ContractError: the username or password does not meet the rules.
            ConflictError: the username is taken.
        """
        if not USERNAME.fullmatch(username):
            raise ContractError(
                f"username {username!r} must be 3-64 letters, digits, '_', '.' or '-'"
            )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ContractError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
        check_no_control_characters(password)
        account = Account(user_id=f"u-{uuid.uuid4().hex[:16]}", username=username)
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(accounts).values(
                        user_id=account.user_id,
                        username=username,
                        password_hash=hash_password(password),
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError as error:
            raise ConflictError(f"username {username!r} is already registered") from error
        except OperationalError as error:
            raise _unreachable(self.dsn, error) from error
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
            raise _unreachable(self.dsn, error) from error
        # one scrypt whether or not the username exists: the same time for both answers
        stored = row.password_hash if row is not None else dummy_password_hash()
        if not verify_password(password, stored) or row is None:
            raise AuthenticationError("unknown username or wrong password")
        return Account(user_id=row.user_id, username=username)
