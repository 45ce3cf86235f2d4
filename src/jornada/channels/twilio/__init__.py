"""Twilio: SMS (Messages API) and voice (Calls API with TwiML), callbacks' signatures, STOP keywords."""
