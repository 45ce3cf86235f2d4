"""Canonical event names and the property shapes Jornada relies on.

Names follow the Segment E-commerce v2 spec where one exists, so storefront
integrations map one to one; the rest are Brazilian store facts (boleto, PIX)
and engagement Jornada records itself. Producers (importers, the demo store,
store webhooks) must emit these names and properties; consumers (contact
facts, segments, flows) may rely on them.

Property shapes (all money values are decimal strings or numbers in the
order's ``currency``, default the workspace currency, ``BRL``):

- ``Product Viewed``: product_id, name, category, price, currency, url, image_url
- ``Product Added`` / ``Product Removed``: product_id, name, price, quantity,
  cart_id, url, image_url
- ``Checkout Started``: cart_id, order_id, value, currency, checkout_url,
  products[{product_id, name, price, quantity}]
- ``Order Completed``: order_id, total, currency, products[{product_id, name,
  category, price, quantity}], payments[{type, installments, value}],
  payment_method (credit_card | debit_card | boleto | pix | voucher)
- ``Order Cancelled`` / ``Order Refunded``: order_id (total optional)
- ``Order Shipped`` / ``Order Delivered``: order_id
- ``Boleto Issued``: order_id, amount, due_date (ISO date), url
- ``Boleto Paid`` / ``Boleto Expired``: order_id, amount
- ``Pix Issued`` / ``Pix Paid``: order_id, amount
- ``Survey Answered``: kind (nps | csat), score, order_id, comment
"""

from __future__ import annotations

from typing import Final

PRODUCT_VIEWED: Final = "Product Viewed"
PRODUCT_LIST_VIEWED: Final = "Product List Viewed"
PRODUCTS_SEARCHED: Final = "Products Searched"
PRODUCT_ADDED: Final = "Product Added"
PRODUCT_REMOVED: Final = "Product Removed"
PRODUCT_UPDATED: Final = "Product Updated"  # catalog sync: product_id, price, previous_price
CART_VIEWED: Final = "Cart Viewed"
CHECKOUT_STARTED: Final = "Checkout Started"
ORDER_COMPLETED: Final = "Order Completed"
ORDER_REFUNDED: Final = "Order Refunded"
ORDER_CANCELLED: Final = "Order Cancelled"
ORDER_SHIPPED: Final = "Order Shipped"
ORDER_DELIVERED: Final = "Order Delivered"
COUPON_APPLIED: Final = "Coupon Applied"
SIGNED_UP: Final = "Signed Up"
FORM_SUBMITTED: Final = "Form Submitted"
BOLETO_ISSUED: Final = "Boleto Issued"
BOLETO_PAID: Final = "Boleto Paid"
BOLETO_EXPIRED: Final = "Boleto Expired"
PIX_ISSUED: Final = "Pix Issued"
PIX_PAID: Final = "Pix Paid"
PROPOSAL_SENT: Final = "Proposal Sent"
PROPOSAL_VIEWED: Final = "Proposal Viewed"
MESSAGE_SENT: Final = "Message Sent"
MESSAGE_DELIVERED: Final = "Message Delivered"
MESSAGE_OPENED: Final = "Message Opened"
MESSAGE_CLICKED: Final = "Message Clicked"
MESSAGE_REPLIED: Final = "Message Replied"
MESSAGE_FAILED: Final = "Message Failed"
UNSUBSCRIBED: Final = "Unsubscribed"
SURVEY_ANSWERED: Final = "Survey Answered"
SEGMENT_ENTERED: Final = "Segment Entered"
SEGMENT_EXITED: Final = "Segment Exited"
SCORE_CHANGED: Final = "Score Changed"
TASK_COMPLETED: Final = "Task Completed"
STAGE_CHANGED: Final = "Stage Changed"

#: Lifecycle stages of a contact, in funnel order.
LIFECYCLE_STAGES: Final = ("New", "Contacted", "Engaged", "Qualified", "Won", "Closed")

#: Channels and purposes a consent is recorded for; a consent key is ``<channel>_<purpose>``.
CHANNELS: Final = ("email", "sms", "whatsapp", "push")
PURPOSES: Final = ("marketing", "transactional")
