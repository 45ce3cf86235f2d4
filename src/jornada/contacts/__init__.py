"""Contact profiles: identity resolution, traits, consent and commerce facts."""

from jornada.contacts.actions import apply_records, change_contact, update_contact
from jornada.contacts.models import ConsentRecord, Contact, ContactMerge, Identity, Order
from jornada.contacts.queries import ContactFilter, contact_events, get_contact, list_contacts
from jornada.contacts.recommendations import (
    CoOccurrence,
    co_occurrence,
    frequently_bought_together,
    recommended_for,
    related,
)

__all__ = [
    "CoOccurrence",
    "ConsentRecord",
    "Contact",
    "ContactFilter",
    "ContactMerge",
    "Identity",
    "Order",
    "apply_records",
    "change_contact",
    "co_occurrence",
    "contact_events",
    "frequently_bought_together",
    "get_contact",
    "list_contacts",
    "recommended_for",
    "related",
    "update_contact",
]
