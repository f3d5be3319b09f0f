"""Every event the partners service reacts to, in one place: every published event of
every other service (the registry's), for the venue's event log and the webhook
deliveries."""

from __future__ import annotations

from gala.contracts.contacts import USER_EVENTS, ContactErased
from gala.events import Subscriptions
from partners.events import handlers as event_log
from partners.webhooks import handlers as webhooks

subscriptions = Subscriptions()

# The venue event log (helper "core"): every published event, appended once; erasure.
for _event_type in event_log.consumed_event_types():
    subscriptions.on(_event_type, name=event_log.LOG_HANDLER)(event_log.append_to_log)
subscriptions.on(ContactErased, name=event_log.ERASURE_HANDLER)(event_log.erase_from_log)

# Webhooks (helper "webhooks"): each event -> one delivery per matching endpoint of its
# venue; user events -> the copy of the venue's ADMINs (mailed when an endpoint is disabled).
for _event_type in webhooks.deliverable_events():
    subscriptions.on(_event_type, name=webhooks.FAN_OUT_HANDLER)(webhooks.fan_out)
for _user_event in USER_EVENTS:
    subscriptions.on(_user_event, name=webhooks.ADMINS_HANDLER)(webhooks.keep_admin)
