"""Encore's PostgreSQL tables as SQLAlchemy Core objects: what code reads and writes.

The migrations under ``migrations/versions`` create these; ``tests/encore/test_db.py``
checks that the upgraded database and this module agree, column for column. Ids are short
stable strings (``ar-``, ``al-``, ``so-`` plus a hash of the natural key) so that events,
the lake and the models name the same song however many times the catalog is reloaded.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

metadata = MetaData()

SUBSCRIPTION_PLANS = ("free", "premium", "family", "student")

accounts = Table(
    "accounts",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("email", String(320)),
    Column("country", String(2)),
    Column("subscription_plan", String(16), nullable=False, server_default="free"),
    Column("allow_explicit", Boolean, nullable=False, server_default="true"),
)

artists = Table(
    "artists",
    metadata,
    Column("artist_id", String(32), primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("bio", Text),
    Column("image_url", Text),
    Column("popularity", Float, nullable=False, server_default="0"),
    Column(
        "search_document",
        TSVECTOR,
        Computed("setweight(to_tsvector('simple', encore_fold(name)), 'A')", persisted=True),
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

albums = Table(
    "albums",
    metadata,
    Column("album_id", String(32), primary_key=True),
    Column("artist_id", String(32), ForeignKey("artists.artist_id"), nullable=False),
    Column("title", Text, nullable=False),
    Column("release_year", SmallInteger),
    Column("cover_art_url", Text),
    Column(
        "search_document",
        TSVECTOR,
        Computed("setweight(to_tsvector('simple', encore_fold(title)), 'A')", persisted=True),
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

songs = Table(
    "songs",
    metadata,
    Column("song_id", String(32), primary_key=True),
    Column("title", Text, nullable=False),
    Column("artist_id", String(32), ForeignKey("artists.artist_id"), nullable=False),
    Column("album_id", String(32), ForeignKey("albums.album_id"), nullable=False),
    Column("track_number", SmallInteger),
    Column("genre", String(64), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column(
        "hls_manifest",
        Text,
        doc="Location of the master playlist under the media root, once content is ingested.",
    ),
    Column("lyrics_url", Text),
    Column("release_date", Date),
    Column("explicit", Boolean, nullable=False, server_default="false"),
    Column(
        "territories",
        ARRAY(String(2)),
        nullable=False,
        doc="ISO 3166-1 alpha-2 codes the song is licensed in; a listener elsewhere gets 451.",
    ),
    Column(
        "popularity",
        Float,
        nullable=False,
        server_default="0",
        doc="Relative popularity (the synthetic catalog's skew; the simulator samples by it).",
    ),
    Column(
        "search_document",
        TSVECTOR,
        doc="Weighted title (A), artist (B), album (C); kept by triggers, never written by code.",
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

playlists = Table(
    "playlists",
    metadata,
    Column("playlist_id", String(32), primary_key=True),
    Column(
        "owner_id",
        String(64),
        ForeignKey("accounts.user_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("is_public", Boolean, nullable=False, server_default="false"),
    Column(
        "version",
        Integer,
        nullable=False,
        server_default="1",
        doc="Bumped by every change; clients send it back in ``If-Match`` (412 when stale).",
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

playlist_songs = Table(
    "playlist_songs",
    metadata,
    Column("entry_id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "playlist_id",
        String(32),
        ForeignKey("playlists.playlist_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "position",
        Integer,
        nullable=False,
        doc="0-based and dense; unique per playlist, checked at commit (moves shift many rows).",
    ),
    Column("song_id", String(32), ForeignKey("songs.song_id"), nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

song_media = Table(
    "song_media",
    metadata,
    Column(
        "song_id",
        String(32),
        ForeignKey("songs.song_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "content_hash",
        String(64),
        nullable=False,
        unique=True,
        doc="SHA-256 of the master file: ingesting the same bytes again is a no-op.",
    ),
    Column("master_name", Text, nullable=False),
    Column(
        "manifest_path", Text, nullable=False, doc="Master playlist, relative to the media root."
    ),
    Column(
        "key_path",
        Text,
        nullable=False,
        doc="The song's AES-128 key, relative to the media root; served only to a valid token.",
    ),
    Column("bitrates_kbps", ARRAY(Integer), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
)

artist_top_songs = Table(
    "artist_top_songs",
    metadata,
    Column("artist_id", String(32), primary_key=True),
    Column("song_id", String(32), primary_key=True),
    Column("rank", SmallInteger, nullable=False),
    Column(
        "plays",
        BigInteger,
        nullable=False,
        doc="Plays in the ``window_days`` before ``computed_at`` (published by the lakehouse).",
    ),
    Column("window_days", SmallInteger, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)

PRIVACY_REQUEST_KINDS = ("erase", "export")
PRIVACY_REQUEST_OPEN = ("pending", "failed")
"""A request in one of these states is still to be done (a failed attempt is retried)."""

privacy_requests = Table(
    "privacy_requests",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("kind", String(8), nullable=False, doc="``erase`` or ``export``."),
    Column(
        "user_id",
        String(64),
        doc="The listener; null once they are erased (then ``subject_hmac`` names them).",
    ),
    Column(
        "subject_hmac",
        String(64),
        doc="The erasure log's keyed pseudonym of the listener, set when the id is removed.",
    ),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column(
        "due_at",
        DateTime(timezone=True),
        nullable=False,
        doc="``requested_at`` plus ``lake.privacy_deadline_hours``.",
    ),
    Column("status", String(8), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("finished_at", DateTime(timezone=True), doc="When the last attempt ended."),
    Column("result", JSONB, doc="A summary of what was done (counts, never rows)."),
    Column("export_path", Text, doc="An export's file (mode 0600), until an erasure removes it."),
    Column("last_error", Text, doc="Why the last attempt failed (the listener's id masked)."),
)
