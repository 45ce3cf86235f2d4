"""E-mail: SMTP settings, the MIME message Jornada sends, the transport, bounce and complaint reports."""
