"""Privacy requests: a listener's erasure or export, queued with a deadline.

``privacy_requests`` holds one row per request (``encore privacy request``; processed by
``encore privacy process`` and the ``privacy_requests`` DAG). A request is open while
``pending`` or ``failed`` (a failed attempt is retried by the next run); at most one open
request per kind and listener (a partial unique index: queueing again returns it). Once an
erasure is done the listener's id is replaced by the erasure log's keyed pseudonym
(``subject_hmac``) in every finished request of theirs, so the queue does not keep the id the
erasure removed.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE privacy_requests (
    request_id VARCHAR(36) PRIMARY KEY,
    kind VARCHAR(8) NOT NULL CONSTRAINT privacy_requests_kind_known
        CHECK (kind IN ('erase', 'export')),
    user_id VARCHAR(64),
    subject_hmac VARCHAR(64),
    requested_at TIMESTAMP WITH TIME ZONE NOT NULL,
    due_at TIMESTAMP WITH TIME ZONE NOT NULL,
    status VARCHAR(8) NOT NULL DEFAULT 'pending' CONSTRAINT privacy_requests_status_known
        CHECK (status IN ('pending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    finished_at TIMESTAMP WITH TIME ZONE,
    result JSONB,
    export_path TEXT,
    last_error TEXT,
    -- only a finished request may have lost its listener id (to their erasure)
    CONSTRAINT privacy_requests_open_names_user CHECK (user_id IS NOT NULL OR status = 'done')
);
CREATE UNIQUE INDEX privacy_requests_one_open ON privacy_requests (kind, user_id)
    WHERE status IN ('pending', 'failed');
CREATE INDEX privacy_requests_open_by_due ON privacy_requests (due_at)
    WHERE status IN ('pending', 'failed');
CREATE INDEX privacy_requests_user ON privacy_requests (user_id);
"""

DOWNGRADE = "DROP TABLE privacy_requests;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
