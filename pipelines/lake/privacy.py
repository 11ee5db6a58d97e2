"""Erase a listener from the lake, or export what it holds about them (issue 10, item 7).

Inputs: every registry table (``encore.tables.TABLES``) that holds user-level data, found by
its columns, so tables added later join without a change here:

- a ``user_id`` column: the listener's rows are those with that id (bronze, silver,
  ``training.interactions``);
- a ``listener_key`` column: the rows with the listener's pseudonym
  (:func:`pipelines.lake.pseudonyms.listener_key`), as in ``gold.user_daily_listening``;
- a ``raw_payload`` column (dead letters): rows whose payload parses as a JSON object with that
  ``user_id``; payloads that do not parse cannot be attributed and are left alone, counted;
- an ``example`` column (``ops.quality_results``: a failing check's example row as JSON,
  pseudonymised): the results whose example contains the listener's id or pseudonym. Those
  are blanked (example set to null), not deleted: the check's verdict and counts are about
  the table, not the listener, and the quality history keeps them. Matching is by text, so an
  id that is part of a longer one blanks that example too (an example lost, nothing kept).

Aggregate tables with no listener column (songs' daily plays, daily active users, cohorts,
breakdowns) are left untouched, by design: they hold counts over many listeners, no row
is one listener's, and an erased listener's contribution to a count is not personal data.

Outputs: ``forget`` deletes those rows (a Delta DELETE per table; an UPDATE for examples),
physically deletes the files that held them (the remove actions of that commit, plus older
tombstoned files, e.g. left by compaction, that still hold the listener's rows: a vacuum
limited to them), compacts the Delta log of every table whose history mentions the id, and
appends one row to ``ops.erasures``.
``export`` returns the listener's rows of every such table.

Where the id could survive, and what is done about it:

- A DELETE's (or UPDATE's) commit records its predicate in the log. The predicate here names
  a salted SHA-256 of the value (one random salt per request), never the id itself.
- Every ``add`` action carries column statistics, and min/max of ``user_id`` (or a payload's
  prefix, or ``listener_key``) can be the listener's id or pseudonym; those actions stay in
  older commits and checkpoints. So a table whose log mentions either gets a checkpoint at
  the erasure's version and loses the log entries before it. Time travel to those versions
  is lost, which erasure requires anyway (their data files are gone).
- Concurrent appends by the stream writer are safe (DELETE retries on conflict; only
  tombstoned files and log entries older than the checkpoint are deleted), but rows of the
  listener arriving after the DELETE stay: stop their events upstream first.

The pseudonym key (``lake.pseudonym_secret``) must not be the built-in default outside
development (:func:`pipelines.lake.pseudonyms.check_pseudonym_secret`): both commands refuse.

Schedule: on request, ``encore privacy forget --user U`` / ``encore privacy export --user U``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from pyarrow import fs as pafs

from encore.delta import open_delta, read_delta
from encore.errors import ServiceError
from encore.keys import RECS_PREFIX
from encore.settings import Settings
from encore.tables import ERASURES, TABLES, Table
from features import store as feature_store
from pipelines.lake.pseudonyms import check_pseudonym_secret, listener_key
from pipelines.lake.writing import append_rows

log = logging.getLogger(__name__)

USER_COLUMN = "user_id"
LISTENER_COLUMN = "listener_key"
"""The listener's pseudonym in analytics tables: matched by computing it from the id."""
PAYLOAD_COLUMN = "raw_payload"
"""A dead letter's record as received: attributed by parsing it as JSON."""
EXAMPLE_COLUMN = "example"
"""A quality result's failing row as JSON: the listener's if it contains their id or key."""

NOTHING_HELD = "the lake holds nothing about this listener: an unknown id, or one already erased"
"""Said (a warning, never the id) when export or erasure finds no row: both still succeed,
an empty answer is the answer, and a repeated erasure must not fail, but a mistyped id
should not pass unnoticed."""

_LOG_FILE = re.compile(r"^(\d{20})\.")
# v2: derived from lake.pseudonym_secret (v1, until issue 10, from the API's JWT secret;
# erasure-log rows written then do not match v2's pseudonyms)
_SUBJECT_KEY_LABEL = b"encore/lake/erasure-subject/v2"

