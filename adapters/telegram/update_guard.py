"""One malformed update must not stall the bot: python-telegram-bot parses a getUpdates batch as a
whole, and one update it cannot read fails the batch, which is then fetched again forever. This
request class reads each update first and swaps one that does not parse for an empty update with the
same id, so polling moves past it (and the log says what was skipped)."""

from __future__ import annotations

import json
import logging
from typing import Any

from telegram import Update
from telegram._utils.types import ODVInput
from telegram.request import BaseRequest, HTTPXRequest, RequestData

log = logging.getLogger(__name__)


class SkipMalformedUpdates(HTTPXRequest):
    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        status, payload = await super().do_request(
            url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
        )
        if status != 200:
            return status, payload
        try:
            body = json.loads(payload)
            updates = body["result"]
        except (ValueError, KeyError, TypeError):
            return status, payload  # not a batch of updates: python-telegram-bot reports it
        body["result"] = [readable(update) for update in updates]
        return status, json.dumps(body).encode()


def readable(update: Any) -> Any:
    """The update itself if it parses, else an empty one with its id (or as-is without an id)."""
    try:
        Update.de_json(update, None)
    except Exception as error:  # whatever the parser trips on, the update is unreadable
        update_id = update.get("update_id") if isinstance(update, dict) else None
        kinds = [str(key) for key in update if key != "update_id"] if isinstance(update, dict) else []
        # the kinds and the error's type, never the update or the error's text: both may quote a message
        log.warning(
            "telegram update %s skipped, it does not parse (%s): kinds %s",
            update_id,
            type(error).__name__,
            kinds,
        )
        return {"update_id": update_id} if isinstance(update_id, int) else update
    return update
