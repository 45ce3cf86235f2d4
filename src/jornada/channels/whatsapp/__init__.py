"""WhatsApp Business Cloud API: provider settings, sending, and the webhook's checks."""