ONLINE_FEATURES = "feature store (online)"
PRECOMPUTED_RECS = "precomputed recommendations"


@dataclass
class TableErasure:
    table: str
    rows_deleted: int = 0
    files_removed: list[str] = field(default_factory=list)
    rows_unattributed: int = 0
    """Dead letters whose payload does not parse: nobody's rows, as far as we can tell."""
    unattributed_mentioning_user: int = 0
    """Of those, payloads that contain the id as text (left alone, but said)."""
    log_compacted: bool = False
    rows_blanked: int = 0
    """Rows kept with their listener-mentioning column set to null (quality examples)."""


@dataclass
class Erasure:
    request_id: str
    erased_at: datetime
    tables: list[TableErasure]
    online_features_deleted: int = 0
    """Entries of the feature store's online copy (Redis) removed: it serves the
    listener's features to the recommendation service, so it forgets them too."""
    recs_deleted: int = 0
    """The listener's ``recs:v1:<model>:<user>`` lists removed from Redis (every model)."""
    recs_unreachable: bool = False
    """Redis could not be reached: the lists (if any) stay until their TTL
    (``serving.recs_ttl_s``) ends them; a rerun of the erasure deletes them."""

    @property
    def rows_deleted(self) -> int:
        return sum(t.rows_deleted for t in self.tables)

    @property
    def files_removed(self) -> int:
        return sum(len(t.files_removed) for t in self.tables)

    @property
    def rows_unattributed(self) -> int:
        return sum(t.rows_unattributed for t in self.tables)

    @property
    def tables_touched(self) -> list[str]:
        touched = [
            t.table for t in self.tables if t.rows_deleted or t.rows_blanked or t.files_removed
        ]
        touched += [ONLINE_FEATURES] if self.online_features_deleted else []
        return touched + ([PRECOMPUTED_RECS] if self.recs_deleted else [])


@dataclass(frozen=True)
class Subject:
    """The listener as each kind of table names them."""

    user_id: str
    listener_key: str

    @classmethod
    def of(cls, settings: Settings, user_id: str) -> Subject:
        return cls(user_id, listener_key(settings, user_id))

    def value_in(self, table: Table) -> str:
        """What ``table``'s match column holds for this listener (payload tables: the id)."""
        return self.listener_key if _match_column(table) == LISTENER_COLUMN else self.user_id

    def is_mentioned_in(self, text: str) -> bool:
        """Whether ``text`` (JSON) contains the id (also JSON-escaped) or the pseudonym."""
        needles = (self.user_id, json.dumps(self.user_id)[1:-1], self.listener_key)
        return any(n in text for n in needles)


def user_level_tables() -> list[Table]:
    """Registry tables that can hold a listener's rows."""
    columns = (USER_COLUMN, LISTENER_COLUMN, PAYLOAD_COLUMN, EXAMPLE_COLUMN)
    return [t for t in TABLES.values() if any(c in t.column_names for c in columns)]


def user_rows(table: Table, rows: pa.Table, subject: Subject) -> tuple[pa.Array, int, int]:
    """Mask of ``rows`` that belong to ``subject``, plus (unattributable rows, of which
    mention the id) for payload tables."""
    column_name = _match_column(table)
    if column_name == EXAMPLE_COLUMN:
        texts = rows.column(column_name).cast(pa.string()).to_pylist()
        mask = [t is not None and subject.is_mentioned_in(t) for t in texts]
        return pa.array(mask, pa.bool_()), 0, 0
    if column_name != PAYLOAD_COLUMN:
        # files delta-rs rewrote read back as string_view: compare as plain strings
        column = rows.column(column_name).cast(pa.string())
        return pc.fill_null(pc.equal(column, subject.value_in(table)), False), 0, 0
    user_id = subject.user_id
    mask, unattributed, mentioning = [], 0, 0
    for payload in rows.column(PAYLOAD_COLUMN).to_pylist():
        owner = _payload_user(payload)
        if owner is None:
            unattributed += 1
            mentioning += payload is not None and user_id in payload
        mask.append(owner == user_id)
    return pa.array(mask, pa.bool_()), unattributed, mentioning


