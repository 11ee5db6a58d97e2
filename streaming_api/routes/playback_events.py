"""``POST /api/v1/playback-events``: listeners' plays, skips, completes and likes."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio.to_thread
from fastapi import APIRouter, Request, status

from streaming_api.deps import PrincipalDep, ProducerDep, SettingsDep
from streaming_api.playback import AcceptedEvents, parse_playback_events

router = APIRouter(prefix="/api/v1/playback-events", tags=["playback events"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedEvents,
    # the body is read raw for speed; its schema and error answers are added by `create_app`
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
    rest again. Each `event_id` may appear once per request. `start_time` must lie between
    30 days before and 5 minutes after the request, and `end_time` no later than 5 minutes
    after it (`events.max_event_age_s`, `events.max_clock_skew_s`); older history is
    imported, not posted. `country_code` is an assigned ISO 3166-1 alpha-2 code. For a song
    the recommendation service proposed, send its answer's `variant` (the A/B variant, e.g.
    `champion`) with the play; leave it out otherwise.

    **202** means Kafka has durably stored every event (the listed `event_ids`): they will
    reach the lake. **503** means they could not be stored in time; nothing is claimed, so
    retry the same request. Retrying is safe: events are de-duplicated by `event_id`.
    """
    arrival = datetime.now(UTC)  # the request's time: what the contract's time bounds use
    # over api.max_body_bytes, the app's body limit answers 413 while reading
    body = await request.body()
    events = parse_playback_events(
        body, settings.api.max_batch_events, arrival=arrival, bounds=settings.events
    )
    principal.check_may_post_for({event.user_id for event in events})
    # Sending and waiting for the acks blocks: keep it off the event loop.
    event_ids = await anyio.to_thread.run_sync(producer.publish, events)
    return AcceptedEvents(accepted=len(event_ids), event_ids=event_ids)
