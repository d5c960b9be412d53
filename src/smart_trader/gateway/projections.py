"""The WebSocket documents as a projection of the domain events: an event committed to the outbox becomes one message
on its topic (``orders.<account>``, ``accounts.<account>``, ``challenges.<account>``, ``notifications.<user>``). The
event's payload is its public document; the message puts the event's ``outbox_id`` first so a client can drop a
message it already has (delivery is at least once).

Kept textual: the payload is already canonical JSON from :func:`~smart_trader.db.outbox.event_row`, so a message costs
no re-encoding on the relay's path.
"""

from __future__ import annotations


def ws_message(payload: str, outbox_id: int) -> str:
    """The message of an event whose payload is the JSON object text ``payload``: ``{"outbox_id": N, ...payload}``."""
    if payload.startswith("{}"):
        return '{"outbox_id":' + str(outbox_id) + "}"
    return '{"outbox_id":' + str(outbox_id) + "," + payload[1:]