def _payload_user(payload: str | None) -> str | None:
    """The ``user_id`` of a JSON object payload; None if it cannot be attributed."""
    try:
        record = json.loads(payload) if payload is not None else None
    except ValueError:
        return None
    owner = record.get(USER_COLUMN) if isinstance(record, dict) else None
    return owner if isinstance(owner, str) else None


def export(settings: Settings, user_id: str) -> dict[str, Any]:
    """Everything the lake holds about ``user_id``: ``{table: [row, ...]}``, JSON-ready
    (every list empty, and a warning :data:`NOTHING_HELD`, for an id the lake does not hold).

    Raises:
        ConfigurationError: the pseudonym key is the default outside development.
    """
    check_pseudonym_secret(settings)
    subject = Subject.of(settings, user_id)
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in user_level_tables():
        delta = open_delta(settings, table)
        if delta is None:
            continue
        rows = read_delta(delta)
        mask, _, _ = user_rows(table, rows, subject)
        tables[table.qualified_name] = [_jsonable(r) for r in rows.filter(mask).to_pylist()]
    if not any(tables.values()):
        log.warning(NOTHING_HELD)
    return {
        "user_id": user_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "tables": tables,
    }


def forget(settings: Settings, user_id: str, request_id: str | None = None) -> Erasure:
    """Delete ``user_id``'s rows from every user-level table, physically, and log the erasure.

    Idempotent: a second run finds nothing and logs a request that touched nothing (and
    warns :data:`NOTHING_HELD`, as for an id the lake never held).

    Raises:
        ServiceError: Redis failed while deleting the online features; raised after the
            lake's part is done and logged, so a rerun completes the erasure.
        ConfigurationError: the pseudonym key is the default outside development (a
            public key would let anyone match a guessed id to the pseudonyms and the log).
    """
    check_pseudonym_secret(settings)
    subject = Subject.of(settings, user_id)
    request_id = request_id or str(uuid.uuid4())
    salt = secrets.token_hex(16)
    results = []
    for table in user_level_tables():
        delta = open_delta(settings, table)
        if delta is not None:
            results.append(_forget_in(table, delta, subject, salt, request_id))
    online, online_error = _forget_online_features(settings, user_id)
    recs_deleted, recs_unreachable = forget_recs(settings, user_id)
    erasure = Erasure(
        request_id, datetime.now(UTC), results, online, recs_deleted, recs_unreachable
    )
    if not erasure.tables_touched:
        log.warning(NOTHING_HELD)
    _append_log(settings, erasure, user_id)  # the lake's part is done: record it whatever next
    if online_error is not None:
        raise ServiceError(
            "Redis",
            f"unreachable ({online_error}): erasure {request_id} deleted and logged the "
            f"lake's rows, not the {ONLINE_FEATURES}"
            f"{' nor the ' + PRECOMPUTED_RECS if erasure.recs_unreachable else ''}; "
            "run `encore privacy forget` again for "
            "this listener once Redis answers (a rerun finds the lake done and redoes the rest)",
        )
    return erasure


def _forget_online_features(settings: Settings, user_id: str) -> tuple[int, Exception | None]:
    """The feature store's online entries deleted, or the error that stopped it: a Redis
    failure must not come before the lake's part is logged."""
    import redis

    try:
        return feature_store.forget_listener(settings, user_id), None
    except (redis.RedisError, OSError) as error:
        return 0, error


