"""The catalog, playlists, media and search: listeners' accounts grow to the full User.

* ``accounts`` gains e-mail, country, subscription plan and the explicit-content choice;
  existing rows keep everything and get the defaults (plan ``free``, explicit allowed).
* ``artists``, ``albums``, ``songs`` (ids are stable hashes of natural keys, see
  ``encore.db.schema``), ``playlists`` with ordered ``playlist_songs``, ``song_media`` (HLS
  renditions and keys), ``artist_top_songs`` (published by the lakehouse).
* Search: ``unaccent`` and ``pg_trgm``; ``encore_fold`` (lower-case, accents removed,
  IMMUTABLE so that indexes and generated columns may use it); weighted ``search_document``
  tsvectors (songs: title A, artist B, album C, kept by triggers when any of them changes)
  with GIN indexes, and trigram GIN indexes on the folded names for typos.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- unaccent() is STABLE (its dictionary could change); naming the dictionary makes the
-- result a function of the text alone, so IMMUTABLE is honest and indexes may use it.
CREATE FUNCTION encore_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(public.unaccent('public.unaccent'::regdictionary, $1));

CREATE FUNCTION encore_song_document(title text, artist text, album text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN setweight(to_tsvector('simple', coalesce(encore_fold(title), '')), 'A')
        || setweight(to_tsvector('simple', coalesce(encore_fold(artist), '')), 'B')
        || setweight(to_tsvector('simple', coalesce(encore_fold(album), '')), 'C');

ALTER TABLE accounts
    ADD COLUMN email VARCHAR(320),
    ADD COLUMN country VARCHAR(2),
    ADD COLUMN subscription_plan VARCHAR(16) NOT NULL DEFAULT 'free',
    ADD COLUMN allow_explicit BOOLEAN NOT NULL DEFAULT true,
    ADD CONSTRAINT accounts_plan_known
        CHECK (subscription_plan IN ('free', 'premium', 'family', 'student')),
    ADD CONSTRAINT accounts_country_code CHECK (country ~ '^[A-Z]{2}$');
CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE artists (
    artist_id VARCHAR(32) PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    bio TEXT,
    image_url TEXT,
    popularity DOUBLE PRECISION NOT NULL DEFAULT 0,
    search_document TSVECTOR
        GENERATED ALWAYS AS (setweight(to_tsvector('simple', encore_fold(name)), 'A')) STORED,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL
);

CREATE TABLE albums (
    album_id VARCHAR(32) PRIMARY KEY,
    artist_id VARCHAR(32) NOT NULL REFERENCES artists (artist_id),
    title TEXT NOT NULL,
    release_year SMALLINT CHECK (release_year BETWEEN 1800 AND 2200),
    cover_art_url TEXT,
    search_document TSVECTOR
        GENERATED ALWAYS AS (setweight(to_tsvector('simple', encore_fold(title)), 'A')) STORED,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    UNIQUE (artist_id, title)
);

CREATE TABLE songs (
    song_id VARCHAR(32) PRIMARY KEY,
    title TEXT NOT NULL,
    artist_id VARCHAR(32) NOT NULL REFERENCES artists (artist_id),
    album_id VARCHAR(32) NOT NULL REFERENCES albums (album_id),
    track_number SMALLINT CHECK (track_number > 0),
    genre VARCHAR(64) NOT NULL,
    duration_ms INTEGER NOT NULL CHECK (duration_ms > 0),
    hls_manifest TEXT,
    lyrics_url TEXT,
    release_date DATE,
    explicit BOOLEAN NOT NULL DEFAULT false,
    territories VARCHAR(2)[] NOT NULL,
    popularity DOUBLE PRECISION NOT NULL DEFAULT 0,
    search_document TSVECTOR,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    UNIQUE (album_id, title)
);

CREATE FUNCTION songs_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_document := encore_song_document(
        NEW.title,
        (SELECT name FROM artists WHERE artist_id = NEW.artist_id),
        (SELECT title FROM albums WHERE album_id = NEW.album_id));
    RETURN NEW;
END $$;
CREATE TRIGGER songs_search_document BEFORE INSERT OR UPDATE OF title, artist_id, album_id
    ON songs FOR EACH ROW EXECUTE FUNCTION songs_search_document();

-- a renamed artist or album re-indexes its songs (the song trigger recomputes the document)
CREATE FUNCTION artist_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE songs SET title = title WHERE artist_id = NEW.artist_id;
    RETURN NULL;
END $$;
CREATE TRIGGER artist_renamed AFTER UPDATE OF name ON artists FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION artist_renamed();
CREATE FUNCTION album_retitled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE songs SET title = title WHERE album_id = NEW.album_id;
    RETURN NULL;
END $$;
CREATE TRIGGER album_retitled AFTER UPDATE OF title ON albums FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title) EXECUTE FUNCTION album_retitled();

CREATE INDEX albums_artist ON albums (artist_id);
CREATE INDEX songs_artist ON songs (artist_id, popularity DESC);
CREATE INDEX songs_album ON songs (album_id, track_number);
CREATE INDEX songs_genre ON songs (genre);
CREATE INDEX songs_search ON songs USING gin (search_document);
CREATE INDEX artists_search ON artists USING gin (search_document);
CREATE INDEX albums_search ON albums USING gin (search_document);
CREATE INDEX songs_title_trgm ON songs USING gin (encore_fold(title) gin_trgm_ops);
CREATE INDEX artists_name_trgm ON artists USING gin (encore_fold(name) gin_trgm_ops);
CREATE INDEX albums_title_trgm ON albums USING gin (encore_fold(title) gin_trgm_ops);

CREATE TABLE playlists (
    playlist_id VARCHAR(32) PRIMARY KEY,
    owner_id VARCHAR(64) NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description TEXT NOT NULL DEFAULT '',
    is_public BOOLEAN NOT NULL DEFAULT false,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX playlists_owner ON playlists (owner_id);

CREATE TABLE playlist_songs (
    entry_id BIGSERIAL PRIMARY KEY,
    playlist_id VARCHAR(32) NOT NULL REFERENCES playlists (playlist_id) ON DELETE CASCADE,
    position INTEGER NOT NULL CHECK (position >= 0),
    song_id VARCHAR(32) NOT NULL REFERENCES songs (song_id),
    added_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT playlist_songs_position UNIQUE (playlist_id, position)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX playlist_songs_song ON playlist_songs (song_id);

CREATE TABLE song_media (
    song_id VARCHAR(32) PRIMARY KEY REFERENCES songs (song_id) ON DELETE CASCADE,
    content_hash VARCHAR(64) NOT NULL UNIQUE,
    master_name TEXT NOT NULL,
    manifest_path TEXT NOT NULL,
    key_path TEXT NOT NULL,
    bitrates_kbps INTEGER[] NOT NULL,
    duration_ms INTEGER NOT NULL CHECK (duration_ms > 0),
    ingested_at TIMESTAMP WITH TIME ZONE NOT NULL
);

CREATE TABLE artist_top_songs (
    artist_id VARCHAR(32) NOT NULL,
    song_id VARCHAR(32) NOT NULL,
    rank SMALLINT NOT NULL CHECK (rank > 0),
    plays BIGINT NOT NULL CHECK (plays >= 0),
    window_days SMALLINT NOT NULL,
    computed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (artist_id, song_id)
);
CREATE INDEX artist_top_songs_rank ON artist_top_songs (artist_id, rank);
"""

DOWNGRADE = """
DROP TABLE artist_top_songs, song_media, playlist_songs, playlists, songs, albums, artists;
DROP FUNCTION artist_renamed, album_retitled, songs_search_document, encore_song_document,
    encore_fold;
DROP INDEX accounts_email_key;
ALTER TABLE accounts DROP COLUMN email, DROP COLUMN country, DROP COLUMN subscription_plan,
    DROP COLUMN allow_explicit;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
