"""``POST /api/v1/playback-events``: listeners' plays, skips, completes and likes."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio.to_thread
from fastapi import APIRouter, Request, status

from streaming_api.deps import PrincipalDep, ProducerDep, SettingsDep
from streaming_api.errors import PayloadTooLargeError
from streaming_api.playback import AcceptedEvents, parse_playback_events

router = APIRouter(prefix="/api/v1/playback-events", tags=["playback events"])

_ERROR = {"content": {"application/json": {"example": {"detail": "...", "errors": []}}}}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedEvents,
    # the body is read raw for speed; its schema is added to OpenAPI by `create_app`
    responses={
        401: {"description": "Missing, invalid or expired token.", **_ERROR},
        403: {"description": "A listener posted another user's events.", **_ERROR},
        413: {"description": "Body or batch over the limit.", **_ERROR},
        422: {"description": "Invalid events, each named by index, field and reason.", **_ERROR},
        503: {"description": "Kafka did not acknowledge in time; nothing accepted.", **_ERROR},
    },
)
async def post_playback_events(
    request: Request, principal: PrincipalDep, producer: ProducerDep, settings: SettingsDep
) -> AcceptedEvents:
    """Record one play event, or a batch of them, in the v1 contract.

    Send either one event object or `{"events": [...]}` with up to `max_batch_events`
    events (1000 by default; see the schema). Authenticate with `Authorization: Bearer
    <token>`: a listener token may post only events whose `user_id` is that listener; the
    service token may post for any user.

    The whole request is validated before anything is stored: if any event is invalid the
    answer is **422** and `errors` names each bad item (`index` in `events`, `field`,
    `reason`), and no event of the request is recorded. Fix or drop those items and send the
    rest again. `start_time` must lie between 30 days before and 5 minutes after the
    request (`events.max_event_age_s`, `events.max_clock_skew_s`); older history is
    imported, not posted.

    **202** means Kafka has durably stored every event (the listed `event_ids`): they will
    reach the lake. **503** means they could not be stored in time; nothing is claimed, so
    retry the same request. Retrying is safe: events are de-duplicated by `event_id`.
    """
    limit = settings.api.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body has {declared} bytes; the limit is {limit}")
    arrival = datetime.now(UTC)  # the request's time: what the contract's time bounds use
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLargeError(f"the body has {len(body)} bytes; the limit is {limit}")
    events = parse_playback_events(
        body, settings.api.max_batch_events, arrival=arrival, bounds=settings.events
    )
    principal.check_may_post_for({event.user_id for event in events})
    # Sending and waiting for the acks blocks: keep it off the event loop.
    event_ids = await anyio.to_thread.run_sync(producer.publish, events)
    return AcceptedEvents(accepted=len(event_ids), event_ids=event_ids)