def forget_recs(settings: Settings, user_id: str) -> tuple[int, bool]:
    """Delete the listener's precomputed lists, ``recs:v1:<model>:<user>`` of every model:
    (keys deleted, whether Redis was unreachable).

    Found by SCAN, not by the models registered today: a list written for a model since
    renamed is the listener's too. Ids may contain ``:``, so a match counts only when what
    precedes the id is a whole model name (no ``:``): ``recs:v1:m:bob:alice`` is bob:alice's
    list, not alice's. An unreachable Redis is logged and said in the erasure, not raised:
    the lake's rows are the record and are gone by then, the lists expire within their TTL,
    and a rerun of the (idempotent) erasure deletes them.
    """
    import redis

    prefix = f"{RECS_PREFIX}:"
    suffix = f":{user_id}"
    pattern = f"{_glob_escape(prefix)}*{_glob_escape(suffix)}"
    try:
        with redis.Redis.from_url(settings.redis.effective_url, socket_timeout=5) as client:
            keys = [
                key
                for key in client.scan_iter(match=pattern, count=1000)
                if ":" not in key.decode()[len(prefix) : -len(suffix)]
            ]
            return (int(client.delete(*keys)) if keys else 0), False
    except (redis.RedisError, OSError) as error:
        log.warning(
            "Redis unreachable, precomputed lists not deleted (they expire within %d s; "
            "rerun the erasure): %s",
            settings.serving.recs_ttl_s,
            error,
        )
        return 0, True


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _forget_in(
    table: Table, delta: DeltaTable, subject: Subject, salt: str, request_id: str
) -> TableErasure:
    result = TableErasure(table.qualified_name)
    column = _match_column(table)
    # one column of the whole table: a filtered dataset scan would prune by statistics, but
    # pyarrow refuses it once delta-rs has rewritten files (string vs string_view)
    rows = read_delta(delta, [column])
    mask, result.rows_unattributed, result.unattributed_mentioning_user = user_rows(
        table, rows, subject
    )
    values = rows.column(column).filter(mask).to_pylist()
    if result.unattributed_mentioning_user:
        log.warning(
            "%s: %d unparseable rows contain the id as text; left alone (not attributable)",
            table.qualified_name,
            result.unattributed_mentioning_user,
        )
    obsolete: list[str] = []
    if values:
        digests = sorted({_salted(salt, v) for v in values})
        predicate = (
            f"encode(sha256(concat('{salt}', {column})), 'hex') IN "
            f"({', '.join(repr(d) for d in digests)})"
        )
        properties = CommitProperties(custom_metadata={"encore.erasure_request": request_id})
        if column == EXAMPLE_COLUMN:
            metrics = delta.update(
                updates={column: "NULL"}, predicate=predicate, commit_properties=properties
            )
            result.rows_blanked = metrics["num_updated_rows"]
        else:
            metrics = delta.delete(predicate, commit_properties=properties)
            result.rows_deleted = metrics["num_deleted_rows"]
        obsolete = _removed_by(delta, delta.version(), request_id)
    # older tombstones (compaction's inputs, say) may still hold the listener's rows
    for path in delta.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=True):
        if path not in obsolete and _holds_user(table, delta, path, subject):
            obsolete.append(path)
    filesystem, root = _filesystem(delta)
    for path in obsolete:
        filesystem.delete_file(f"{root}/{path}")
        log.info("%s: erasure %s removed %s", table.qualified_name, request_id, path)
    result.files_removed = obsolete
    if (
        result.rows_deleted
        or result.rows_blanked
        or obsolete
        or _log_mentions(filesystem, root, subject)
    ):
        _compact_log(delta, filesystem, root)
        result.log_compacted = True
    return result


def _match_column(table: Table) -> str:
    for column in (USER_COLUMN, LISTENER_COLUMN, EXAMPLE_COLUMN):
        if column in table.column_names:
            return column
    return PAYLOAD_COLUMN


def _salted(salt: str, value: str) -> str:
    return hashlib.sha256((salt + value).encode()).hexdigest()


def _removed_by(delta: DeltaTable, version: int, request_id: str) -> list[str]:
    """Paths the commit of this erasure removed, read from its log entry."""
    filesystem, root = _filesystem(delta)
    with filesystem.open_input_stream(f"{root}/_delta_log/{version:020d}.json") as stream:
        actions = [json.loads(line) for line in stream.read().decode().splitlines() if line]
    info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
    if info.get("encore.erasure_request") != request_id:
        raise RuntimeError(f"commit {version} is not erasure {request_id}: {info}")
    removed = [a["remove"]["path"] for a in actions if "remove" in a]
    # change-data files of the DELETE hold the deleted rows themselves
    removed += [a["cdc"]["path"] for a in actions if "cdc" in a]
    return [unquote(p) for p in removed]


