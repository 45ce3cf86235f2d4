"""Contact profiles: identity resolution, traits, consent and commerce facts."""

from jornada.contacts.actions import apply_records, change_contact, update_contact
from jornada.contacts.models import ConsentRecord, Contact, ContactMerge, Identity, Order
from jornada.contacts.queries import ContactFilter, contact_events, get_contact, list_contacts

__all__ = [
    "ConsentRecord",
    "Contact",
    "ContactFilter",
    "ContactMerge",
    "Identity",
    "Order",
    "apply_records",
    "change_contact",
    "contact_events",
    "get_contact",
    "list_contacts",
    "update_contact",
]