def _holds_user(table: Table, delta: DeltaTable, path: str, subject: Subject) -> bool:
    filesystem, root = _filesystem(delta)
    try:
        rows = pq.read_table(
            f"{root}/{path}", columns=[_match_column(table)], filesystem=filesystem
        )
    except FileNotFoundError:
        return False
    mask, _, _ = user_rows(table, rows, subject)
    return bool(pc.any(mask).as_py())


def _log_mentions(filesystem: pafs.FileSystem, root: str, subject: Subject) -> bool:
    """Whether any log entry (commit or checkpoint) contains the id or the pseudonym, in
    stats or anywhere."""
    user_id = subject.user_id
    needles = (
        user_id,
        json.dumps(user_id)[1:-1],
        json.dumps(json.dumps(user_id))[2:-2],
        subject.listener_key,
    )
    for info in filesystem.get_file_info(pafs.FileSelector(f"{root}/_delta_log")):
        if info.type != pafs.FileType.File:
            continue
        if info.base_name.endswith(".parquet"):
            text = str(pq.read_table(info.path, filesystem=filesystem).to_pylist())
        else:
            with filesystem.open_input_stream(info.path) as stream:
                text = stream.read().decode(errors="replace")
        if any(n in text for n in needles):
            return True
    return False


def _compact_log(delta: DeltaTable, filesystem: pafs.FileSystem, root: str) -> None:
    """Checkpoint the current version and delete every log entry before it."""
    delta.create_checkpoint()
    checkpoint = delta.version()
    for info in filesystem.get_file_info(pafs.FileSelector(f"{root}/_delta_log")):
        match = _LOG_FILE.match(info.base_name)
        if info.type == pafs.FileType.File and match and int(match.group(1)) < checkpoint:
            filesystem.delete_file(info.path)


def _append_log(settings: Settings, erasure: Erasure, user_id: str) -> None:
    details = [
        {
            "table": t.table,
            "rows_deleted": t.rows_deleted,
            "rows_blanked": t.rows_blanked,
            "files_removed": len(t.files_removed),
            "rows_unattributed": t.rows_unattributed,
            "log_compacted": t.log_compacted,
        }
        for t in erasure.tables
    ]
    row = {
        "request_id": erasure.request_id,
        "erased_at": erasure.erased_at,
        "subject_hmac": subject_hmac(settings, user_id),
        "tables_touched": ",".join(erasure.tables_touched),
        "rows_deleted": erasure.rows_deleted,
        "files_removed": erasure.files_removed,
        "rows_unattributed": erasure.rows_unattributed,
        "details": json.dumps(details),
    }
    append_rows(settings, ERASURES, [row])


def subject_hmac(settings: Settings, user_id: str) -> str:
    """The erasure log's pseudonym of a listener.

    Keyed, not a plain hash: user ids are guessable, so a plain hash would name the listener
    to anyone reading the log. With the key, the operator can still check a given id against
    the log (re-apply erasures after restoring a backup, answer the listener), and nobody
    without it can. The key is derived from ``lake.pseudonym_secret`` under a label of its
    own, so the log's pseudonym differs from the analytics tables' ``listener_key``: the log
    cannot be joined to them.
    """
    secret = settings.lake.pseudonym_secret.get_secret_value().encode()
    key = hmac.new(secret, _SUBJECT_KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()


def erasures(settings: Settings) -> list[dict[str, Any]]:
    """The erasure log, oldest first."""
    delta = open_delta(settings, ERASURES)
    if delta is None:
        return []
    return sorted(read_delta(delta).to_pylist(), key=lambda r: r["erased_at"])


def _filesystem(delta: DeltaTable) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and root path for the table's files (local or object store;
    object stores take their credentials from the environment)."""
    uri = delta.table_uri
    filesystem, root = pafs.FileSystem.from_uri(uri)
    return filesystem, root.rstrip("/")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in row.items()}


def describe(erasure: Erasure) -> dict[str, Any]:
    """A JSON-ready summary (no file paths' contents, no user id)."""
    summary = asdict(erasure)
    summary["erased_at"] = erasure.erased_at.isoformat()
    return summary
